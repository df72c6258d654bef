"""The store's half of background task runs: create, claim, report, return, sweep.

A background run is a task run with no flow run. Every move after its creation is a
compare-and-set: a claim moves it ``Scheduled → Pending`` only while it is Scheduled, a
report is written only with the run's current claim token and only while the run is not
final, and a lease that expired returns it to ``Scheduled`` only if that lease's token
still holds it. So a run is never completed twice, nor by a worker whose claim was
taken back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.errors import Conflict, NotFound
from flowyard.orchestrator import documents, events
from flowyard.pools.task_queue import TaskClaim
from flowyard.states import TERMINAL_STATES, StateType
from flowyard.store import models as m

RUNS = cast(Table, m.TaskRun.__table__)
ACTIVE = (StateType.PENDING, StateType.RUNNING)
RETURNED = "the task worker's claim lease expired; returned to the queue"
STALE = (
    "task run {id!r} is no longer held by this claim (its lease expired and it was "
    "returned to the queue or claimed again, or it already ended)"
)


def create(session: Session, body: s.BackgroundTaskRunCreate) -> s.TaskRun:
    """Record a Scheduled background run."""
    inputs = {name: [i.model_dump() for i in ids] for name, ids in body.task_inputs.items()}
    row = m.TaskRun(
        flow_run_id=None,
        name=body.name,
        task_key=body.task_key,
        parameters=body.parameters,
        parameters_ref=body.parameters_ref.model_dump() if body.parameters_ref else None,
        state_type=StateType.SCHEDULED,
        state_name=StateType.SCHEDULED.display_name,
        tags=body.tags,
        task_version=body.task_version,
        task_inputs=inputs,
        caller_flow_run_id=body.caller_flow_run_id,
        created=m.utcnow(),
    )
    if body.caller_flow_run_id and session.get(m.FlowRun, body.caller_flow_run_id) is None:
        raise NotFound(f"flow run {body.caller_flow_run_id!r} not found")
    session.add(row)
    session.flush()
    events.task_run_state(session, row, None, now=row.created)
    return documents.task_run(row)


def mark_pending(session: Session, claims: list[TaskClaim], worker: str) -> list[s.ClaimedTaskRun]:
    """Move each claimed run Scheduled → Pending with its token; runs that moved are lost."""
    won = []
    for claim in claims:
        statement = (
            update(RUNS)
            .where(
                RUNS.c.id == claim.run_id,
                RUNS.c.flow_run_id.is_(None),
                RUNS.c.state_type == StateType.SCHEDULED,
            )
            .values(
                state_type=StateType.PENDING,
                state_name=StateType.PENDING.display_name,
                message=None,
                claim_token=claim.token,
                worker_name=worker,
            )
        )
        if session.execute(statement).rowcount == 1:  # type: ignore[attr-defined]
            won.append(claim)
    claimed = []
    for claim in won:
        row = session.get_one(m.TaskRun, claim.run_id)
        events.task_run_state(session, row, StateType.SCHEDULED.value, now=datetime.now(UTC))
        ref = s.ResultRef.model_validate(row.parameters_ref) if row.parameters_ref else None
        claimed.append(
            s.ClaimedTaskRun(run=documents.task_run(row), token=claim.token, parameters_ref=ref)
        )
    return claimed


def report(session: Session, run_id: str, body: s.BackgroundStateReport) -> s.TaskRun:
    """Write a task worker's report, if its token holds the run; Conflict otherwise.
    A worker reports Running and a final state only (any other would leave the run
    held by its claim in Redis but not active in the store)."""
    if body.state is not StateType.RUNNING and not body.state.is_terminal:
        raise Conflict(
            f"a task worker reports Running or a final state, not {body.state.display_name}"
        )
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "state_type": body.state,
        "state_name": body.state_name or body.state.display_name,
        "message": body.message,
    }
    if body.run_count is not None:
        values["run_count"] = body.run_count
    if body.cache_key is not None:
        values["cache_key"] = body.cache_key
    if body.result is not None:
        values["result_ref"] = body.result.model_dump()
    if body.state is StateType.RUNNING:
        values["start_time"] = now
    if body.state.is_terminal:
        values["end_time"] = now
    statement = (
        update(RUNS)
        .where(
            RUNS.c.id == run_id,
            RUNS.c.claim_token == body.token,
            RUNS.c.state_type.not_in(sorted(TERMINAL_STATES)),
        )
        .values(**values)
    )
    if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
        if session.get(m.TaskRun, run_id) is None:
            raise NotFound(f"task run {run_id!r} not found")
        raise Conflict(STALE.format(id=run_id))
    row = session.get_one(m.TaskRun, run_id, populate_existing=True)
    events.task_run_state(session, row, None, now=now)
    return documents.task_run(row)


REFUSED = (
    "background task run {id!r} cannot be set {state}: it moves to Pending and Running only "
    "through a task worker's claim; set it Scheduled or a final state"
)


@dataclass(frozen=True)
class QueueChange:
    """What Redis must do after a state was set through the API: end the claim that held
    the run (if any), then queue it again (Scheduled) or drop it from its ready queue."""

    run_id: str
    task_key: str
    ended_claim: TaskClaim | None
    queue: bool
    final: bool


def set_state(
    session: Session, run_id: str, body: s.TaskRunUpdate
) -> tuple[s.TaskRun, QueueChange]:
    """Set a background run Scheduled or final through the API (not a worker's report).

    Any claim on the run ends with it (its token is forgotten, so the worker's later
    reports are refused); Pending and Running come only from a claim and are refused.
    """
    if body.state is not StateType.SCHEDULED and not body.state.is_terminal:
        raise Conflict(REFUSED.format(id=run_id, state=body.state.display_name))
    row = session.get(m.TaskRun, run_id, with_for_update=True, populate_existing=True)
    if row is None or row.flow_run_id is not None:
        raise NotFound(f"background task run {run_id!r} not found")
    held = TaskClaim(row.id, row.claim_token, row.task_key) if row.claim_token else None
    previous = row.state_type.value
    row.state_type, row.message = body.state, body.message
    row.state_name = body.state_name or body.state.display_name
    row.claim_token = row.worker_name = None
    if body.run_count is not None:
        row.run_count = body.run_count
    if body.result is not None:
        row.result_ref = body.result.model_dump()
    row.end_time = datetime.now(UTC) if body.state.is_terminal else None
    events.task_run_state(session, row, previous, now=datetime.now(UTC))
    session.flush()
    change = QueueChange(
        row.id, row.task_key, held, queue=not body.state.is_terminal, final=body.state.is_terminal
    )
    return documents.task_run(row), change


def return_to_queue(session: Session, claim: TaskClaim) -> bool:
    """A claim's lease expired: back to Scheduled, if that claim still holds the run."""
    statement = (
        update(RUNS)
        .where(
            RUNS.c.id == claim.run_id,
            RUNS.c.claim_token == claim.token,
            RUNS.c.state_type.in_(ACTIVE),
        )
        .values(
            state_type=StateType.SCHEDULED,
            state_name=StateType.SCHEDULED.display_name,
            message=RETURNED,
            claim_token=None,
            worker_name=None,
        )
    )
    if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
        return False
    row = session.get_one(m.TaskRun, claim.run_id, populate_existing=True)
    events.task_run_state(session, row, None, now=datetime.now(UTC))
    return True


def read(session: Session, run_id: str) -> s.TaskRun:
    row = session.get(m.TaskRun, run_id)
    if row is None:
        raise NotFound(f"task run {run_id!r} not found")
    return documents.task_run(row)


Queued = dict[str, list[str]]  # task key -> Scheduled run ids
Held = tuple[list[TaskClaim], dict[str, str]]  # claims of active runs, their workers


def sweep(session: Session) -> tuple[Queued, Held]:
    """What Redis must hold: the Scheduled background runs, and the claims of active ones."""
    background = RUNS.c.flow_run_id.is_(None)
    queued: Queued = {}
    scheduled = select(RUNS.c.id, RUNS.c.task_key).where(
        background, RUNS.c.state_type == StateType.SCHEDULED
    )
    for run_id, task_key in session.execute(scheduled):
        queued.setdefault(task_key, []).append(run_id)
    active = select(RUNS.c.id, RUNS.c.claim_token, RUNS.c.task_key, RUNS.c.worker_name).where(
        background, RUNS.c.state_type.in_(ACTIVE), RUNS.c.claim_token.is_not(None)
    )
    claims, workers = [], {}
    for run_id, token, task_key, worker in session.execute(active):
        claims.append(TaskClaim(run_id, token, task_key))
        workers[run_id] = worker or ""
    return queued, (claims, workers)
