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

import structlog

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
from flowyard.pools.redis_server import serving_servers
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


log = structlog.get_logger()


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
        """Record that the queues were rebuilt from the store, on the servers that
        :meth:`is_built` saw last (a failover during the rebuild is then noticed)."""
        await self._redis.set(keys.BUILT, "1")
        self._built_on = self._serving or await serving_servers(self._redis)

    @boundary
    async def is_built(self) -> bool:
        """False when Redis lost its data since the last rebuild: restarted or flushed (no
        ``fy:{built}``), or other servers serve it now (a failover to a replica that may
        not have had the latest writes)."""
        self._serving = await serving_servers(self._redis)
        if self._built_on is not None and self._serving != self._built_on:
            log.warning("redis_servers_changed", before=len(self._built_on), now=len(self._serving))
            return False
        return bool(await self._redis.exists(keys.BUILT))

    @boundary
    async def ping(self) -> None:
        """Check that Redis answers; raises QueueUnavailable otherwise."""
        await self._redis.ping()
