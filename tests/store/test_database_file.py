"""The SQLite file is its user's alone, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from flowyard.store import Database


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_folder_are_private(tmp_path: Path) -> None:
    """Under a permissive umask the folder made for the file is 0700, the file and its WAL
    files 0600; a query string is not part of the file's name."""
    path = tmp_path / "data" / "flowyard.db"
    previous = os.umask(0o002)
    try:
        database = Database(f"sqlite:///{path}?timeout=5")
        database.migrate()
    finally:
        os.umask(previous)
    try:
        assert _mode(path.parent) == 0o700
        files = sorted(p.name for p in path.parent.iterdir())
        assert files == ["flowyard.db", "flowyard.db-shm", "flowyard.db-wal"]
        assert {p.name: _mode(p) for p in path.parent.iterdir()} == dict.fromkeys(files, 0o600)
    finally:
        database.dispose()


def test_an_existing_readable_database_is_tightened(tmp_path: Path) -> None:
    """A file an older version left 0644 is 0600 once opened; its folder is left alone."""
    path = tmp_path / "flowyard.db"
    path.touch()
    path.chmod(0o644)
    tmp_path.chmod(0o755)
    Database(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o600
    assert _mode(tmp_path) == 0o755
