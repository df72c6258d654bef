"""The reconciler: settles runs whose worker vanished, and cancellations nobody confirmed.

A lease expires when the worker that claimed a run stopped heartbeating: it died, was
killed, or lost the network. A run it had not started yet returns to Scheduled; one that
was running (or awaiting a flow retry inside its engine) is marked Crashed; one being
cancelled is marked Cancelled with a warning that its infrastructure may still run. Either
way the run's slots are freed. A run still Cancelling after ``cancel_timeout_seconds`` is
marked Cancelled with the same warning.

A flow called directly (no pool, no lease) whose process promised heartbeats and was not
heard of by its ``alive_until`` is Crashed too: its process died. After this API starts,
each such run gets three of its beat intervals to be heard of first.

What happens to a run is one pure table (``decide``); each pass reads the clock once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

import structlog
from sqlalchemy import select

from flowyard.errors import NotFound
from flowyard.orchestrator import queue_sync, runs
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.pools import Claim
from flowyard.states import StateType as S
from flowyard.store import models as m

log = structlog.get_logger()

RETURNED = "the worker's claim lease expired before the run started; returned to the queue"
CRASHED = "neither the worker nor the engine of this flow run heartbeats any more"
SILENT = "the process running this flow run stopped heartbeating (it died or was killed)"
CANCELLED_UNCONFIRMED = (
    "cancelled, but no worker confirmed stopping its infrastructure, which may still be running"
)


class Cause(Enum):
    """Why the reconciler looks at a run."""

    LEASE_EXPIRED = "lease_expired"  # neither its worker nor its engine heartbeats
    CANCEL_OVERDUE = "cancel_overdue"  # Cancelling for longer than the cancel timeout
    PROCESS_SILENT = "process_silent"  # a directly called run's process stopped beating


@dataclass(frozen=True)
class Move:
    """The state the reconciler forces a run into, and the message it leaves."""

    to: S
    message: str


TABLE: dict[tuple[Cause, S], Move] = {
    (Cause.LEASE_EXPIRED, S.PENDING): Move(S.SCHEDULED, RETURNED),
    (Cause.LEASE_EXPIRED, S.RUNNING): Move(S.CRASHED, CRASHED),
    (Cause.LEASE_EXPIRED, S.PAUSED): Move(S.CRASHED, CRASHED),
    (Cause.LEASE_EXPIRED, S.CANCELLING): Move(S.CANCELLED, CANCELLED_UNCONFIRMED),
    (Cause.CANCEL_OVERDUE, S.CANCELLING): Move(S.CANCELLED, CANCELLED_UNCONFIRMED),
    (Cause.PROCESS_SILENT, S.SCHEDULED): Move(S.CRASHED, SILENT),
    (Cause.PROCESS_SILENT, S.RUNNING): Move(S.CRASHED, SILENT),
    (Cause.PROCESS_SILENT, S.PAUSED): Move(S.CRASHED, SILENT),
}
"""Every (cause, state) the reconciler acts on; any other run is left as it is."""


def decide(cause: Cause, state: S, *, waits_in_process: bool = False) -> Move | None:
    """What the reconciler does to a run in ``state`` for ``cause`` (None: nothing).

    ``waits_in_process``: the run awaits a flow retry inside its engine (Scheduled, but
    still claimed), so its expired lease means the same as a Running run's.
    """
    if cause is Cause.LEASE_EXPIRED and state is S.SCHEDULED and waits_in_process:
        state = S.RUNNING
    return TABLE.get((cause, state))


def acted_on(cause: Cause) -> list[S]:
    """The states in which ``cause`` moves a run (what a pass looks for)."""
    return sorted(state for c, state in TABLE if c is cause)


Settled = tuple[Move | None, runs.QueueEffect | None]  # the move made (if any), for Redis


def _settle(
    orch: Orchestrator,
    run_id: str,
    cause: Cause,
    now: datetime,
    still: Callable[[m.FlowRun], bool],
) -> Settled:
    """Apply ``decide`` to the run as it is now, in one store transaction; ``still`` checks
    that what made the pass pick it (read without a lock) holds."""
    with orch.db.session() as session:
        try:
            run = runs.get_run(session, run_id, for_update=True)
        except NotFound:
            return None, None  # deleted since it was picked
        move = decide(cause, run.state_type, waits_in_process=runs.waits_in_process(run))
        if move is None or not still(run):
            return None, None
        _, effect = runs.set_state(session, run, move.to, now=now, message=move.message, force=True)
        return move, effect


async def _settle_and_sync(
    orch: Orchestrator,
    run_id: str,
    cause: Cause,
    now: datetime,
    still: Callable[[m.FlowRun], bool],
) -> bool:
    move, effect = await orch.in_thread(_settle, orch, run_id, cause, now, still)
    await queue_sync.apply(orch, effect)
    return move is not None


def _pool_names(orch: Orchestrator) -> list[str]:
    with orch.db.read() as session:
        return list(session.scalars(select(m.WorkPool.name)).all())


def _overdue(orch: Orchestrator, cutoff: datetime) -> list[str]:
    query = select(m.FlowRun.id).where(
        m.FlowRun.state_type.in_(acted_on(Cause.CANCEL_OVERDUE)),
        m.FlowRun.state_timestamp < cutoff,
    )
    with orch.db.read() as session:
        return list(session.scalars(query).all())


async def _overdue_cancellations(orch: Orchestrator, now: datetime) -> int:
    """Cancelling runs nobody confirmed within the timeout become Cancelled, with a warning."""
    cutoff = now - timedelta(seconds=orch.settings.cancel_timeout_seconds)
    settled = 0
    for run_id in await orch.in_thread(_overdue, orch, cutoff):
        if await _settle_and_sync(
            orch, run_id, Cause.CANCEL_OVERDUE, now, lambda run: run.state_timestamp < cutoff
        ):
            log.warning("cancellation_unconfirmed", run_id=run_id)
            settled += 1
    return settled


def _silent(orch: Orchestrator, now: datetime) -> list[str]:
    """The directly called runs not heard of in time and past their grace period: after
    this API starts, each run first gets three of its own beat intervals (its beats could
    not arrive while the API was away)."""
    query = select(m.FlowRun.id, m.FlowRun.heartbeat_seconds).where(
        m.FlowRun.queue_id.is_(None),
        m.FlowRun.alive_until < now,
        m.FlowRun.state_type.in_(acted_on(Cause.PROCESS_SILENT)),
    )
    with orch.db.read() as session:
        candidates = session.execute(query).all()
    trusted_for = now.timestamp() - orch.trusted_at
    return [
        run_id
        for run_id, heartbeat_seconds in candidates
        if trusted_for >= runs.MISSED_BEATS * (heartbeat_seconds or 0)
    ]


async def _silent_direct_runs(orch: Orchestrator, now: datetime) -> int:
    """Crash the directly called runs whose process was not heard of in time."""

    def still_silent(run: m.FlowRun) -> bool:
        return run.alive_until is not None and run.alive_until < now

    crashed = 0
    for run_id in await orch.in_thread(_silent, orch, now):
        if await _settle_and_sync(orch, run_id, Cause.PROCESS_SILENT, now, still_silent):
            log.warning("flow_run_silent", run_id=run_id)
            crashed += 1
    return crashed


async def _expired_leases(orch: Orchestrator, now: datetime) -> int:
    """Settle every run whose lease expired, and free its slots."""
    handled = 0
    for pool in await orch.in_thread(_pool_names, orch):
        for claim in await orch.queues.expired_leases(pool, now.timestamp()):
            move, effect = await orch.in_thread(
                _settle, orch, claim.run_id, Cause.LEASE_EXPIRED, now, _still_claimed_by(claim)
            )
            await orch.queues.release(pool, claim.run_id)
            await queue_sync.apply(orch, effect)
            log.info("lease_expired", run_id=claim.run_id, pool=pool, moved=move is not None)
            handled += 1
    return handled


def _still_claimed_by(claim: Claim) -> Callable[[m.FlowRun], bool]:
    """False once the run was claimed again: the newer claim owns it."""
    return lambda run: run.claim_token in (None, claim.token)


async def reconcile_once(orch: Orchestrator, now: datetime | None = None) -> int:
    """Settle overdue cancellations, silent direct runs and expired leases as of ``now``
    (default: the clock, read once); returns how many runs were handled."""
    if not orch.leases_trusted:
        return 0  # just started: leases expired while this API was down are renewed first
    now = now or datetime.now(UTC)
    handled = await _overdue_cancellations(orch, now)
    handled += await _silent_direct_runs(orch, now)
    return handled + await _expired_leases(orch, now)
