"""Writes of a pool's configuration (its pause, concurrency limit and queues, all at once) and
its deletion.

A write that changes the queue set or a queue's priority replaces the config ``version``,
so that a script called with an older layout answers "stale" (see
:mod:`flowyard.pools.scripts`).
"""

from __future__ import annotations

import uuid

from flowyard.errors import Conflict
from flowyard.pools import keys
from flowyard.pools.models import QueueConfig, checked_limit, queue_fields, text
from flowyard.pools.scripts import PoolScripts, boundary, deployment_keys, pool_keys, queue_keys


class PoolConfiguration(PoolScripts):
    """Pool and queue settings as the orchestrator writes them."""

    @boundary
    async def sync_pool(
        self, pool: str, *, paused: bool, concurrency_limit: int | None, queues: list[QueueConfig]
    ) -> None:
        """Replace the pool's whole configuration; queues not listed are dropped."""
        fields: dict[str, str] = {keys.PAUSED: "1" if paused else "0"}
        if concurrency_limit is not None:
            fields[keys.LIMIT] = str(checked_limit(concurrency_limit))
        for queue in queues:
            fields.update(queue_fields(queue))
        args = [item for pair in fields.items() for item in pair]
        wanted = {queue.name for queue in queues}
        await self._redis.sadd(keys.POOLS, pool)  # listed before it has keys (delete_pool)
        for _ in range(10):  # retried only while another writer changes the pool meanwhile
            current = await self._load_layout(pool)
            gone = [q for q in current.queues if q not in wanted]
            written = await self._scripts["sync_pool"](
                keys=[keys.config(pool), *queue_keys(pool, gone)],
                args=[current.version, _new_version(), keys.wake_channel(pool), *args],
            )
            if written:
                return
        raise Conflict(f"Pool {pool!r} changed concurrently too often to sync it")

    @boundary
    async def delete_queue(self, pool: str, queue: str) -> None:
        """Remove a queue and its waiting runs; its held runs keep pool slots until released."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.config(pool), *(keys.queue_field(queue, a) for a in keys.QUEUE_ATTRS))
            pipe.hset(keys.config(pool), keys.VERSION, _new_version())
            pipe.delete(*queue_keys(pool, [queue]))
            await pipe.execute()

    @boundary
    async def delete_pool(self, pool: str) -> None:
        """Remove every key of the pool."""
        layout = await self._load_layout(pool)
        await self._redis.delete(
            *pool_keys(pool),
            *deployment_keys(pool),
            keys.run_priorities(pool),
            *queue_keys(pool, layout.queues),
        )
        await self._redis.srem(keys.POOLS, pool)
        self._layouts.pop(pool, None)

    @boundary
    async def pools_with_keys(self) -> set[str]:
        """The pools whose keys may be in Redis (``keys.POOLS``)."""
        return {text(member) for member in await self._redis.smembers(keys.POOLS)}


def _new_version() -> str:
    return uuid.uuid4().hex[:12]
