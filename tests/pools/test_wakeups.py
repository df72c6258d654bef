"""Wake-ups: long-pollers of a pool are woken by enqueue and release, without polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from flowyard.pools import ManagedRedis, PoolQueues, QueueConfig, Wakeups, connect

NOW = 1_700_000_000.0
POOL = "wake"
Body = Callable[[PoolQueues, Wakeups], Awaitable[None]]


def _run(url: str, body: Body) -> None:
    async def main() -> None:
        listener_client, client = connect(url), connect(url)
        wakeups = Wakeups(listener_client)
        await wakeups.start()
        try:
            queues = PoolQueues(client)
            mark = wakeups.mark(POOL)
            await queues.sync_pool(
                POOL, paused=False, concurrency_limit=None, queues=[QueueConfig("default")]
            )
            await _until_marked(wakeups, mark)  # the config change's own wake is behind us
            await body(queues, wakeups)
        finally:
            await wakeups.stop()
            await listener_client.aclose()
            await client.aclose()

    asyncio.run(main())


async def _blocked_waiter(wakeups: Wakeups, pool: str, timeout: float = 10) -> asyncio.Task[bool]:
    """Start ``wait`` in a task and let it block on its event."""
    task = asyncio.create_task(wakeups.wait(pool, timeout))
    await asyncio.sleep(0)  # noqa: TID251 - a yield: the task blocks on its event
    assert not task.done()
    return task


class TestWakeups:
    """Wakeups.wait against real pub/sub."""

    def test_enqueue_wakes_a_blocked_waiter_promptly(self, redis_url: str) -> None:
        """A waiter blocked in wait() returns True soon after another task enqueues."""

        async def body(q: PoolQueues, wakeups: Wakeups) -> None:
            waiter = await _blocked_waiter(wakeups, POOL)
            started = time.monotonic()
            await q.enqueue(POOL, "default", "r", NOW)
            assert await asyncio.wait_for(waiter, timeout=5) is True
            assert time.monotonic() - started < 1.0

        _run(redis_url, body)

    def test_one_message_wakes_every_waiter_of_the_pool_only(self, redis_url: str) -> None:
        """All waiters of the woken pool return True; another pool's waiter keeps waiting."""

        async def body(q: PoolQueues, wakeups: Wakeups) -> None:
            waiters = [await _blocked_waiter(wakeups, POOL) for _ in range(5)]
            bystander = await _blocked_waiter(wakeups, "other-pool")
            await q.enqueue(POOL, "default", "r", NOW)
            assert await asyncio.wait_for(asyncio.gather(*waiters), timeout=5) == [True] * 5
            assert not bystander.done()
            bystander.cancel()

        _run(redis_url, body)

    def test_release_wakes_waiters(self, redis_url: str) -> None:
        """A freed slot wakes the pool's waiters, since a blocked claim may now succeed."""

        async def body(q: PoolQueues, wakeups: Wakeups) -> None:
            mark = wakeups.mark(POOL)
            await q.enqueue(POOL, "default", "r", NOW)
            await q.claim(POOL, worker="w", max_runs=1, now=NOW, lease_seconds=30)
            await _until_marked(wakeups, mark)
            waiter = await _blocked_waiter(wakeups, POOL)
            assert await q.release(POOL, "r") is True
            assert await asyncio.wait_for(waiter, timeout=5) is True

        _run(redis_url, body)

    def test_duplicate_enqueue_does_not_wake(self, redis_url: str) -> None:
        """An enqueue that adds nothing publishes nothing."""

        async def body(q: PoolQueues, wakeups: Wakeups) -> None:
            mark = wakeups.mark(POOL)
            await q.enqueue(POOL, "default", "r", NOW)
            await _until_marked(wakeups, mark)
            waiter = await _blocked_waiter(wakeups, POOL, timeout=0.3)
            await q.enqueue(POOL, "default", "r", NOW)
            assert await waiter is False

        _run(redis_url, body)

    def test_wait_times_out_with_false(self, redis_url: str) -> None:
        """Without a wake, wait() returns False after its timeout."""

        async def body(q: PoolQueues, wakeups: Wakeups) -> None:
            assert await wakeups.wait(POOL, 0.05) is False

        _run(redis_url, body)

    def test_mark_catches_a_wake_between_claim_and_wait(self, redis_url: str) -> None:
        """A wake that lands after mark() but before wait() makes wait() return at once."""

        async def body(q: PoolQueues, wakeups: Wakeups) -> None:
            mark = wakeups.mark(POOL)
            await q.enqueue(POOL, "default", "r", NOW)
            # wait until the listener has processed the message, then wait with the old mark
            await _until_marked(wakeups, mark)
            assert await wakeups.wait(POOL, 10, since=mark) is True

        _run(redis_url, body)


async def _until_marked(wakeups: Wakeups, mark: int, timeout: float = 5) -> None:
    """Wait until the pool has been woken since ``mark``."""
    assert await wakeups.wait(POOL, timeout, since=mark), "no wake-up arrived"


def test_listener_reconnects_and_wakes_waiters(tmp_path: Path) -> None:
    """When Redis goes away every waiter is woken; after it returns, wakes flow again."""
    server = ManagedRedis(workdir=tmp_path / "a").start()
    port = server.port
    again = ManagedRedis(port=port, password=server.password, workdir=tmp_path / "b")

    async def main() -> None:
        listener_client = connect(server.url)
        wakeups = Wakeups(listener_client, min_backoff=0.02, max_backoff=0.1)
        await wakeups.start()
        try:
            waiter = await _blocked_waiter(wakeups, POOL)
            server.stop()
            assert await asyncio.wait_for(waiter, timeout=5) is True
            again.start()
            mark = wakeups.mark(POOL)
            # the reconnect itself wakes everyone once: wait for that
            await _until_marked(wakeups, mark, timeout=10)
            client = connect(again.url)
            waiter = await _blocked_waiter(wakeups, POOL)
            await PoolQueues(client).enqueue(POOL, "default", "r", NOW)
            assert await asyncio.wait_for(waiter, timeout=5) is True
            await client.aclose()
        finally:
            await wakeups.stop()
            await listener_client.aclose()

    try:
        asyncio.run(main())
    finally:
        server.stop()
        again.stop()
