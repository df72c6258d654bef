"""Deployment schedules in the store: one run per slot, enforced by the database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from flowyard.orchestrator import runs
from flowyard.orchestrator.services.scheduler import (
    Pacing,
    Window,
    clear_future_runs,
    materialize,
)
from flowyard.states import StateType
from flowyard.store import models as m

NOW = datetime(2026, 5, 1, 10, 0, 1, tzinfo=UTC)
WINDOW = Window(max_runs=3, horizon_seconds=3600)


def _deployment(session) -> m.Deployment:
    pool = m.WorkPool(name="local", type="process")
    queue = m.WorkQueue(name="default", priority=1)
    pool.queues.append(queue)
    dep = m.Deployment(flow=m.Flow(name="etl"), name="hourly", entrypoint="f.py:etl", queue=queue)
    session.add_all([pool, dep])
    session.flush()
    return dep


def _schedule(database, **fields) -> str:
    with database.session() as session:
        dep = _deployment(session)
        schedule = m.DeploymentSchedule(
            deployment=dep, kind="interval", expression="60", parameters={"n": 2}, **fields
        )
        session.add(schedule)
        session.flush()
        return schedule.id


def _count_runs(database) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(m.FlowRun)) or 0


def test_a_slot_cannot_be_written_twice(database):
    """Two runs of one schedule at one scheduled time are refused by the database."""
    schedule_id = _schedule(database)
    with pytest.raises(IntegrityError), database.session() as session:
        dep = session.scalars(select(m.Deployment)).one()
        for _ in range(2):
            run = runs.new_run(
                session,
                flow=dep.flow,
                deployment=dep,
                queue=dep.queue,
                now=NOW,
                scheduled_time=NOW,
            )
            run.schedule_id = schedule_id
            session.flush()


def test_materialize_is_idempotent(database):
    """Passes over the same time window write each due run once, with the overrides."""
    _schedule(database)
    first = materialize(database, NOW, WINDOW)
    again = materialize(database, NOW, WINDOW)
    assert len(first) == 3 and again == []
    assert _count_runs(database) == 3
    with database.read() as session:
        stored = session.scalars(select(m.FlowRun).order_by(m.FlowRun.scheduled_time)).all()
        assert [r.scheduled_time.minute for r in stored] == [1, 2, 3]
        assert all(r.parameters == {"n": 2} for r in stored)
        assert all(r.state_type is StateType.SCHEDULED for r in stored)


def test_a_pass_writes_at_most_its_limit_the_earliest_first_and_the_next_goes_on(database):
    """However many slots are due (a first pass, a long downtime), a pass writes its limit,
    earliest first, in short transactions; the next pass writes the rest."""
    _schedule(database)
    window = Window(max_runs=2000, horizon_seconds=24 * 3600, max_per_pass=600)
    passes = []
    while effects := materialize(database, NOW, window):
        passes.append(sorted(effect.enqueue_at for effect in effects))
    assert [len(p) for p in passes] == [600, 600, 240]  # 1,440 minutes in 24 h
    assert passes[0][-1] < passes[1][0] < passes[1][-1] < passes[2][0]  # earliest first
    assert _count_runs(database) == 1440


def test_concurrent_passes_write_each_slot_once(database):
    """Scheduler passes racing from several threads never duplicate a run."""
    _schedule(database)
    written: list[int] = []
    barrier = threading.Barrier(4)

    def race() -> None:
        barrier.wait(timeout=10)
        effects = materialize(database, NOW, WINDOW)
        written.append(len(effects))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(written) == 3
    assert _count_runs(database) == 3


def test_paused_schedules_materialize_nothing(database):
    """An inactive schedule writes no runs."""
    _schedule(database, active=False)
    assert materialize(database, NOW, WINDOW) == []


def test_clearing_removes_only_unstarted_runs(database):
    """Clearing a schedule deletes its Scheduled runs and keeps ones already started."""
    schedule_id = _schedule(database)
    materialize(database, NOW, WINDOW)
    with database.session() as session:
        started = session.scalars(select(m.FlowRun).order_by(m.FlowRun.scheduled_time)).first()
        assert started is not None
        runs.set_state(session, started, StateType.PENDING, now=NOW)
    with database.session() as session:
        effects = clear_future_runs(session, [schedule_id])
    assert len(effects) == 2 and all(e.unqueue for e in effects)
    assert _count_runs(database) == 1


def unpaced() -> Pacing:
    """Full batches without pauses: these tests write thousands of runs to check that each
    is written once, not how a pass shares SQLite's writer."""
    return Pacing(paced=False)


def _hourly_deployments(database, count: int) -> None:
    """``count`` deployments of one pool, each with an hourly cron schedule."""
    with database.session() as session:
        pool = m.WorkPool(name="big", type="process")
        queue = m.WorkQueue(name="default", priority=1)
        pool.queues.append(queue)
        flow = m.Flow(name="etl")
        session.add(pool)
        for i in range(count):
            dep = m.Deployment(flow=flow, name=f"d{i}", entrypoint="f.py:etl", queue=queue)
            session.add(m.DeploymentSchedule(deployment=dep, kind="cron", expression="0 * * * *"))


def test_two_schedulers_over_500_deployments_write_each_run_once(database):
    """Two scheduler instances (own engines, like two API replicas) racing over 500
    deployments write every slot exactly once between them."""
    from flowyard.store import Database

    _hourly_deployments(database, 500)
    window = Window(max_runs=3, horizon_seconds=3 * 3600)
    replicas = [Database(database.url) for _ in range(2)]
    written: list[int] = []
    barrier = threading.Barrier(2)

    def scheduler(db: Database) -> None:
        barrier.wait(timeout=30)
        written.append(len(materialize(db, NOW, window, pacing=unpaced())))

    threads = [threading.Thread(target=scheduler, args=(db,)) for db in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for db in replicas:
        db.dispose()
    assert sum(written) == 1500 and _count_runs(database) == 1500


CHILD_PASS = """
import sys
from datetime import datetime
from flowyard.orchestrator.services.scheduler import Window, materialize
from flowyard.store import Database

db = Database(sys.argv[1])
print("started", flush=True)
materialize(db, datetime.fromisoformat(sys.argv[2]), Window(max_runs=24, horizon_seconds=86400))
print("done", flush=True)
"""


@pytest.mark.parametrize("kill_after", [0.05, 0.5, 1.5])
def test_a_scheduler_killed_mid_pass_leaves_nothing_half_written(database, kill_after):
    """A scheduler process SIGKILLed at some point of a big pass, then a new pass: every
    slot exists exactly once, whatever the point it died at."""
    import subprocess
    import sys

    _hourly_deployments(database, 300)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_PASS, database.url, NOW.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "started"
    try:
        child.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    window = Window(max_runs=24, horizon_seconds=86400)
    while materialize(database, NOW, window, pacing=unpaced()):  # passes of max_per_pass runs
        pass
    assert _count_runs(database) == 300 * 24
    with database.read() as session:
        slots = session.execute(select(m.FlowRun.schedule_id, m.FlowRun.scheduled_time)).all()
        states = session.scalar(select(func.count()).select_from(m.FlowRunState))
    assert len(set(slots)) == len(slots) and states == 300 * 24
