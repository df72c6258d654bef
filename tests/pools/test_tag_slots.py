"""Tag concurrency slots in Redis: all or none, leased, released."""

from __future__ import annotations

import asyncio

from flowyard.pools import TagSlots, connect

NOW = 1_700_000_000.0


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
        assert await slots.acquire({"db": 1, "api": 2}, "t1", now=NOW, lease_seconds=30) is None
        assert await slots.acquire({"db": 1, "api": 2}, "t2", now=NOW, lease_seconds=30) == "db"
        assert await slots.active("api", NOW) == 1  # t2 took nothing
        assert await slots.acquire({"api": 2}, "t2", now=NOW, lease_seconds=30) is None
        await slots.release(["db", "api"], "t1")
        assert await slots.acquire({"db": 1}, "t3", now=NOW, lease_seconds=30) is None

    _run(redis_url, body)


def test_a_holder_asking_again_keeps_its_slot(redis_url):
    """Asking twice (a retried request) holds one slot, not two."""

    async def body(slots: TagSlots) -> None:
        for _ in range(2):
            assert await slots.acquire({"db": 1}, "t1", now=NOW, lease_seconds=30) is None
        assert await slots.active("db", NOW) == 1

    _run(redis_url, body)


def test_an_expired_lease_frees_its_slot_and_renewal_keeps_it(redis_url):
    """A holder that stopped renewing loses its slot at expiry; one that renews keeps it."""

    async def body(slots: TagSlots) -> None:
        await slots.acquire({"db": 1}, "dead", now=NOW, lease_seconds=10)
        assert await slots.acquire({"db": 1}, "t2", now=NOW + 9, lease_seconds=10) == "db"
        assert await slots.acquire({"db": 1}, "t2", now=NOW + 11, lease_seconds=10) is None
        await slots.renew(["db"], "t2", NOW + 100)
        assert await slots.acquire({"db": 1}, "t3", now=NOW + 50, lease_seconds=10) == "db"
        await slots.release(["db"], "t2")
        await slots.renew(["db"], "t2", NOW + 200)  # a released slot is not revived
        assert await slots.active("db", NOW + 50) == 0

    _run(redis_url, body)


def test_a_holder_can_occupy_several_slots_and_gives_them_all_back(redis_url):
    """occupy=3 of a limit of 4 leaves one slot; renew and release touch all three."""

    async def body(slots: TagSlots) -> None:
        take = slots.acquire
        assert await take({"db": 4}, "big", now=NOW, lease_seconds=10, occupy=3) is None
        assert await slots.active("db", NOW) == 3
        assert await take({"db": 4}, "two", now=NOW, lease_seconds=10, occupy=2) == "db"
        assert await take({"db": 4}, "one", now=NOW, lease_seconds=10) is None
        await slots.release(["db"], "one")
        await slots.renew(["db"], "big", NOW + 100, occupy=3)
        assert await slots.active("db", NOW + 50) == 3  # all three were renewed
        await slots.release(["db"], "big", occupy=3)
        assert await slots.active("db", NOW) == 0

    _run(redis_url, body)
