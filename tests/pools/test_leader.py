"""The leadership lease: one replica leads; another takes over when it stops renewing."""

from __future__ import annotations

import asyncio

from flowyard.pools import Leadership, connect
from tests.waiting import async_wait_until


def test_one_leader_at_a_time_and_takeover(redis_url):
    """A holds; B does not; when A resigns B takes it; when B stops renewing, A takes it
    back once the lease expired, and not before."""

    async def main() -> None:
        clients = [connect(redis_url) for _ in range(2)]
        try:
            a, b = (Leadership(client, ttl_seconds=0.5) for client in clients)
            assert await a.held() and await a.held()  # renewing is holding
            assert not await b.held()
            await b.resign()  # not B's to give up: nothing happens
            assert not await b.held()
            await a.resign()
            assert await b.held()
            assert not await a.held()
            # B stopped renewing; its lease runs out
            await async_wait_until(a.held, timeout=10, message="the lease never expired")
            assert not await b.held()
        finally:
            for client in clients:
                await client.aclose()

    asyncio.run(main())


def test_the_holder_renews_once_a_third_of_a_lease(redis_url):
    """Asked again within a third of its lease, the holder answers without Redis; after
    resigning it asks again (and another replica may lead at once)."""

    async def main() -> None:
        clients = [connect(redis_url) for _ in range(2)]
        try:
            a, b = (Leadership(client, ttl_seconds=60) for client in clients)

            async def scripts_run() -> int:
                stats = await clients[0].info("commandstats")
                return sum(v["calls"] for k, v in stats.items() if k.startswith("cmdstat_eval"))

            assert await a.held()
            before = await scripts_run()
            assert all([await a.held() for _ in range(20)])
            assert await scripts_run() == before
            assert not await b.held()
            await a.resign()
            assert await b.held() and not await a.held()
        finally:
            for client in clients:
                await client.aclose()

    asyncio.run(main())
