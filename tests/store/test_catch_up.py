"""Catch-up after downtime and Late marking, on the store, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from flowyard.orchestrator import runs
from flowyard.orchestrator.services.late_runs import mark_late
from flowyard.orchestrator.services.scheduler import Window, materialize
from flowyard.states import StateType
from flowyard.store import models as m

T0 = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
WINDOW = Window(max_runs=3, horizon_seconds=3600)
GRACE = 15.0
AFTER_OUTAGE = T0 + timedelta(hours=2, seconds=1)


def _deploy(database, catch_up: str) -> str:
    """A deployment with a 10-minute interval schedule, created at T0."""
    before = T0
    with database.session() as session:
        pool = m.WorkPool(name="local", type="process")
        queue = m.WorkQueue(name="default", priority=1)
        pool.queues.append(queue)
        dep = m.Deployment(
            flow=m.Flow(name="etl"),
            name="every-10-min",
            entrypoint="f.py:etl",
            queue=queue,
            catch_up=catch_up,
            created=before,
            updated=before,
        )
        schedule = m.DeploymentSchedule(
            deployment=dep, kind="interval", expression="600", created=before, updated=before
        )
        session.add_all([pool, dep, schedule])
        session.flush()
        return dep.id


def _runs(database) -> list[m.FlowRun]:
    with database.read() as session:
        return list(session.scalars(select(m.FlowRun).order_by(m.FlowRun.scheduled_time)))


def _minutes(found: list[m.FlowRun], state: StateType, name: str) -> list[int]:
    """Minutes after 12:00 of the runs in ``state`` named ``name``."""
    return [
        int((r.scheduled_time - T0.replace(second=0)).total_seconds() // 60)
        for r in found
        if r.state_type is state and r.state_name == name
    ]


def _outage(database, catch_up: str) -> list[m.FlowRun]:
    """Runs written at T0, then two hours with no scheduler and no worker, then a pass."""
    _deploy(database, catch_up)
    assert len(materialize(database, T0, WINDOW)) == 3  # 12:10, 12:20, 12:30
    materialize(database, AFTER_OUTAGE, WINDOW)
    mark_late(database, AFTER_OUTAGE, GRACE)
    return _runs(database)


SCHEDULED, CANCELLED = StateType.SCHEDULED, StateType.CANCELLED
UPCOMING = [130, 140, 150]


def test_all_runs_every_missed_slot_late(database):
    """``all``: the three runs written before and the nine slots missed in the outage all
    wait to run, named Late; the next three are Scheduled."""
    found = _outage(database, "all")
    assert _minutes(found, SCHEDULED, "Late") == list(range(10, 130, 10))
    assert _minutes(found, SCHEDULED, "Scheduled") == UPCOMING
    assert _minutes(found, CANCELLED, "Skipped") == []


def test_latest_runs_only_the_most_recent_slot(database):
    """``latest``: only 14:00 runs; the runs written before the outage are skipped."""
    found = _outage(database, "latest")
    assert _minutes(found, SCHEDULED, "Late") + _minutes(found, SCHEDULED, "Scheduled") == [
        120,
        *UPCOMING,
    ]
    assert _minutes(found, CANCELLED, "Skipped") == [10, 20, 30]


def test_skip_skips_everything_missed(database):
    """``skip``: nothing missed is written and the late runs are skipped, with the reason."""
    found = _outage(database, "skip")
    assert _minutes(found, SCHEDULED, "Scheduled") == UPCOMING
    skipped = [r for r in found if r.state_type is CANCELLED]
    assert _minutes(found, CANCELLED, "Skipped") == [10, 20, 30]
    assert all("not started within 15 s" in (r.state_message or "") for r in skipped)
    assert all(r.end_time == AFTER_OUTAGE for r in skipped)


def test_late_marking_respects_the_grace_period_and_history(database):
    """A run is named Late only once its grace period has passed, once, with a history row."""
    _deploy(database, "all")
    materialize(database, T0, WINDOW)
    first_slot = T0.replace(second=0) + timedelta(minutes=10)
    assert mark_late(database, first_slot + timedelta(seconds=GRACE - 1), GRACE) == []
    assert _minutes(_runs(database), SCHEDULED, "Late") == []
    mark_late(database, first_slot + timedelta(seconds=GRACE + 1), GRACE)
    mark_late(database, first_slot + timedelta(seconds=GRACE + 2), GRACE)
    (late,) = [r for r in _runs(database) if r.state_name == "Late"]
    with database.read() as session:
        history = session.scalars(
            select(m.FlowRunState.name).where(m.FlowRunState.flow_run_id == late.id)
        ).all()
    assert history == ["Scheduled", "Late"]


def test_a_claimed_run_is_never_marked_late_or_skipped(database):
    """Late marking is a compare-and-set: a run that moved to Pending is left alone."""
    _deploy(database, "skip")
    materialize(database, T0, WINDOW)
    with database.session() as session:
        first = session.scalars(select(m.FlowRun).order_by(m.FlowRun.scheduled_time)).first()
        assert first is not None
        runs.set_state(session, first, StateType.PENDING, now=T0)
        claimed = first.id
    effects = mark_late(database, AFTER_OUTAGE, GRACE)
    assert claimed not in {e.run_id for e in effects}
    assert {r.id: r.state_type for r in _runs(database)}[claimed] is StateType.PENDING
    assert len(effects) == 2 and all(e.unqueue and e.release for e in effects)


@pytest.mark.parametrize("catch_up", ["all", "latest", "skip"])
def test_a_paused_deployment_writes_nothing(database, catch_up):
    """A paused deployment's schedules materialize nothing, whatever its policy."""
    dep_id = _deploy(database, catch_up)
    with database.session() as session:
        session.get(m.Deployment, dep_id).paused = True
    assert materialize(database, T0, WINDOW) == []
