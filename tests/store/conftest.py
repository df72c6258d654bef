"""The store is tested on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from flowyard.store import Database
from flowyard.store.models import Base
from tests.postgres import PostgresServer, find_bin


@pytest.fixture(scope="session")
def postgres_server():
    if not find_bin("initdb"):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run must install it")
        pytest.skip("PostgreSQL is not installed here")
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        db = Database(request.getfixturevalue("postgres_server").url)
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.migrate()
    yield db
    db.dispose()


__all__ = ["Base", "database", "postgres_server"]
