"""What other local users can reach of a ``flowyard server start``: its files, its Redis."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from flowyard.cli.processes import ServerProcess
from tests.e2e.conftest import FAST


def _modes(home: Path) -> dict[str, int]:
    """Permission bits of the home and of everything under it, by relative path."""
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    return found


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

