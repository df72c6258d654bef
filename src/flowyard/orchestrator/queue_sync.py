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
            await queues.enqueue(effect.pool, effect.queue, effect.run_id, effect.enqueue_at)
    except QueueUnavailable:
        orch.rebuild_needed = True
        log.warning("queue_sync_deferred", run_id=effect.run_id, pool=effect.pool)


async def apply_many(orch: Orchestrator, effects: Iterable[QueueEffect | None]) -> None:
    """Carry many committed changes; plain enqueues go to Redis in batches per queue."""
    batches: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for effect in effects:
        if effect is None:
            continue
        if effect.enqueue_at is not None and not (effect.unqueue or effect.release):
            batches[effect.pool, effect.queue].append((effect.run_id, effect.enqueue_at))
        else:
            await apply(orch, effect)
    for (pool, queue), runs in batches.items():
        try:
            await orch.queues.enqueue_many(pool, queue, runs)
        except QueueUnavailable:
            orch.rebuild_needed = True
            log.warning("queue_sync_deferred", runs=len(runs), pool=pool)
