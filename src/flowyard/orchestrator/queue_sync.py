"""Carrying committed store changes over to the Redis queues.

The store is the truth: when Redis is unreachable here, the change stays in the store
and the dispatcher's next rebuild brings Redis back in step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import structlog

from flowyard.errors import QueueUnavailable
from flowyard.orchestrator.runs import QueueEffect
from flowyard.orchestrator.runtime import Orchestrator

log = structlog.get_logger()


async def apply(orch: Orchestrator, effect: QueueEffect | None) -> None:
    """Carry one committed change to Redis; on an outage, leave it to the dispatcher's rebuild."""
    if effect is None:
        return
    queues = orch.queues
    try:
        if effect.unqueue:
            await queues.remove(effect.pool, effect.queue, effect.run_id)
        if effect.release:
            await queues.release(effect.pool, effect.run_id)
        if effect.enqueue_at is not None:
            await queues.enqueue(
                effect.pool,
                effect.queue,
                effect.run_id,
                effect.enqueue_at,
                effect.deployment_id,
                effect.priority,
            )
    except QueueUnavailable:
        orch.rebuild_needed = True
        log.warning("queue_sync_deferred", run_id=effect.run_id, pool=effect.pool)


async def apply_many(orch: Orchestrator, effects: Iterable[QueueEffect | None]) -> None:
    """Carry many committed changes; plain enqueues go to Redis in batches per queue."""
    batches: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    deployments: dict[str, str] = {}
    priorities: dict[str, int] = {}
    for effect in effects:
        if effect is None:
            continue
        if effect.enqueue_at is not None and not (effect.unqueue or effect.release):
            batches[effect.pool, effect.queue].append((effect.run_id, effect.enqueue_at))
            if effect.deployment_id:
                deployments[effect.run_id] = effect.deployment_id
            if effect.priority:
                priorities[effect.run_id] = effect.priority
        else:
            await apply(orch, effect)
    for (pool, queue), runs in batches.items():
        try:
            await orch.queues.enqueue_many(pool, queue, runs, deployments, priorities)
        except QueueUnavailable:
            orch.rebuild_needed = True
            log.warning("queue_sync_deferred", runs=len(runs), pool=pool)


async def sync_deployment_limit(
    orch: Orchestrator,
    pool: str,
    deployment_id: str,
    limit: int | None,
    strategy: str,
    *,
    old_pool: str | None = None,
) -> None:
    """Tell the pool's claims about a deployment's concurrency limit (moved: the old pool too)."""
    try:
        if old_pool is not None and old_pool != pool:
            await orch.deployment_limits.set(old_pool, deployment_id, None)
        cancel_new = strategy == "cancel-new"
        await orch.deployment_limits.set(pool, deployment_id, limit, cancel_new=cancel_new)
    except QueueUnavailable:
        orch.rebuild_needed = True
        log.warning("queue_sync_deferred", deployment_id=deployment_id, pool=pool)
