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
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select

from flowyard.errors import NotFound
from flowyard.orchestrator import queue_sync, runs
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.pools import Claim
from flowyard.states import StateType
from flowyard.store import models as m

log = structlog.get_logger()

RETURNED = "the worker's claim lease expired before the run started; returned to the queue"
CRASHED = "neither the worker nor the engine of this flow run heartbeats any more"
SILENT = "the process running this flow run stopped heartbeating (it died or was killed)"
CANCELLED_UNCONFIRMED = (
    "cancelled, but no worker confirmed stopping its infrastructure, which may still be running"
)


def _pool_names(orch: Orchestrator) -> list[str]:
    with orch.db.read() as session:
        return list(session.scalars(select(m.WorkPool.name)).all())


def _settle(orch: Orchestrator, claim: Claim) -> runs.QueueEffect | None:
    """Decide the fate of one run whose lease expired, in one store transaction."""
    with orch.db.session() as session:
        try:
            run = runs.get_run(session, claim.run_id, for_update=True)
        except NotFound:
            return None
        if run.claim_token not in (None, claim.token):
            return None  # claimed again since; the newer claim owns it
        state = run.state_type
        now = datetime.now(UTC)
        if state is StateType.PENDING:
            _, effect = runs.set_state(
                session, run, StateType.SCHEDULED, now=now, message=RETURNED, force=True
            )
            return effect
        if state in (StateType.RUNNING, StateType.PAUSED) or runs.waits_in_process(run):
            _, effect = runs.set_state(
                session, run, StateType.CRASHED, now=now, message=CRASHED, force=True
            )
            return effect
        if state is StateType.CANCELLING:
            _, effect = runs.set_state(
                session,
                run,
                StateType.CANCELLED,
                now=now,
                message=CANCELLED_UNCONFIRMED,
                force=True,
            )
            return effect
        return None


def _overdue_cancellations(orch: Orchestrator) -> list[runs.QueueEffect | None]:
    """Cancelling runs nobody confirmed within the timeout become Cancelled, with a warning."""
    cutoff = datetime.now(UTC) - timedelta(seconds=orch.settings.cancel_timeout_seconds)
    overdue_query = select(m.FlowRun.id).where(
        m.FlowRun.state_type == StateType.CANCELLING, m.FlowRun.state_timestamp < cutoff
    )
    with orch.db.read() as session:
        overdue = session.scalars(overdue_query).all()
    effects = []
    for run_id in overdue:
        with orch.db.session() as session:
            run = runs.get_run(session, run_id, for_update=True)
            _, effect = runs.set_state(
                session,
                run,
                StateType.CANCELLED,
                now=datetime.now(UTC),
                message=CANCELLED_UNCONFIRMED,
                force=False,
            )
        effects.append(effect)
        log.warning("cancellation_unconfirmed", run_id=run_id)
    return effects


def _silent_direct_runs(orch: Orchestrator) -> int:
    """Crash the directly called runs whose process was not heard of in time. After this
    API starts, each run first gets three of its own beat intervals: its beats could not
    arrive while the API was away."""
    now = datetime.now(UTC)
    silent = select(m.FlowRun.id, m.FlowRun.heartbeat_seconds).where(
        m.FlowRun.queue_id.is_(None),
        m.FlowRun.alive_until < now,
        m.FlowRun.state_type.in_([StateType.RUNNING, StateType.PAUSED, StateType.SCHEDULED]),
    )
    with orch.db.read() as session:
        candidates = session.execute(silent).all()
    trusted_for = time.time() - orch.trusted_at
    crashed = 0
    for run_id, heartbeat_seconds in candidates:
        if trusted_for < runs.MISSED_BEATS * (heartbeat_seconds or 0):
            continue  # in its grace period after a start
        with orch.db.session() as session:
            run = runs.get_run(session, run_id, for_update=True)
            if run.alive_until is None or run.alive_until >= now or run.state_type.is_terminal:
                continue  # heard of, or ended, since the read
            runs.set_state(session, run, StateType.CRASHED, now=now, message=SILENT, force=True)
        log.warning("flow_run_silent", run_id=run_id)
        crashed += 1
    return crashed


async def reconcile_once(orch: Orchestrator) -> int:
    """Settle expired leases and overdue cancellations; returns how many runs were handled."""
    if not orch.leases_trusted:
        return 0  # just started: leases expired while this API was down are renewed first
    effects = await orch.in_thread(_overdue_cancellations, orch)
    for effect in effects:
        await queue_sync.apply(orch, effect)
    handled = len(effects)
    handled += await orch.in_thread(_silent_direct_runs, orch)
    for pool in await orch.in_thread(_pool_names, orch):
        for claim in await orch.queues.expired_leases(pool, time.time()):
            effect = await orch.in_thread(_settle, orch, claim)
            await orch.queues.release(pool, claim.run_id)
            await queue_sync.apply(orch, effect)
            log.info("lease_expired", run_id=claim.run_id, pool=pool)
            handled += 1
    return handled
