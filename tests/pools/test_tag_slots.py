"""Tag concurrency slots in Redis: all or none, leased, released."""

from __future__ import annotations

import asyncio

import pytest

from flowyard.pools import TagSlots, connect
from flowyard.pools.tag_slots import FullLimit, SlotHolder, members

NOW = 1_700_000_000.0
FULL_DB = FullLimit("db", None)  # full of held slots: no telling when one is given back
A = "worker:a"  # the owners of the slots, as the API names them
B = "run:r2"


def _run(redis_url: str, body) -> None:
    async def main() -> None:
        client = connect(redis_url)
        try:
            await body(TagSlots(client))
        finally:
            await client.aclose()

    asyncio.run(main())


def test_slots_are_taken_all_or_none(redis_url):
    """A holder gets a slot of every tag or of none; the full tag is named."""

    async def body(slots: TagSlots) -> None:
        assert await slots.acquire({"db": 1, "api": 2}, A, "t1", now=NOW, lease_seconds=30) is None
        assert (
            await slots.acquire({"db": 1, "api": 2}, A, "t2", now=NOW, lease_seconds=30) == FULL_DB
        )
        assert await slots.active("api", NOW) == 1  # t2 took nothing
        assert await slots.acquire({"api": 2}, A, "t2", now=NOW, lease_seconds=30) is None
        await slots.release(["db", "api"], A, "t1")
        assert await slots.acquire({"db": 1}, A, "t3", now=NOW, lease_seconds=30) is None

    _run(redis_url, body)


def test_a_holder_asking_again_keeps_its_slot(redis_url):
    """Asking twice (a retried request) holds one slot, not two."""

    async def body(slots: TagSlots) -> None:
        for _ in range(2):
            assert await slots.acquire({"db": 1}, A, "t1", now=NOW, lease_seconds=30) is None
        assert await slots.active("db", NOW) == 1

    _run(redis_url, body)


def test_an_expired_lease_frees_its_slot_and_renewal_keeps_it(redis_url):
    """A holder that stopped renewing loses its slot at expiry; one that renews keeps it."""

    async def body(slots: TagSlots) -> None:
        await slots.acquire({"db": 1}, A, "dead", now=NOW, lease_seconds=10)
        assert await slots.acquire({"db": 1}, A, "t2", now=NOW + 9, lease_seconds=10) == FULL_DB
        assert await slots.acquire({"db": 1}, A, "t2", now=NOW + 11, lease_seconds=10) is None
        await slots.renew(["db"], A, "t2", NOW + 100)
        assert await slots.acquire({"db": 1}, A, "t3", now=NOW + 50, lease_seconds=10) == FULL_DB
        await slots.release(["db"], A, "t2")
        await slots.renew(["db"], A, "t2", NOW + 200)  # a released slot is not revived
        assert await slots.active("db", NOW + 50) == 0

    _run(redis_url, body)


def test_a_holder_can_occupy_several_slots_and_gives_them_all_back(redis_url):
    """occupy=3 of a limit of 4 leaves one slot; renew and release touch all three."""

    async def body(slots: TagSlots) -> None:
        take = slots.acquire
        assert await take({"db": 4}, A, "big", now=NOW, lease_seconds=10, occupy=3) is None
        assert await slots.active("db", NOW) == 3
        assert await take({"db": 4}, A, "two", now=NOW, lease_seconds=10, occupy=2) == FULL_DB
        assert await take({"db": 4}, A, "one", now=NOW, lease_seconds=10) is None
        await slots.release(["db"], A, "one")
        await slots.renew(["db"], A, "big", NOW + 100, occupy=3)
        assert await slots.active("db", NOW + 50) == 3  # all three were renewed
        await slots.release(["db"], A, "big", occupy=3)
        assert await slots.active("db", NOW) == 0

    _run(redis_url, body)


def test_rate_limited_slots_decay_one_after_another(redis_url):
    """A limit of 2 decaying 1 slot a second: two callers at once, then one a second; a
    refused caller is told when the next slot decays."""

    async def body(slots: TagSlots) -> None:
        def take(holder: str, at: float, occupy: int = 1):
            return slots.acquire(
                {"api": 2}, A, holder, now=at, lease_seconds=30, occupy=occupy, decay={"api": 1.0}
            )

        assert await take("a", NOW) is None  # decays at NOW + 1
        assert await take("b", NOW) is None  # after a: NOW + 2
        assert await take("c", NOW + 0.25) == FullLimit("api", 0.75)
        assert await slots.active("api", NOW + 0.25) == 2
        assert await take("c", NOW + 1) is None  # a decayed; c decays at NOW + 3
        assert await take("d", NOW + 1.5, occupy=2) == FullLimit("api", 1.5)  # b and c
        assert await take("d", NOW + 3, occupy=2) is None
        assert await slots.active("api", NOW + 3) == 2
        assert await slots.active("api", NOW + 5) == 0

    _run(redis_url, body)


def test_held_and_decaying_slots_share_one_limit(redis_url):
    """A held slot and a decaying one fill a limit of 2 together; a caller blocked by the
    held slot gets no retry time (its holder gives it back when it likes)."""

    async def body(slots: TagSlots) -> None:
        assert await slots.acquire({"api": 2}, A, "held", now=NOW, lease_seconds=30) is None
        rate = {"api": 10.0}
        assert await slots.acquire(
            {"api": 2}, A, "r1", now=NOW, lease_seconds=30, decay=rate
        ) is None  # fmt: skip
        refused = await slots.acquire({"api": 2}, A, "r2", now=NOW, lease_seconds=30, occupy=2,
                                      decay=rate)  # fmt: skip
        assert refused == FullLimit("api", None)
        refused = await slots.acquire({"api": 2}, A, "r2", now=NOW, lease_seconds=30, decay=rate)
        assert refused is not None and refused.retry_after == pytest.approx(0.1)
        await slots.clear("api")
        assert await slots.active("api", NOW) == 0

    _run(redis_url, body)


def test_an_owner_renews_and_releases_only_its_own_holders(redis_url):
    """Another owner naming the same holder reaches nothing: A's slot stays held and leased."""

    async def body(slots: TagSlots) -> None:
        assert await slots.acquire({"db": 1}, A, "t1", now=NOW, lease_seconds=10) is None
        assert await slots.release(["db"], B, "t1") == 0
        assert await slots.renew(["db"], B, "t1", NOW + 3600) == 0
        assert await slots.holders("db", NOW) == [SlotHolder(A, "t1", 1, NOW + 10)]
        assert await slots.acquire({"db": 1}, B, "t1", now=NOW, lease_seconds=10) == FULL_DB
        assert await slots.renew(["db"], A, "t1", NOW + 20) == 1
        assert await slots.release(["db"], A, "t1") == 1
        assert await slots.active("db", NOW) == 0

    _run(redis_url, body)


def test_owner_names_cannot_be_forged_through_the_holder(redis_url):
    """An owner with a slash in its name, or a holder that spells one, stays apart: members
    are ``quoted owner/holder``, and the quoted owner has no slash."""

    async def body(slots: TagSlots) -> None:
        assert members("worker:a/b", "x", 2) == ["worker:a%2Fb/x", "worker:a%2Fb/x#2"]
        assert await slots.acquire({"db": 2}, "worker:a/b", "x", now=NOW, lease_seconds=10) is None
        assert await slots.release(["db"], "worker:a", "b/x") == 0
        assert await slots.holders("db", NOW) == [SlotHolder("worker:a/b", "x", 1, NOW + 10)]

    _run(redis_url, body)


def test_holders_are_listed_with_their_slots_and_reset_frees_them(redis_url):
    """Holders are grouped by owner (occupy=3 is one holder of 3 slots); reset frees one
    holder, one owner's, or everything (decaying slots included)."""

    async def body(slots: TagSlots) -> None:
        take = slots.acquire
        assert await take({"db": 9}, A, "big", now=NOW, lease_seconds=10, occupy=3) is None
        assert await take({"db": 9}, A, "h#2", now=NOW, lease_seconds=20) is None
        assert await take({"db": 9}, B, "big", now=NOW, lease_seconds=30) is None
        assert await take({"db": 9}, B, "r", now=NOW, lease_seconds=30, decay={"db": 0.1}) is None
        assert await slots.holders("db", NOW) == [
            SlotHolder(B, "big", 1, NOW + 30),  # sorted by owner: "run:…" first
            SlotHolder(A, "big", 3, NOW + 10),
            SlotHolder(A, "h#2", 1, NOW + 20),
        ]
        assert await slots.reset("db", A, "big") == 3
        assert await slots.reset("db", B) == 1
        assert [h.holder for h in await slots.holders("db", NOW)] == ["h#2"]
        assert await slots.active("db", NOW) == 2  # h#2, and the decaying slot
        assert await slots.reset("db") == 2
        assert await slots.active("db", NOW) == 0

    _run(redis_url, body)
