"""Concurrency limits by tag (or name): leased slots in Redis, taken all-or-none.

A task run with tags ``etl`` and ``db`` runs only once it holds a slot of each tag that
has a limit; ``with concurrency("db", occupy=3)`` holds three. Slots are leases: the
holder renews them while it runs and releases them when it ends; a holder that dies
loses them when the lease expires, so none leak. A holder occupying N slots of a tag is
N members of the tag's set: ``holder``, ``holder#2`` … ``holder#N``.

A limit with a slot decay can also be used as a rate limit (``rate_limit(name)``): the
slots such a caller takes are never given back but decay, one every ``1 / decay`` seconds,
in a second set, so at most ``limit`` callers pass at once and then ``decay`` a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import redis.asyncio as aioredis

from flowyard.pools import keys
from flowyard.pools.redis_server import translated
from flowyard.pools.scripts import register_scripts


class FullLimit(NamedTuple):
    """The limit that refused slots, and when decaying slots will make room (None when
    slots that are held fill it: their holders give them back at an unknown time)."""

    tag: str
    retry_after: float | None


class TagSlots:
    """The Redis side of tag concurrency limits."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._acquire = register_scripts(redis, ["acquire_tags"])["acquire_tags"]

    async def acquire(
        self,
        limits: Mapping[str, int],
        holder: str,
        *,
        now: float,
        lease_seconds: float,
        occupy: int = 1,
        decay: Mapping[str, float] | None = None,
    ) -> FullLimit | None:
        """Take ``occupy`` slots of every tag in ``limits`` for ``holder``; None when all
        were taken, else the limit that is full (nothing is taken then).

        With ``decay`` (slots a second, for every tag) the slots are a rate limit's: they
        are not held but decay; ``holder`` must then be new for every call.
        """
        if not limits:
            return None
        tags = sorted(limits)
        seconds_per_slot = [1 / decay[t] if decay else 0 for t in tags]
        with translated(self._redis):
            answer = await self._acquire(
                keys=[key for t in tags for key in (keys.tag_slots(t), keys.tag_decaying_slots(t))],
                args=[
                    repr(now), repr(now + lease_seconds), occupy, "1" if decay else "0",
                    *members(holder, occupy), *(limits[t] for t in tags), *seconds_per_slot,
                ],
            )  # fmt: skip
        if int(answer[0]) == 1:
            return None
        wait = float(answer[2])
        return FullLimit(tags[int(answer[1]) - 1], None if wait < 0 else wait)

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
        """How many slots of ``tag`` are taken: held, or not yet decayed."""
        live = f"({now!r}"
        with translated(self._redis):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zcount(keys.tag_slots(tag), live, "+inf")
                pipe.zcount(keys.tag_decaying_slots(tag), live, "+inf")
                return sum(map(int, await pipe.execute()))

    async def clear(self, tag: str) -> None:
        with translated(self._redis):
            await self._redis.delete(keys.tag_slots(tag), keys.tag_decaying_slots(tag))


def members(holder: str, occupy: int) -> list[str]:
    """The slot members of a holder occupying ``occupy`` slots of a tag."""
    return [holder, *(f"{holder}#{n}" for n in range(2, occupy + 1))]
