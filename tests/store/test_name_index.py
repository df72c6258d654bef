"""The runs list's name search on each store, and migration 0018: the trigram index of
flow runs' names on PostgreSQL, and a database where ``pg_trgm`` cannot be created (the
migration goes on without it)."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import inspect

from flowyard.orchestrator import run_pages
from flowyard.store import Database
from flowyard.store import models as m
from flowyard.store.models import utcnow
from tests.postgres import PostgresServer, fresh_database

INDEX = "ix_flow_runs_name_trgm"


def _indexes(db: Database) -> set[str]:
    return {i["name"] for i in inspect(db.engine).get_indexes("flow_runs")}


def _search(db: Database, text: str) -> list[str]:
    with db.read() as session:
        where = run_pages.RunFilter.from_query({"name": text}, [])
        runs, _ = run_pages.page(session, where, limit=50, cursor=None)
    return sorted(r.name for r in runs)


def _add_runs(db: Database, names: list[str]) -> None:
    with db.session() as session:
        flow = m.Flow(name="f")
        session.add(flow)
        session.flush()
        now = utcnow()
        for name in names:
            session.add(
                m.FlowRun(
                    name=name, flow_id=flow.id, state_type="COMPLETED", state_name="Completed",
                    state_timestamp=now, scheduled_time=now,
                )
            )  # fmt: skip


def test_the_name_search_ignores_case_and_takes_percent_and_underscore_as_typed(
    tmp_path: Path,
):
    """SQLite: ``LIKE`` (its case rule is ILIKE's there), the same answers as PostgreSQL's."""
    db = Database(f"sqlite:///{tmp_path / 'names.db'}")
    db.migrate()
    try:
        _add_runs(db, ["nightly-load", "Nightly-report", "hourly", "50%_off", "500-off"])
        assert _search(db, "NIGHTLY") == ["Nightly-report", "nightly-load"]
        assert _search(db, "0%_") == ["50%_off"]
        assert _search(db, "0_") == []
    finally:
        db.dispose()


@pytest.mark.postgres
def test_the_name_index_is_built_and_serves_the_search(postgres_server: PostgresServer):
    db = Database(fresh_database(postgres_server, "name_index"))
    db.migrate()
    try:
        assert INDEX in _indexes(db)
        _add_runs(db, ["nightly-load", "Nightly-report", "hourly", "50%_off", "500-off"])
        assert _search(db, "NIGHTLY") == ["Nightly-report", "nightly-load"]
        assert _search(db, "0%_") == ["50%_off"]  # typed, not patterns
        db.migrate()  # again: nothing to do, the index is there once
        assert INDEX in _indexes(db)
    finally:
        db.dispose()


@pytest.mark.postgres
def test_without_the_right_to_create_pg_trgm_the_migration_goes_on(
    postgres_server: PostgresServer,
):
    """A role that may create tables but not extensions: migrated all the same, without
    the index; the search still answers (by a scan)."""
    url = fresh_database(postgres_server, "name_index_plain")
    admin = psycopg2.connect(
        host="127.0.0.1", port=postgres_server.port, user="postgres", dbname="name_index_plain"
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("DROP ROLE IF EXISTS plain_owner")
        cursor.execute("CREATE ROLE plain_owner LOGIN")
        cursor.execute("GRANT ALL ON SCHEMA public TO plain_owner")
        cursor.execute("REVOKE CREATE ON DATABASE name_index_plain FROM PUBLIC")
    db = Database(url.replace("postgres@", "plain_owner@"))
    try:
        db.migrate()
        assert INDEX not in _indexes(db)
        _add_runs(db, ["nightly-load", "hourly"])
        assert _search(db, "ghtly") == ["nightly-load"]
    finally:
        db.dispose()
        admin.close()
        fresh_database(postgres_server, "name_index_plain")  # dropped: the role owns nothing
        owner = psycopg2.connect(host="127.0.0.1", port=postgres_server.port, user="postgres")
        owner.autocommit = True
        with owner.cursor() as cursor:
            cursor.execute("DROP ROLE plain_owner")
        owner.close()
