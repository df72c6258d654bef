"""Late runs: Scheduled runs not started within their grace period are named Late or skipped.

A run keeps its Scheduled type when it is named Late, so it stays claimable; every change
is a compare-and-set on the run still being Scheduled, so a claim that wins meanwhile is
left alone. See ``catch_up`` for which runs are kept and which are skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import structlog
from sqlalchemy import Table, and_, insert, or_, select, update
from sqlalchemy.orm import Session

from flowyard.orchestrator import events, queue_sync
from flowyard.orchestrator.catch_up import DueRun, late_verdict
from flowyard.orchestrator.runs import QueueEffect
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.states import StateType
from flowyard.store import Database
from flowyard.store import models as m

log = structlog.get_logger()

RUNS = cast(Table, m.FlowRun.__table__)
STATES = cast(Table, m.FlowRunState.__table__)
LATE, SKIPPED = "Late", "Skipped"
UNSTARTED = (StateType.SCHEDULED.display_name, LATE)


def _skip_message(grace: float) -> str:
    return f"skipped: not started within {grace:g} s of its scheduled time (catch-up policy)"


def _due_runs(db: Database, now: datetime, default_grace: float) -> list[tuple[DueRun, float]]:
    """The unstarted Scheduled runs whose time has come that a verdict may concern, with
    their grace period: those not yet Late, and the Late ones of schedules whose policy may
    still skip them (a run Late under ``all``, or not from a schedule, is kept as it is, so
    a backlog of thousands of Late runs is not read again every pass)."""
    query = (
        select(
            m.FlowRun.id,
            m.FlowRun.deployment_id,
            m.FlowRun.schedule_id,
            m.FlowRun.scheduled_time,
            m.FlowRun.state_name,
            m.Deployment.catch_up,
            m.Deployment.late_after_seconds,
        )
        .outerjoin(m.Deployment, m.FlowRun.deployment_id == m.Deployment.id)
        .where(
            m.FlowRun.state_type == StateType.SCHEDULED,
            m.FlowRun.scheduled_time <= now,
            or_(
                m.FlowRun.state_name == StateType.SCHEDULED.display_name,
                and_(
                    m.FlowRun.state_name == LATE,
                    m.FlowRun.schedule_id.is_not(None),
                    m.Deployment.catch_up != "all",
                ),
            ),
        )
    )
    with db.read() as session:
        rows = session.execute(query).all()
    found = []
    for run_id, dep_id, schedule_id, when, name, policy, grace in rows:
        grace = default_grace if grace is None else grace
        late = when + timedelta(seconds=grace) < now
        due = DueRun(
            run_id, dep_id, schedule_id is not None, when, policy or "all", late, name == LATE
        )
        found.append((due, grace))
    return found


def mark_late(db: Database, now: datetime, default_grace: float) -> list[QueueEffect]:
    """Name overdue runs Late, or skip them per their policy; returns what to unqueue."""
    found = _due_runs(db, now, default_grace)
    verdict = late_verdict([due for due, _ in found])
    if not (verdict.mark_late or verdict.skip):
        return []
    skip, skip_by_grace = set(verdict.skip), dict[float, list[str]]()
    for late, grace in found:
        if late.run_id in skip:
            skip_by_grace.setdefault(grace, []).append(late.run_id)
    with db.session() as session:
        named = _set_state(session, verdict.mark_late, StateType.SCHEDULED, LATE, now, None)
        skipped = []
        for grace, run_ids in skip_by_grace.items():
            message = _skip_message(grace)
            skipped += _set_state(session, run_ids, StateType.CANCELLED, SKIPPED, now, message)
        effects = _unqueue_effects(session, skipped)
    if named or skipped:
        log.info("late_runs", named_late=len(named), skipped=len(skipped))
    return effects


def _set_state(
    session: Session,
    run_ids: list[str],
    state: StateType,
    name: str,
    now: datetime,
    message: str | None,
) -> list[str]:
    """Compare-and-set: only runs still unstarted change; their history rows are written."""
    if not run_ids:
        return []
    values: dict[str, object] = {
        "state_type": state,
        "state_name": name,
        "state_message": message,
        "state_timestamp": now,
    }
    if state.is_terminal:
        values["end_time"] = now
    changed = [
        row[0]
        for row in session.execute(
            update(RUNS)
            .where(
                RUNS.c.id.in_(run_ids),
                RUNS.c.state_type == StateType.SCHEDULED,
                RUNS.c.state_name.in_(UNSTARTED if state.is_terminal else UNSTARTED[:1]),
            )
            .values(**values)
            .returning(RUNS.c.id)
        )
    ]
    if changed:
        history = [
            {"flow_run_id": i, "type": state, "name": name, "message": message, "timestamp": now}
            for i in changed
        ]
        session.execute(insert(STATES), history)
        events.flow_run_states(session, changed, StateType.SCHEDULED.value, now=now)
    return changed


def _unqueue_effects(session: Session, run_ids: list[str]) -> list[QueueEffect]:
    if not run_ids:
        return []
    query = (
        select(m.FlowRun.id, m.WorkQueue.name, m.WorkPool.name)
        .join(m.WorkQueue, m.FlowRun.queue_id == m.WorkQueue.id)
        .join(m.WorkPool, m.WorkQueue.pool_id == m.WorkPool.id)
        .where(m.FlowRun.id.in_(run_ids))
    )
    return [
        QueueEffect(pool, queue, run_id, release=True, unqueue=True)
        for run_id, queue, pool in session.execute(query)
    ]


async def late_runs_once(orch: Orchestrator) -> int:
    """One pass: name overdue runs Late, skip those their policy skips; returns how many skipped."""
    grace = orch.settings.late_after_seconds
    effects = await orch.in_thread(mark_late, orch.db, datetime.now(UTC), grace)
    await queue_sync.apply_many(orch, effects)
    return len(effects)
