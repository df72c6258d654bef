"""The Redis queue of background task runs: claims, leases and tokens, against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from flowyard.errors import InvalidInput
from flowyard.pools import connect, keys
from flowyard.pools.task_queue import TaskQueue

NOW = 1_000.0


def run(redis_url: str, body: Callable[[TaskQueue], Awaitable[None]]) -> None:
    async def main() -> None:
        client = connect(redis_url)
        try:
            await body(TaskQueue(client))
        finally:
            await client.aclose()

    asyncio.run(main())


def test_claims_take_runs_of_the_given_tasks_once_each(redis_url: str) -> None:
    """A claim takes at most max_runs due runs, across tasks; a second claim gets the rest."""

    async def body(q: TaskQueue) -> None:
        await q.enqueue("a", ["a1", "a2"], NOW)
        await q.enqueue("b", ["b1"], NOW)
        first = await q.claim(["a", "b"], "w1", 2, NOW, NOW + 30)
        second = await q.claim(["a", "b"], "w2", 5, NOW, NOW + 30)
        assert [c.run_id for c in first] == ["a1", "a2"]
        assert [(c.run_id, c.task_key) for c in second] == [("b1", "b")]
        assert await q.claim(["a", "b"], "w3", 5, NOW, NOW + 30) == []

    run(redis_url, body)


def test_only_the_holding_token_extends_or_releases(redis_url: str) -> None:
    """Heartbeats and releases with another token leave the claim alone."""

    async def body(q: TaskQueue) -> None:
        await q.enqueue("a", ["r"], NOW)
        [claim] = await q.claim(["a"], "w", 1, NOW, NOW + 30)
        assert await q.extend([("r", "stale")], NOW + 60) == []
        assert not await q.release("r", "stale")
        assert [c.run_id for c in await q.expired(NOW + 31)] == ["r"]
        assert await q.extend([("r", claim.token)], NOW + 60) == ["r"]
        assert await q.expired(NOW + 31) == []
        assert await q.release("r", claim.token)
        assert await q.expired(NOW + 100) == []

    run(redis_url, body)


def test_a_run_still_held_is_not_claimed_again_when_queued_twice(redis_url: str) -> None:
    """A held run queued again (the store sweep raced a claim) is dropped, not claimed twice."""

    async def body(q: TaskQueue) -> None:
        await q.enqueue("a", ["r"], NOW)
        await q.claim(["a"], "w", 1, NOW, NOW + 30)
        await q.enqueue("a", ["r"], NOW)
        assert await q.claim(["a"], "w2", 1, NOW, NOW + 30) == []

    run(redis_url, body)


def test_task_keys_with_braces_are_refused() -> None:
    """A task key must not break the shared hash tag."""
    with pytest.raises(InvalidInput):
        keys.task_ready("bad}key")
