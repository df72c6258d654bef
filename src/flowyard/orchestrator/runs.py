"""Flow runs in the store: lookup, creation and compare-and-set state changes.

Everything here runs inside one store transaction; what Redis must learn afterwards is
returned as a ``QueueEffect`` for ``queue_sync.apply`` to carry out once committed.

``AwaitingRetry`` (a Scheduled state) comes two ways. A crash with ``crash_retries`` left
returns the run to its queue: the claim is dropped and a new one starts it again. A flow's
own ``retries`` wait inside its engine (Running → AwaitingRetry → Running): the run keeps
its claim, token, slots and lease, and is never queued; ``waits_in_process`` tells the two
apart (a Scheduled run holding a claim token).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from flowyard.errors import Conflict, NotFound
from flowyard.orchestrator import events
from flowyard.orchestrator.names import run_name
from flowyard.orchestrator.transitions import Decision, decide
from flowyard.states import StateType
from flowyard.store import models as m

RESCHEDULED = "AwaitingRetry"


@dataclass(frozen=True)
class QueueEffect:
    """What a committed state change means for the run's Redis queue."""

    pool: str
    queue: str
    run_id: str
    release: bool = False
    enqueue_at: float | None = None
    unqueue: bool = False
    deployment_id: str | None = None  # counts against its deployment's concurrency limit
    priority: int = 0  # within its queue, lower first


def load_options() -> list[Any]:
    return [
        joinedload(m.FlowRun.flow),
        joinedload(m.FlowRun.deployment),
        joinedload(m.FlowRun.queue).joinedload(m.WorkQueue.pool),
    ]


def get_run(session: Session, ref: str, *, for_update: bool = False) -> m.FlowRun:
    """A run by id, or by a unique prefix of its id (at least 4 characters)."""
    query = select(m.FlowRun).options(*load_options())
    run = session.scalars(query.where(m.FlowRun.id == ref)).first()
    if run is None and len(ref) >= 4:
        matches = session.scalars(query.where(m.FlowRun.id.startswith(ref)).limit(2)).all()
        if len(matches) > 1:
            raise Conflict(f"flow run prefix {ref!r} is ambiguous; give more characters")
        run = matches[0] if matches else None
    if run is None:
        raise NotFound(f"flow run {ref!r} not found")
    if for_update and not session.get_bind().dialect.name == "sqlite":
        session.execute(select(m.FlowRun.id).where(m.FlowRun.id == run.id).with_for_update())
        session.refresh(run)
    return run


def new_run(
    session: Session,
    *,
    flow: m.Flow,
    now: datetime,
    deployment: m.Deployment | None = None,
    queue: m.WorkQueue | None = None,
    parameters: dict[str, Any] | None = None,
    job_variables: dict[str, Any] | None = None,
    scheduled_time: datetime | None = None,
    name: str | None = None,
    state: StateType = StateType.SCHEDULED,
    parent_task_run_id: str | None = None,
    priority: int | None = None,
    tags: list[str] | None = None,
) -> m.FlowRun:
    if scheduled_time is not None and scheduled_time.tzinfo is None:
        scheduled_time = scheduled_time.replace(tzinfo=UTC)
    run = m.FlowRun(
        id=m.new_id(),
        name=name or run_name(),
        flow=flow,
        deployment=deployment,
        queue=queue,
        parameters=parameters or {},
        job_variables=job_variables or {},
        scheduled_time=scheduled_time or now,
        parent_task_run_id=parent_task_run_id,
        tags=sorted(set(tags or ())),
        priority=priority if priority is not None else (deployment.priority if deployment else 0),
    )
    session.add(run)
    write_state(session, run, state, message=None, now=now)
    return run


def set_state(
    session: Session,
    run: m.FlowRun,
    proposed: StateType,
    *,
    now: datetime,
    message: str | None = None,
    token: str | None = None,
    force: bool = False,
    scheduled_time: datetime | None = None,
    name: str | None = None,
) -> tuple[Decision, QueueEffect | None]:
    """Apply ``proposed`` if the state machine allows it; report what Redis must do.

    ``scheduled_time`` is when an in-process retry (Running → Scheduled) will start;
    ``name`` the state's name when not its type's (``Suspended``, ``Resuming``).
    """
    previous = run.state_type
    decision = decide(previous, proposed, run_token=run.claim_token, given_token=token, force=force)
    if not decision.accepted:
        return decision, None
    if previous is StateType.RUNNING and proposed is StateType.SCHEDULED:
        _await_retry_in_process(session, run, message, now, scheduled_time)
        return decision, None
    write_state(session, run, proposed, message=message, now=now, name=name)
    if proposed is StateType.CRASHED and _reschedule_after_crash(session, run, now):
        return decision, queue_effect(run, previous, StateType.SCHEDULED)
    return decision, queue_effect(run, previous, proposed)


def _await_retry_in_process(
    session: Session,
    run: m.FlowRun,
    message: str | None,
    now: datetime,
    scheduled_time: datetime | None,
) -> None:
    """The engine waits out a flow retry's delay: Scheduled, but claimed and never queued."""
    if scheduled_time is not None and scheduled_time.tzinfo is None:
        scheduled_time = scheduled_time.replace(tzinfo=UTC)
    run.scheduled_time = max(scheduled_time or now, now)
    write_state(
        session, run, StateType.SCHEDULED, message=message, now=now, name=RESCHEDULED,
        keep_claim=True,
    )  # fmt: skip


MISSED_BEATS = 3  # a run not heard of for this many heartbeat intervals is Crashed


def heard_of(run: m.FlowRun, heartbeat_seconds: float) -> None:
    """A directly called run's process beats every ``heartbeat_seconds``: it is alive until
    it has missed too many beats."""
    run.heartbeat_seconds = heartbeat_seconds
    run.alive_until = datetime.now(UTC) + timedelta(seconds=MISSED_BEATS * heartbeat_seconds)


def waits_in_process(run: m.FlowRun) -> bool:
    """True for a run awaiting a flow retry inside its engine (it still holds its claim)."""
    return run.state_type is StateType.SCHEDULED and run.claim_token is not None


def _reschedule_after_crash(session: Session, run: m.FlowRun, now: datetime) -> bool:
    """A crashed run of a deployment with ``crash_retries`` left is Scheduled again, at once.

    The crash stays in the run's history; a new claim gives it a new token, so anything
    the crashed infrastructure still reports is refused.
    """
    allowed = run.deployment.crash_retries if run.deployment is not None else 0
    if not allowed:
        return False
    crashes = session.scalar(
        select(func.count())
        .select_from(m.FlowRunState)
        .where(m.FlowRunState.flow_run_id == run.id, m.FlowRunState.type == StateType.CRASHED)
    )
    if (crashes or 0) > allowed:
        return False
    message = f"rescheduled after a crash ({crashes} of {allowed} allowed)"
    run.scheduled_time, run.end_time = now, None
    write_state(session, run, StateType.SCHEDULED, message=message, now=now, name=RESCHEDULED)
    return True


def write_state(
    session: Session,
    run: m.FlowRun,
    proposed: StateType,
    *,
    message: str | None,
    now: datetime,
    name: str | None = None,
    keep_claim: bool = False,
) -> None:
    previous = run.state_type.value if run.state_type is not None else None
    run.state_type = proposed
    run.state_name = name or proposed.display_name
    run.state_message = message
    run.state_timestamp = now
    if proposed is StateType.RUNNING and run.start_time is None:
        run.start_time = now
    if proposed.is_terminal:
        run.end_time = now
    if proposed is StateType.SCHEDULED and not keep_claim:
        run.claim_token = run.worker_name = run.infrastructure_id = None
        run.infrastructure_details = None
    session.add(
        m.FlowRunState(
            flow_run=run,
            type=proposed,
            name=run.state_name,
            message=message,
            timestamp=now,
        )
    )
    events.flow_run_state(session, run, previous, now=now)


def released(run: m.FlowRun) -> QueueEffect | None:
    """A run that lets go of its claim (a suspended one): its lease and slots go back."""
    if run.queue is None:
        return None
    return QueueEffect(run.queue.pool.name, run.queue.name, run.id, release=True)


def queue_effect(run: m.FlowRun, previous: StateType, proposed: StateType) -> QueueEffect | None:
    if run.queue is None:
        return None
    pool, queue = run.queue.pool.name, run.queue.name
    if proposed is StateType.SCHEDULED:
        return QueueEffect(
            pool,
            queue,
            run.id,
            release=True,
            enqueue_at=run.scheduled_time.timestamp(),
            deployment_id=run.deployment_id,
            priority=run.priority,
        )
    if proposed.is_terminal:
        return QueueEffect(
            pool, queue, run.id, release=True, unqueue=previous is StateType.SCHEDULED
        )
    return None
