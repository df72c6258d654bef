"""What other local users can reach of a ``flowyard server start``: its files, its Redis."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
import redis

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.errors import ApiError
from tests.e2e.conftest import FAST
from tests.proc import command_lines
from tests.waiting import wait_until


def _modes(home: Path) -> dict[str, int]:
    """Permission bits of the home and of everything under it, by relative path."""
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _managed_redis_port(home: Path) -> int:
    log = home / "redis" / "redis.log"
    match = wait_until(
        lambda: log.exists() and re.search(r"port=(\d+)", log.read_text()), timeout=30
    )
    return int(match.group(1))


@pytest.fixture
def old_home(tmp_path: Path) -> Path:
    """A home as an older version left it: folder 0755, database 0644."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    (home / "flowyard.db").touch()
    (home / "flowyard.db").chmod(0o644)
    return home


def test_the_home_and_everything_in_it_is_its_users_alone(old_home: Path) -> None:
    """After a start and a block with a secret, the home and its folders are 0700 and
    every file 0600: database (and its WAL), secret key, Redis folder and log, server log."""
    server = ServerProcess(old_home, env=FAST)
    try:
        server.wait_ready()
        with server.client() as api:
            api.save_block("secret", "token", {"value": "s3cr3t"})
        modes = _modes(old_home)
    finally:
        server.stop()
    expected = {"flowyard.db", "secret.key", "redis", "redis/redis.log", "server.log"}
    assert expected <= set(modes)
    loose = {path: oct(mode) for path, mode in modes.items() if mode & 0o077}
    assert loose == {}
    assert {path for path, mode in modes.items() if mode == 0o700} >= {".", "redis"}


def test_the_managed_redis_wants_a_password_nobody_else_sees(tmp_path: Path) -> None:
    """The server's own Redis refuses a client without the password, and no process's
    command line carries one."""
    server = ServerProcess(tmp_path / "home", env=FAST)
    try:
        server.wait_ready()
        port = _managed_redis_port(server.home)
        stranger = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        with pytest.raises(redis.exceptions.RedisError, match="(?i)auth"):
            stranger.ping()
        stranger.close()
        ours = [line for line in command_lines() if "redis-server" in line and f"{port}" in line]
        assert len(ours) == 1 and "requirepass" not in ours[0]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("entrypoint", "reason"),
    [
        ("../../../../etc/passwd:x", "leads outside the deployment's working directory"),
        ("/etc/passwd.py:x", "is absolute"),
        ("flows.py", "must look like"),
    ],
)
def test_the_api_refuses_entrypoints_that_leave_their_folder(api, pool, entrypoint, reason):
    """Creating a deployment whose entrypoint is absolute, climbs out with ``..`` or is
    malformed is a 422 naming the reason, and nothing is written."""
    body = s.DeploymentCreate(
        name="escape", flow_name="escape", entrypoint=entrypoint, path="/srv", pool_name=pool
    )
    with pytest.raises(ApiError, match=reason) as refused:
        api.create_deployment(body)
    assert refused.value.status_code == 422
    assert [d.name for d in api.list_deployments() if d.pool_name == pool] == []
