"""Background task runs' liveness: expired leases go back to the queue; Redis follows the store.

A task worker that stops heartbeating (it died, was killed, lost the network) lets the
leases of its runs expire; each such run returns to ``Scheduled`` — whether it had started
or not — and is queued for another worker (the store's compare-and-set on the lease's
token makes a late report of the old worker a 409). Each pass also queues again every
Scheduled background run (``ZADD NX``, so a run queued already keeps its place) and
restores the claims of active runs Redis lost, so that a run recorded while Redis was away,
or returned by a pass that stopped half-way, is never lost.
"""

from __future__ import annotations

import time

import structlog

from flowyard.orchestrator import background_runs as store
from flowyard.orchestrator.api.background_tasks import BackgroundRuns
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.pools.task_queue import TaskClaim

log = structlog.get_logger()


async def task_leases_once(orch: Orchestrator, bg: BackgroundRuns) -> int:
    """Return runs of expired leases to their queue, then sync Redis; how many returned."""
    if not orch.leases_trusted:
        return 0  # just started: leases expired while this API was down are renewed first
    returned = 0
    for claim in await bg.queue.expired(time.time()):

        def settle(claim: TaskClaim = claim) -> bool:
            with orch.db.session() as session:
                return store.return_to_queue(session, claim)

        if await orch.in_thread(settle):
            await bg.queue.enqueue(claim.task_key, [claim.run_id], time.time())
            log.info("task_lease_expired", run_id=claim.run_id, task_key=claim.task_key)
            returned += 1
        await bg.queue.release(claim.run_id, claim.token)
    await sync_queue(orch, bg)
    return returned


async def sync_queue(orch: Orchestrator, bg: BackgroundRuns) -> None:
    """Queue every Scheduled background run and lease every active one Redis lost."""

    def read() -> tuple[store.Queued, store.Held]:
        with orch.db.read() as session:
            return store.sweep(session)

    queued, (held, workers) = await orch.in_thread(read)
    now = time.time()
    for task_key, run_ids in queued.items():
        await bg.queue.enqueue(task_key, run_ids, now)
    await bg.queue.restore(held, workers, now + orch.settings.claim_lease_seconds)
