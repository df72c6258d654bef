"""Concurrency limits by tag (or name): leased slots in Redis, taken all-or-none.

A task run with tags ``etl`` and ``db`` runs only once it holds a slot of each tag that
has a limit; ``with concurrency("db", occupy=3)`` holds three. Slots are leases: the
holder renews them while it runs and releases them when it ends; a holder that dies
loses them when the lease expires, so none leak.

Every slot belongs to an *owner* as well as a holder: the principal that took it, which
the API sets from who asks (a run token's run, a worker key, the admin), never from the
request. A member of a tag's set is ``OWNER/holder`` (the owner percent-encoded, so it has
no ``/``), so one owner can only renew or give back the slots under its own prefix; a
holder occupying N slots is N members: ``OWNER/holder``, ``OWNER/holder#2`` …
``OWNER/holder#N``. ``reset`` (an operator's) frees slots of any owner.

A limit with a slot decay can also be used as a rate limit (``rate_limit(name)``): the
slots such a caller takes are never given back but decay, one every ``1 / decay`` seconds,
in a second set, so at most ``limit`` callers pass at once and then ``decay`` a second.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple, cast
from urllib.parse import quote, unquote

from flowyard.pools import keys
from flowyard.pools.models import text
from flowyard.pools.redis_server import Client, translated
from flowyard.pools.scripts import register_scripts


class FullLimit(NamedTuple):
    """The limit that refused slots, and when decaying slots will make room (None when
    slots that are held fill it: their holders give them back at an unknown time)."""

    tag: str
    retry_after: float | None


class SlotHolder(NamedTuple):
    """Who holds slots of a tag, how many, and until when (the latest of their leases)."""

    owner: str
    holder: str
    slots: int
    expires: float


class TagSlots:
    """The Redis side of tag concurrency limits."""

    def __init__(self, redis: Client) -> None:
        self._redis = redis
        self._acquire = register_scripts(redis, ["acquire_tags"])["acquire_tags"]

    async def acquire(
        self,
        limits: Mapping[str, int],
        owner: str,
        holder: str,
        *,
        now: float,
        lease_seconds: float,
        occupy: int = 1,
        decay: Mapping[str, float] | None = None,
    ) -> FullLimit | None:
        """Take ``occupy`` slots of every tag in ``limits`` for ``owner``'s ``holder``; None
        when all were taken, else the limit that is full (nothing is taken then).

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
                    *members(owner, holder, occupy), *(limits[t] for t in tags), *seconds_per_slot,
                ],
            )  # fmt: skip
        if int(answer[0]) == 1:
            return None
        wait = float(answer[2])
        return FullLimit(tags[int(answer[1]) - 1], None if wait < 0 else wait)

    async def renew(
        self, tags: list[str], owner: str, holder: str, until: float, occupy: int = 1
    ) -> int:
        """Push back the leases ``owner``'s holder still has (a released one is not revived);
        how many of them there were."""
        held = members(owner, holder, occupy)
        with translated(self._redis):
            async with self._redis.pipeline(transaction=True) as pipe:
                for tag in tags:
                    pipe.zmscore(keys.tag_slots(tag), held)
                    pipe.zadd(keys.tag_slots(tag), dict.fromkeys(held, until), xx=True)
                answers = await pipe.execute()
        return sum(score is not None for scores in answers[::2] for score in scores or ())

    async def release(self, tags: list[str], owner: str, holder: str, occupy: int = 1) -> int:
        """Give back ``owner``'s holder's slots; how many it had."""
        held = members(owner, holder, occupy)
        with translated(self._redis):
            async with self._redis.pipeline(transaction=True) as pipe:
                for tag in tags:
                    pipe.zrem(keys.tag_slots(tag), *held)
                return sum(map(int, await pipe.execute()))

    async def holders(self, tag: str, now: float) -> list[SlotHolder]:
        """Who holds slots of ``tag`` now, by owner and holder (decaying slots have none)."""
        with translated(self._redis):
            answer = await self._redis.zrangebyscore(
                keys.tag_slots(tag), f"({now!r}", "+inf", withscores=True
            )
        pairs = cast(list[tuple[Any, Any]], answer)  # withscores: (member, score) pairs
        held = [(text(member), float(score)) for member, score in pairs]
        names = {member for member, _ in held}
        found: dict[tuple[str, str], SlotHolder] = {}
        for member, expires in held:
            owner, holder = parse_member(member, names)
            seen = found.get((owner, holder))
            slots, latest = (seen.slots, max(seen.expires, expires)) if seen else (0, expires)
            found[owner, holder] = SlotHolder(owner, holder, slots + 1, latest)
        return sorted(found.values())

    async def reset(self, tag: str, owner: str | None = None, holder: str | None = None) -> int:
        """Free slots of ``tag`` — all of them (held and decaying), or only those of ``owner``
        (and of its ``holder``); how many were freed."""
        if owner is None:
            with translated(self._redis):
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.zcard(keys.tag_slots(tag))
                    pipe.zcard(keys.tag_decaying_slots(tag))
                    pipe.delete(keys.tag_slots(tag), keys.tag_decaying_slots(tag))
                    counts = await pipe.execute()
            return int(counts[0]) + int(counts[1])
        with translated(self._redis):
            names = [text(m) for m in await self._redis.zrange(keys.tag_slots(tag), 0, -1)]
            everyone = set(names)
            doomed = [
                name
                for name in names
                if (found := parse_member(name, everyone))[0] == owner
                and (holder is None or found[1] == holder)
            ]
            if not doomed:
                return 0
            return int(await self._redis.zrem(keys.tag_slots(tag), *doomed))

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


def members(owner: str, holder: str, occupy: int) -> list[str]:
    """The slot members of ``owner``'s holder occupying ``occupy`` slots of a tag."""
    first = f"{quote(owner, safe=':')}/{holder}"
    return [first, *(f"{first}#{n}" for n in range(2, occupy + 1))]


_EXTRA_SLOT = re.compile(r"#[0-9]+$")


def parse_member(member: str, members_of_tag: set[str]) -> tuple[str, str]:
    """The (owner, holder) of a slot member; ``members_of_tag`` tells an extra slot
    (``holder#2``, whose first slot is there too) from a holder whose name ends in ``#2``."""
    prefix, _, holder = member.partition("/")
    first = _EXTRA_SLOT.sub("", holder)
    if first != holder and f"{prefix}/{first}" in members_of_tag:
        holder = first
    return unquote(prefix), holder
