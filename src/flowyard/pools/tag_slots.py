"""Concurrency limits by tag (or name): leased slots in Redis, taken all-or-none.

A task run with tags ``etl`` and ``db`` runs only once it holds a slot of each tag that
has a limit; ``with concurrency("db", occupy=3)`` holds three. Slots are leases: the
holder renews them while it runs and releases them when it ends; a holder that dies
loses them when the lease expires, so none leak. A holder occupying N slots of a tag is
N members of the tag's set: ``holder``, ``holder#2`` … ``holder#N``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import redis.asyncio as aioredis

from flowyard.pools import keys
from flowyard.pools.redis_server import translated


class TagSlots:
    """The Redis side of tag concurrency limits."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        source = resources.files("flowyard.pools").joinpath("acquire_tags.lua").read_text()
        self._acquire = redis.register_script(source)

    async def acquire(
        self,
        limits: Mapping[str, int],
        holder: str,
        *,
        now: float,
        lease_seconds: float,
        occupy: int = 1,
    ) -> str | None:
        """Take ``occupy`` slots of every tag in ``limits`` for ``holder``; None when all
        were taken, else the tag that is full (nothing is taken then)."""
        if not limits:
            return None
        tags = sorted(limits)
        with translated(self._redis):
            taken, full = await self._acquire(
                keys=[keys.tag_slots(tag) for tag in tags],
                args=[
                    repr(now), repr(now + lease_seconds), occupy,
                    *members(holder, occupy), *(limits[t] for t in tags),
                ],
            )  # fmt: skip
        return None if int(taken) == 1 else tags[int(full) - 1]

    async def renew(self, tags: list[str], holder: str, until: float, occupy: int = 1) -> None:
        """Push back the leases the holder still has (a released one is not revived)."""
        held = dict.fromkeys(members(holder, occupy), until)
        with translated(self._redis):
            async with self._redis.pipeline(transaction=True) as pipe:
                for tag in tags:
                    pipe.zadd(keys.tag_slots(tag), held, xx=True)
                await pipe.execute()

    async def release(self, tags: list[str], holder: str, occupy: int = 1) -> None:
        held = members(holder, occupy)
        with translated(self._redis):
            async with self._redis.pipeline(transaction=True) as pipe:
                for tag in tags:
                    pipe.zrem(keys.tag_slots(tag), *held)
                await pipe.execute()

    async def active(self, tag: str, now: float) -> int:
        """How many holders have a live slot of ``tag``."""
        with translated(self._redis):
            return int(await self._redis.zcount(keys.tag_slots(tag), f"({now!r}", "+inf"))

    async def clear(self, tag: str) -> None:
        with translated(self._redis):
            await self._redis.delete(keys.tag_slots(tag))


def members(holder: str, occupy: int) -> list[str]:
    """The slot members of a holder occupying ``occupy`` slots of a tag."""
    return [holder, *(f"{holder}#{n}" for n in range(2, occupy + 1))]
