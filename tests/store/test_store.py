"""The durable record on SQLite and PostgreSQL: migrations, relations, UTC times, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from flowyard.orchestrator import run_search, runs
from flowyard.states import StateType
from flowyard.store import models as m
from flowyard.store.models import Base


def _pool_with_queue(session) -> m.WorkQueue:
    pool = m.WorkPool(name="local", type="process")
    queue = m.WorkQueue(name="default", priority=1)
    pool.queues.append(queue)
    session.add(pool)
    session.flush()
    return queue


def test_migrations_create_every_model_table(database):
    """After migrating, the database has exactly the tables the models declare, and on
    SQLite the name and tag indexes' own tables (migrations 0023 and 0024)."""
    tables = set(inspect(database.engine).get_table_names()) - {"alembic_version"}
    expected = set(Base.metadata.tables)
    if database.is_sqlite:
        expected |= {index.name for index in run_search.SQLITE_TABLES}
        fts5 = {name for name in tables if name.startswith(f"{run_search.NAMES.name}_")}
        assert fts5, tables  # FTS5's shadow tables
        expected |= fts5
    assert tables == expected


def test_migrations_create_every_model_index(database):
    """After migrating, each table has the indexes its model declares (by name)."""
    inspector = inspect(database.engine)
    for table in Base.metadata.sorted_tables:
        declared = {index.name for index in table.indexes}
        made = {index["name"] for index in inspector.get_indexes(table.name)}
        assert declared <= made, (table.name, declared - made)


def test_the_runs_list_by_state_reads_its_index_in_order(database):
    """The runs list filtered by a state reads ``(state_type, created, id)`` in order: no
    scan of every run in that state and no sort (the plan, not a time, is asserted)."""
    if database.engine.dialect.name != "sqlite":
        pytest.skip("a planner's choice on a small table is only stable on SQLite")
    with database.engine.connect() as connection:
        plan = connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM flow_runs WHERE state_type IN ('FAILED') "
            "ORDER BY created DESC, id DESC LIMIT 51"
        ).all()
    steps = " | ".join(str(row[-1]) for row in plan)
    assert "ix_flow_runs_state_created_id" in steps and "TEMP B-TREE" not in steps, steps


def test_migrate_twice_is_harmless(database):
    """Migrating an up-to-date database changes nothing."""
    database.migrate()
    assert "flow_runs" in inspect(database.engine).get_table_names()


def test_times_come_back_aware_utc(database):
    """A time written in another zone is read back as the same instant, in UTC."""
    local = datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    with database.session() as session:
        flow = m.Flow(name="f", created=local)
        session.add(flow)
    with database.session() as session:
        read = session.scalars(select(m.Flow)).one().created
    assert read.tzinfo is not None and read.utcoffset() == timedelta(0)
    assert read == local


def test_naive_times_are_refused(database):
    """A naive datetime is a programming error, not silently guessed."""
    with pytest.raises(Exception, match="naive"), database.session() as session:
        session.add(m.Flow(name="f", created=datetime(2026, 1, 1)))


def test_run_state_history_is_kept_in_order(database):
    """Every state change of a run is a history row, and the run shows the latest."""
    now = datetime.now(UTC)
    with database.session() as session:
        queue = _pool_with_queue(session)
        run = runs.new_run(session, flow=m.Flow(name="f"), queue=queue, now=now)
        session.flush()
        run_id = run.id
        for step in (StateType.PENDING, StateType.RUNNING, StateType.COMPLETED):
            decision, _ = runs.set_state(session, run, step, now=now, force=True)
            assert decision.accepted
    with database.session() as session:
        history = session.scalars(
            select(m.FlowRunState.type)
            .where(m.FlowRunState.flow_run_id == run_id)
            .order_by(m.FlowRunState.id)
        ).all()
        run = session.get(m.FlowRun, run_id)
        assert history == [
            StateType.SCHEDULED,
            StateType.PENDING,
            StateType.RUNNING,
            StateType.COMPLETED,
        ]
        assert (
            run.state_type is StateType.COMPLETED
            and run.end_time is not None
            and run.start_time is not None
        )


def test_pool_names_are_unique(database):
    """Two pools cannot share a name."""
    with database.session() as session:
        session.add(m.WorkPool(name="p", type="process"))
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(m.WorkPool(name="p", type="process"))


def test_deleting_a_run_deletes_its_logs_and_task_runs(database):
    """Logs, task runs and history go with their run."""
    now = datetime.now(UTC)
    with database.session() as session:
        run = runs.new_run(session, flow=m.Flow(name="f"), now=now)
        session.flush()
        session.add(m.Log(flow_run_id=run.id, message="hello", timestamp=now))
        session.add(
            m.TaskRun(flow_run_id=run.id, name="t-0", task_key="t", state_type=StateType.RUNNING)
        )
        run_id = run.id
    with database.session() as session:
        session.delete(session.get(m.FlowRun, run_id))
    with database.session() as session:
        assert session.scalars(select(m.Log)).all() == []
        assert session.scalars(select(m.TaskRun)).all() == []
        assert session.scalars(select(m.FlowRunState)).all() == []


def test_prefix_lookup(database):
    """A run is found by a unique prefix of its id; an unknown one is NotFound."""
    from flowyard.errors import NotFound

    with database.session() as session:
        run = runs.new_run(session, flow=m.Flow(name="f"), now=datetime.now(UTC))
        session.flush()
        run_id = run.id
    with database.session() as session:
        assert runs.get_run(session, run_id[:8]).id == run_id
        with pytest.raises(NotFound):
            runs.get_run(session, "ffffffff-0000")
