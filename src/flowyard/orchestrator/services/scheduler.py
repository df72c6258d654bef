"""The scheduler: materializes the next runs of every active deployment schedule.

Each pass, for each active schedule, the next ``scheduler_max_runs`` due times within
``scheduler_horizon_seconds`` become Scheduled runs, then are queued. A run is written
with ``INSERT … ON CONFLICT DO NOTHING`` against the store's unique constraint on
(deployment, schedule, scheduled time), so passes that overlap — a restart, two API
replicas — never create a slot twice: the loser of a race simply writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from flowyard.orchestrator import queue_sync
from flowyard.orchestrator.names import run_name
from flowyard.orchestrator.runs import QueueEffect
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.orchestrator.schedules import ScheduleSpec, next_times
from flowyard.states import StateType
from flowyard.store import Database
from flowyard.store import models as m

log = structlog.get_logger()

SLOT = ("deployment_id", "schedule_id", "scheduled_time")


def spec_of(schedule: m.DeploymentSchedule) -> ScheduleSpec:
    return ScheduleSpec(schedule.kind, schedule.expression, schedule.timezone, schedule.anchor_date)


def _active_schedules(session: Session) -> list[m.DeploymentSchedule]:
    query = (
        select(m.DeploymentSchedule)
        .where(m.DeploymentSchedule.active.is_(True))
        .options(
            joinedload(m.DeploymentSchedule.deployment)
            .joinedload(m.Deployment.queue)
            .joinedload(m.WorkQueue.pool)
        )
        .order_by(m.DeploymentSchedule.id)
    )
    return list(session.scalars(query).unique().all())


def _insert_run(
    session: Session, schedule: m.DeploymentSchedule, when: datetime, now: datetime
) -> str | None:
    """Write one scheduled run unless its slot exists; returns its id when written."""
    dep = schedule.deployment
    run_id = m.new_id()
    values: dict[str, Any] = {
        "id": run_id,
        "name": run_name(),
        "flow_id": dep.flow_id,
        "deployment_id": dep.id,
        "queue_id": dep.queue_id,
        "schedule_id": schedule.id,
        "parameters": {**dep.parameters, **schedule.parameters},
        "job_variables": {},
        "state_type": StateType.SCHEDULED,
        "state_name": StateType.SCHEDULED.display_name,
        "state_timestamp": now,
        "scheduled_time": when,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(m.FlowRun).values(**values).on_conflict_do_nothing(index_elements=list(SLOT))
    )
    if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.add(
        m.FlowRunState(
            flow_run_id=run_id,
            type=StateType.SCHEDULED,
            name=StateType.SCHEDULED.display_name,
            timestamp=now,
        )
    )
    return run_id


def materialize(
    db: Database, now: datetime, *, max_runs: int, horizon_seconds: float
) -> list[QueueEffect]:
    """Write the missing runs of every active schedule; returns what to queue."""
    until = now + timedelta(seconds=horizon_seconds)
    effects: list[QueueEffect] = []
    with db.session() as session:
        for schedule in _active_schedules(session):
            try:
                due = next_times(spec_of(schedule), now, count=max_runs, until=until)
            except Exception:
                log.exception("schedule_unreadable", schedule_id=schedule.id)
                continue
            pool, queue = schedule.deployment.queue.pool.name, schedule.deployment.queue.name
            for when in due:
                run_id = _insert_run(session, schedule, when, now)
                if run_id is not None:
                    effects.append(QueueEffect(pool, queue, run_id, enqueue_at=when.timestamp()))
    return effects


def clear_future_runs(session: Session, schedule_ids: Iterable[str]) -> list[QueueEffect]:
    """Delete the not-yet-started Scheduled runs of these schedules; returns what to unqueue."""
    ids = list(schedule_ids)
    if not ids:
        return []
    query = (
        select(m.FlowRun)
        .where(m.FlowRun.schedule_id.in_(ids), m.FlowRun.state_type == StateType.SCHEDULED)
        .options(joinedload(m.FlowRun.queue).joinedload(m.WorkQueue.pool))
    )
    found = session.scalars(query).all()
    effects = [
        QueueEffect(run.queue.pool.name, run.queue.name, run.id, unqueue=True)
        for run in found
        if run.queue is not None
    ]
    run_ids = [run.id for run in found]
    if run_ids:
        session.execute(delete(m.FlowRun).where(m.FlowRun.id.in_(run_ids)))
    return effects


async def schedule_once(orch: Orchestrator) -> int:
    """Materialize and queue the next runs of every active schedule; returns how many."""
    settings = orch.settings
    effects = await orch.in_thread(
        lambda: materialize(
            orch.db,
            datetime.now(UTC),
            max_runs=settings.scheduler_max_runs,
            horizon_seconds=settings.scheduler_horizon_seconds,
        )
    )
    for effect in effects:
        await queue_sync.apply(orch, effect)
    if effects:
        log.info("runs_materialized", count=len(effects))
    return len(effects)
