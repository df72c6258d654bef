"""The runs list's cursor pages read the ``(created, id)`` index from the cursor on, in
order: the plan, not a time, is asserted (the figures are bench/ui_list.py's)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert

from flowyard.orchestrator import run_pages, run_search
from flowyard.store import models as m
from flowyard.store.database import Database
from tests.postgres import PostgresServer, fresh_database

AT = datetime(2026, 11, 22, tzinfo=UTC)
ROW = m.FlowRun(created=AT, start_time=AT, end_time=AT, id="r-5")


def _plan(db: Database, order: str, **query: str) -> str:
    """The store's plan for the page after a cursor (the statement the page ran)."""
    ran: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if "FROM flow_runs" in statement and not statement.startswith("EXPLAIN"):
            ran.append((statement, parameters))

    event.listen(db._read_engine, "before_cursor_execute", seen)
    try:
        with db.read() as session:
            where = run_pages.RunFilter.from_query({"order": order, **query}, [])
            cursor = run_pages.encode_cursor(ROW, where.sort_field)
            run_pages.page(session, where, limit=50, cursor=cursor)
            statement, parameters = ran[0]
            if db.is_sqlite:
                rows = session.connection().exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", parameters
                )
                return " | ".join(str(row[-1]) for row in rows)
            session.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = session.connection().exec_driver_sql(f"EXPLAIN {statement}", parameters)
            return " | ".join(str(row[0]) for row in rows)
    finally:
        event.remove(db._read_engine, "before_cursor_execute", seen)


@pytest.mark.parametrize(
    ("order", "column"),
    [
        ("newest", "created"),
        ("oldest", "created"),
        ("started", "start_time"),
        ("ended-earliest", "end_time"),
    ],
)
def test_a_cursor_page_is_a_range_of_the_time_id_index(database: Database, order: str, column: str):
    """The cursor bounds the index read itself (an index condition; on SQLite in order, with
    no sort): a page deep in a million runs does not filter its way past every newer run.
    By start or end time, the same on that time's index."""
    plan = _plan(database, order)
    assert f"ix_flow_runs_{column}_id" in plan, plan
    if database.is_sqlite:
        assert f"({column},id)" in plan.replace(" ", "") and "TEMP B-TREE" not in plan, plan
    else:
        bound = re.search(rf"Index Cond: \(.*ROW\({column}, \(id\)::text\) [<>]", plan)
        assert bound is not None, plan  # the planner may sort the 50


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "index"),
    [({"name": "tory-12_3%"}, "ix_flow_runs_name_trgm"), ({"tag": "t"}, "ix_flow_runs_tags")],
)
def test_a_name_or_tag_filter_reads_its_index_on_postgresql(
    postgres_server: PostgresServer, query: dict[str, str], index: str
):
    """``name=`` (a substring, ``ILIKE '%text%'``) is a read of migration 0018's trigram
    index, ``tag=`` (``tags::jsonb @> '["t"]'``) of 0024's GIN index, not a scan of every
    run; ``%`` and ``_`` typed in a name stay literal."""
    db = Database(fresh_database(postgres_server, "run_pages_name"))
    db.migrate()
    ran: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if "FROM flow_runs" in statement and not statement.startswith("EXPLAIN"):
            ran.append((statement, parameters))

    event.listen(db._read_engine, "before_cursor_execute", seen)
    try:
        with db.read() as session:
            where = run_pages.RunFilter.from_query(query, [])
            run_pages.page(session, where, limit=50, cursor=None)
            statement, parameters = ran[0]
            connection = session.connection()
            # no sequential scan and no walk of another index: only a bitmap read is left,
            # and only an index that can answer the condition can give one
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            plan = " | ".join(str(row[0]) for row in rows)
    finally:
        event.remove(db._read_engine, "before_cursor_execute", seen)
        db.dispose()
    assert f"Bitmap Index Scan on {index}" in plan, plan
    assert "Seq Scan" not in plan, plan


def _common_runs(db: Database, count: int) -> None:
    """``count`` runs named ``common-N`` and tagged ``t``."""
    with db.session() as session:
        flow = m.Flow(name="f")
        session.add(flow)
        session.flush()
        rows = [
            {
                "name": f"common-{n}", "tags": ["t"], "flow_id": flow.id,
                "state_type": "COMPLETED", "state_name": "Completed", "state_timestamp": AT,
                "scheduled_time": AT, "created": AT,
            }
            for n in range(count)
        ]  # fmt: skip
        session.execute(insert(m.FlowRun), rows)


@pytest.mark.parametrize(
    "query", [{"pool": "p"}, {"deployment": "d"}, {"tag": "t"}, {"name": "common"}]
)
def test_on_sqlite_a_pool_or_deployment_page_walks_the_created_id_index(tmp_path: Path, query):
    """By pool, deployment, or a tag or name on many runs, SQLite still reads the
    ``(created, id)`` index in order: it has no statistics, and the runs' own pool or
    deployment index would have it sort every run of a big pool (700 ms at 100,000 runs).
    PostgreSQL chooses by its statistics (bench/ui_list.py's ``pool`` figures)."""
    db = Database(f"sqlite:///{tmp_path / 'plan.db'}")
    db.migrate()
    try:
        _common_runs(db, run_search.CANDIDATES + 1)
        plan = _plan(db, "newest", **query)
    finally:
        db.dispose()
    assert "ix_flow_runs_created_id" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize(
    ("query", "index"),
    [({"name": "common-12"}, "flow_run_names VIRTUAL TABLE"), ({"tag": "t"}, "flow_run_tags")],
)
def test_on_sqlite_a_rare_name_or_tag_reads_only_its_runs(tmp_path: Path, query, index: str):
    """A name or tag on few runs: SQLite reads those runs by id from its index (0023's
    trigrams, 0024's tag table) and sorts them, whatever else the filter holds, rather than
    walking every run by time or by state."""
    db = Database(f"sqlite:///{tmp_path / 'plan.db'}")
    db.migrate()
    try:
        _common_runs(db, 20)
        others = {"state": "FAILED", "since": "2026-01-01", "pool": "p", "deployment": "d"}
        plan = _plan(db, "started", **query, **others)
    finally:
        db.dispose()
    assert "SEARCH flow_runs USING INDEX sqlite_autoindex_flow_runs_1 (id=?)" in plan, plan
    assert index in plan and "SCAN flow_runs" not in plan, plan
