"""Migration 0022 (flow runs' tags) and the runs list's tag filters, on SQLite and on
PostgreSQL: a run's own tags, and a run made before 0022 (NULL) found by its
deployment's."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, null, update

from flowyard.orchestrator import run_pages, run_search
from flowyard.store import models as m
from flowyard.store.database import alembic_config
from flowyard.store.models import utcnow


def _columns(database) -> set[str]:
    return {c["name"] for c in inspect(database.engine).get_columns("flow_runs")}


def test_migration_0022_adds_the_column_and_its_downgrade_removes_it(database):
    """Down to 0021 the runs have no tags column; up again they have it, NULL in the runs
    that were there."""
    _add_runs(database, {"old": None})
    config = alembic_config(database.engine)
    command.downgrade(config, "0021")
    assert "tags" not in _columns(database)
    command.upgrade(config, "head")
    assert "tags" in _columns(database)
    with database.read() as session:
        assert [r.tags for r in session.query(m.FlowRun)] == [None]


def _add_runs(database, runs: dict[str, list[str] | None]) -> None:
    """Runs of a deployment tagged ``nightly``, with the tags given (None: as before 0022)."""
    with database.session() as session:
        flow = m.Flow(name="f")
        pool = m.WorkPool(name="p", type="process")
        queue = m.WorkQueue(name="default")
        pool.queues.append(queue)
        dep = m.Deployment(name="d", flow=flow, queue=queue, entrypoint="f.py:f", tags=["nightly"])
        session.add(dep)
        session.flush()
        now = utcnow()
        for name, tags in runs.items():
            session.add(
                m.FlowRun(
                    name=name, flow_id=flow.id, deployment_id=dep.id, state_type="COMPLETED",
                    state_name="Completed", state_timestamp=now, scheduled_time=now, tags=[],
                )
            )  # fmt: skip
            session.flush()
            stored = null() if tags is None else tags  # SQL NULL, not JSON's null
            session.execute(update(m.FlowRun).where(m.FlowRun.name == name).values(tags=stored))


def _names(database, every: list[str], some: list[str] = []) -> list[str]:  # noqa: B006
    with database.read() as session:
        where = run_pages.RunFilter()
        extra = run_search.tag_clauses(session, every, some)
        runs, _ = run_pages.page(session, where, limit=50, cursor=None, extra=extra)
    return sorted(r.name for r in runs)


def test_runs_are_found_by_every_tag_and_by_any_tag(database):
    """Every tag given must be a run's; of ``any`` one is enough. A run made before 0022
    carries its deployment's tags for the filter; a run with tags of its own, only those."""
    _add_runs(database, {"ab": ["a", "b"], "a": ["a"], "none": [], "old": None})
    assert _names(database, ["a"]) == ["a", "ab"]
    assert _names(database, ["a", "b"]) == ["ab"]
    assert _names(database, [], ["b", "nightly"]) == ["ab", "old"]
    assert _names(database, ["nightly"]) == ["old"]
    assert _names(database, ["zzz"]) == []
    with database.read() as session:
        single = run_pages.RunFilter.from_query({"tag": "b"}, [])
        runs, _ = run_pages.page(session, single, limit=50, cursor=None)
    assert [r.name for r in runs] == ["ab"]
