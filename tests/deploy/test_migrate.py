"""``flowyard server migrate``: the schema step of a deployment (Helm hook, compose)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def migrate(home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLOWYARD_HOME": str(home)}
    env.pop("FLOWYARD_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "flowyard", "server", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_creates_the_schema_and_exits(tmp_path: Path) -> None:
    """On an empty database it creates every table at the newest revision, needing no Redis."""
    done = migrate(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "is at the newest schema revision" in done.stdout
    with sqlite3.connect(tmp_path / "flowyard.db") as db:
        (revision,) = db.execute("select version_num from alembic_version").fetchone()
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    assert revision
    assert {"flow_runs", "work_pools", "work_queues", "deployments"} <= tables, tables
    assert not (tmp_path / "redis").exists()


def test_migrate_twice_is_a_no_op(tmp_path: Path) -> None:
    """Running it again (every upgrade does) succeeds and keeps the revision."""
    assert migrate(tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "flowyard.db") as db:
        first = db.execute("select version_num from alembic_version").fetchall()
    again = migrate(tmp_path)
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(tmp_path / "flowyard.db") as db:
        assert db.execute("select version_num from alembic_version").fetchall() == first
