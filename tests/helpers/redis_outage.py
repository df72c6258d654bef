"""A server on a Redis of its own, which a test stops and starts again (outage tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.pools import ManagedRedis
from tests.e2e.conftest import FAST


class OwnRedis:
    """A managed Redis that a test stops, then starts again on the same port with no data."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._starts = 1
        self.current = ManagedRedis(workdir=tmp_path / "redis-1").start()

    def stop(self) -> None:
        self.current.stop()

    def stop_keeping_data(self) -> None:
        """Snapshot, then stop: ``start_again`` comes back with everything (an outage, as
        of a network, that lost nothing)."""
        import redis

        client = redis.Redis.from_url(self.current.url)
        try:
            client.save()
        finally:
            client.close()
        self.current.stop()

    def start_again(self) -> None:
        """Start on the same port from the snapshot of ``stop_keeping_data``."""
        workdir = self._tmp_path / f"redis-{self._starts}"
        port, password = self.current.port, self.current.password
        self.current = ManagedRedis(port=port, password=password, workdir=workdir).start()

    def start_empty(self) -> None:
        self._starts += 1
        workdir = self._tmp_path / f"redis-{self._starts}"
        port, password = self.current.port, self.current.password
        self.current = ManagedRedis(port=port, password=password, workdir=workdir).start()


@contextmanager
def server_on_own_redis(
    tmp_path: Path,
) -> Iterator[tuple[ServerProcess, OwnRedis, list[WorkerProcess]]]:
    """A server on a Redis of its own; workers put in the list are stopped afterwards."""
    redis = OwnRedis(tmp_path)
    server = ServerProcess(tmp_path / "home", env={**FAST, "FLOWYARD_REDIS_URL": redis.current.url})
    workers: list[WorkerProcess] = []
    try:
        server.wait_ready()
        yield server, redis, workers
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
        redis.stop()
