"""The dispatcher: keeps the Redis queues in step with the store.

Runs are enqueued as they are created; this service rebuilds every pool's configuration
and ready queues from the store when the server starts, when Redis comes back empty
(restarted or flushed), and when a queue write was deferred during an outage. The store
is the truth, so a rebuild loses nothing, and ZADD NX makes it idempotent.
"""

from __future__ import annotations

from collections import defaultdict

import structlog
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from flowyard.orchestrator.api.pools import PoolConfig, sync_pool
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.states import StateType
from flowyard.store import models as m

log = structlog.get_logger()


def _read_store(
    orch: Orchestrator,
) -> tuple[list[PoolConfig], dict[tuple[str, str], list[tuple[str, float]]]]:
    with orch.db.read() as session:
        pools = session.scalars(select(m.WorkPool).options(joinedload(m.WorkPool.queues))).unique()
        configs = [PoolConfig.of(pool) for pool in pools]
        rows = session.execute(
            select(m.FlowRun.id, m.FlowRun.scheduled_time, m.WorkQueue.name, m.WorkPool.name)
            .join(m.WorkQueue, m.FlowRun.queue_id == m.WorkQueue.id)
            .join(m.WorkPool)
            .where(m.FlowRun.state_type == StateType.SCHEDULED)
        ).all()
    ready: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for run_id, scheduled_time, queue, pool in rows:
        ready[(pool, queue)].append((run_id, scheduled_time.timestamp()))
    return configs, ready


async def rebuild(orch: Orchestrator) -> int:
    """Write every pool's configuration and every Scheduled run into Redis; returns runs added."""
    configs, ready = await orch.in_thread(_read_store, orch)
    for config in configs:
        await sync_pool(orch, config)
    added = 0
    for (pool, queue), entries in ready.items():
        added += await orch.queues.enqueue_many(pool, queue, entries)
    await orch.queues.mark_built()
    log.info("queues_rebuilt", pools=len(configs), added=added)
    return added


async def dispatch_once(orch: Orchestrator) -> int:
    """Rebuild when Redis lost its state or a write was deferred; else do nothing."""
    if orch.rebuild_needed or not await orch.queues.is_built():
        orch.rebuild_needed = False
        try:
            return await rebuild(orch)
        except Exception:
            orch.rebuild_needed = True
            raise
    return 0
