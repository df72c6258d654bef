"""Work pools and their queues in Redis: enqueue, atomic claim, leases and slots.

The key layout is in :mod:`flowyard.pools.keys`; each atomic operation is one Lua
script next to the module that runs it. :class:`PoolQueues` is made of one part per
concern, each in its own module:

- :mod:`flowyard.pools.configuration`: pool and queue settings, deletion;
- :mod:`flowyard.pools.runs`: enqueue, remove, the atomic claim, release;
- :mod:`flowyard.pools.leases`: claim leases and records;
- :mod:`flowyard.pools.scripts`: the scripts, their key lists, the cached layouts;
- :mod:`flowyard.pools.models`: the values taken and returned, and their Redis forms.
"""

from __future__ import annotations

from flowyard.pools import keys
from flowyard.pools.configuration import PoolConfiguration
from flowyard.pools.leases import PoolLeases
from flowyard.pools.models import (
    Claim,
    ClaimResult,
    Layout,
    QueueConfig,
    layout_from_config,
    queue_fields,
)
from flowyard.pools.runs import PoolRuns
from flowyard.pools.scripts import boundary

__all__ = [
    "Claim",
    "ClaimResult",
    "Layout",
    "PoolQueues",
    "QueueConfig",
    "layout_from_config",
    "queue_fields",
]


class PoolQueues(PoolConfiguration, PoolRuns, PoolLeases):
    """The Redis side of every work pool: one instance per process is enough."""

    @boundary
    async def depth(self, pool: str, queue: str) -> int:
        """How many runs wait in a queue (due or not)."""
        return int(await self._redis.zcard(keys.ready(pool, queue)))

    @boundary
    async def running_count(self, pool: str, queue: str | None = None) -> int:
        """How many slots are held in the pool, or in one of its queues."""
        key = keys.pool_slots(pool) if queue is None else keys.queue_slots(pool, queue)
        return int(await self._redis.zcard(key))

    @boundary
    async def mark_built(self) -> None:
        """Record that the queues were rebuilt from the store."""
        await self._redis.set(keys.BUILT, "1")

    @boundary
    async def is_built(self) -> bool:
        """False when Redis lost its data since the last rebuild (restarted or flushed)."""
        return bool(await self._redis.exists(keys.BUILT))

    @boundary
    async def ping(self) -> None:
        """Check that Redis answers; raises QueueUnavailable otherwise."""
        await self._redis.ping()
