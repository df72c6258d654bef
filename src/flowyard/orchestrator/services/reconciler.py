"""The reconciler: runs whose claim lease expired go back to the queue, or are Crashed.

A lease expires when the worker that claimed a run stopped heartbeating: it died, was
killed, or lost the network. A run it had not started yet returns to Scheduled; one that
was already running is marked Crashed. Either way the run's slots are freed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

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
CRASHED = "the worker running this flow run stopped heartbeating"


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
        if state in (StateType.RUNNING, StateType.CANCELLING):
            _, effect = runs.set_state(
                session, run, StateType.CRASHED, now=now, message=CRASHED, force=True
            )
            return effect
        return None


async def reconcile_once(orch: Orchestrator) -> int:
    """Handle every expired lease of every pool; returns how many were handled."""
    handled = 0
    for pool in await orch.in_thread(_pool_names, orch):
        for claim in await orch.queues.expired_leases(pool, time.time()):
            effect = await orch.in_thread(_settle, orch, claim)
            await orch.queues.release(pool, claim.run_id)
            await queue_sync.apply(orch, effect)
            log.info("lease_expired", run_id=claim.run_id, pool=pool)
            handled += 1
    return handled
