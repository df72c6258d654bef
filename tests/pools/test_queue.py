"""PoolQueues against a real redis-server: claim order, limits, pauses, leases."""

from __future__ import annotations

from collections.abc import Callable

from flowyard.pools import Claim, PoolQueues, QueueConfig, keys
from tests.pools.conftest import Body

NOW = 1_700_000_000.0
POOL = "pool"
Run = Callable[[Body], None]


async def _setup(
    q: PoolQueues, *queues: QueueConfig, limit: int | None = None, paused: bool = False
) -> None:
    await q.sync_pool(POOL, paused=paused, concurrency_limit=limit, queues=list(queues))


async def _claim(q: PoolQueues, max_runs: int = 10, now: float = NOW, **kw: object) -> list[str]:
    result = await q.claim(POOL, worker="w", max_runs=max_runs, now=now, lease_seconds=30, **kw)  # type: ignore[arg-type]
    return [c.run_id for c in result.claims]


class TestClaimOrder:
    """Which runs a claim takes, and in which order."""

    def test_oldest_first_within_a_queue(self, run_pools: Run) -> None:
        """Within a queue, the run with the earliest scheduled time is taken first."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            for run_id, ts in [("c", NOW - 1), ("a", NOW - 3), ("b", NOW - 2)]:
                await q.enqueue(POOL, "default", run_id, ts)
            assert await _claim(q, max_runs=2) == ["a", "b"]
            assert await _claim(q) == ["c"]

        run_pools(body)

    def test_strict_priority_between_queues(self, run_pools: Run) -> None:
        """A lower-priority queue is served only after every higher one has no due run."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("low", priority=5), QueueConfig("high", priority=1))
            await q.enqueue(POOL, "low", "old-low", NOW - 100)
            await q.enqueue(POOL, "high", "h1", NOW - 1)
            await q.enqueue(POOL, "high", "h2", NOW)
            assert await _claim(q, max_runs=1) == ["h1"]
            assert await _claim(q, max_runs=5) == ["h2", "old-low"]

        run_pools(body)

    def test_not_yet_due_runs_are_left_and_next_due_reported(self, run_pools: Run) -> None:
        """Future runs are not claimed; next_due is the earliest of them."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("a", 1), QueueConfig("b", 2))
            await q.enqueue(POOL, "a", "later", NOW + 60)
            await q.enqueue(POOL, "b", "sooner", NOW + 30)
            await q.enqueue(POOL, "b", "due", NOW)
            result = await q.claim(POOL, worker="w", max_runs=5, now=NOW, lease_seconds=30)
            assert [c.run_id for c in result.claims] == ["due"]
            assert result.next_due == NOW + 30
            empty = await q.claim(POOL, worker="w", max_runs=5, now=NOW + 1, lease_seconds=30)
            assert empty.claims == [] and empty.next_due == NOW + 30

        run_pools(body)

    def test_prefetch_window_takes_runs_due_soon(self, run_pools: Run) -> None:
        """Runs due within ``prefetch_seconds`` are claimed early, later ones are not."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            await q.enqueue(POOL, "default", "in-5s", NOW + 5)
            await q.enqueue(POOL, "default", "in-20s", NOW + 20)
            result = await q.claim(
                POOL, worker="w", max_runs=5, now=NOW, lease_seconds=30, prefetch_seconds=10
            )
            assert [c.run_id for c in result.claims] == ["in-5s"]
            assert result.next_due == NOW + 20

        run_pools(body)

    def test_only_requested_queues_are_walked(self, run_pools: Run) -> None:
        """A claim limited to some queues leaves the others alone."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("a", 1), QueueConfig("b", 2))
            await q.enqueue(POOL, "a", "ra", NOW)
            await q.enqueue(POOL, "b", "rb", NOW)
            assert await _claim(q, queues=["b", "unknown"]) == ["rb"]

        run_pools(body)

    def test_unknown_pool_claims_nothing(self, run_pools: Run) -> None:
        """Claiming from a pool that was never configured is an empty result, not an error."""

        async def body(q: PoolQueues) -> None:
            result = await q.claim("nowhere", worker="w", max_runs=3, now=NOW, lease_seconds=1)
            assert result.claims == [] and result.next_due is None

        run_pools(body)

    def test_claims_carry_queue_and_unique_tokens(self, run_pools: Run) -> None:
        """Each claim records its queue and a token unique to that claim."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            await q.enqueue_many(POOL, "default", [("r1", NOW), ("r2", NOW)])
            first = await q.claim(POOL, worker="w", max_runs=1, now=NOW, lease_seconds=30)
            second = await q.claim(POOL, worker="w", max_runs=1, now=NOW, lease_seconds=30)
            claims = first.claims + second.claims
            assert {c.queue for c in claims} == {"default"}
            assert len({c.token for c in claims}) == 2
            held = await q.expired_leases(POOL, NOW + 30)
            assert {c.run_id: c for c in held} == {c.run_id: c for c in claims}

        run_pools(body)


class TestLimitsAndPauses:
    """Concurrency limits and pause switches."""

    def test_queue_at_its_limit_does_not_block_lower_priority(self, run_pools: Run) -> None:
        """A full higher-priority queue lets the claim move on to the next queue."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("high", 1, concurrency_limit=1), QueueConfig("low", 2))
            await q.enqueue_many(POOL, "high", [("h1", NOW), ("h2", NOW)])
            await q.enqueue(POOL, "low", "l1", NOW)
            assert await _claim(q) == ["h1", "l1"]
            assert await q.running_count(POOL, "high") == 1
            await q.release(POOL, "h1")
            assert await _claim(q) == ["h2"]

        run_pools(body)

    def test_pool_limit_blocks_every_queue(self, run_pools: Run) -> None:
        """When the pool's slots are all held, no queue is served."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("a", 1), QueueConfig("b", 2), limit=2)
            await q.enqueue_many(POOL, "a", [("a1", NOW), ("a2", NOW)])
            await q.enqueue(POOL, "b", "b1", NOW)
            assert await _claim(q) == ["a1", "a2"]
            assert await _claim(q) == []
            await _setup(q, QueueConfig("a", 1), QueueConfig("b", 2), limit=3)
            assert await _claim(q) == ["b1"]
            assert await q.running_count(POOL) == 3

        run_pools(body)

    def test_lowering_a_limit_below_held_claims_nothing(self, run_pools: Run) -> None:
        """A limit lowered under the slots already held stops claims until enough are released."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            await q.enqueue_many(POOL, "default", [(f"r{i}", NOW - 1 + i / 10) for i in range(4)])
            assert await _claim(q, max_runs=3) == ["r0", "r1", "r2"]
            await _setup(q, QueueConfig("default", concurrency_limit=1))
            assert await _claim(q) == []
            for run_id in ("r0", "r1"):
                await q.release(POOL, run_id)
            assert await _claim(q) == []
            await q.release(POOL, "r2")
            assert await _claim(q) == ["r3"]

        run_pools(body)

    def test_pool_pause_and_resume(self, run_pools: Run) -> None:
        """A paused pool claims nothing; resuming it serves the waiting runs."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"), paused=True)
            await q.enqueue(POOL, "default", "r", NOW)
            assert await _claim(q) == []
            await _setup(q, QueueConfig("default"), paused=False)
            assert await _claim(q) == ["r"]

        run_pools(body)

    def test_queue_pause_and_resume(self, run_pools: Run) -> None:
        """A paused queue is skipped, lower queues are still served, and resuming restores it."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("high", 1, paused=True), QueueConfig("low", 2))
            await q.enqueue(POOL, "high", "h", NOW - 10)
            await q.enqueue(POOL, "low", "l", NOW)
            assert await _claim(q) == ["l"]
            await _setup(q, QueueConfig("high", 1, paused=False), QueueConfig("low", 2))
            assert await _claim(q) == ["h"]

        run_pools(body)


class TestEnqueue:
    """Adding and removing waiting runs."""

    def test_enqueue_is_idempotent(self, run_pools: Run) -> None:
        """Enqueuing a run twice keeps one entry and its first scheduled time."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            assert await q.enqueue(POOL, "default", "r", NOW) is True
            assert await q.enqueue(POOL, "default", "r", NOW + 99) is False
            assert await q.depth(POOL, "default") == 1
            assert await q.enqueue_many(POOL, "default", [("r", NOW), ("s", NOW)]) == 1
            assert await q.depth(POOL, "default") == 2

        run_pools(body)

    def test_remove_takes_a_waiting_run_out(self, run_pools: Run) -> None:
        """A removed run is never claimed; removing it again reports False."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            await q.enqueue(POOL, "default", "r", NOW)
            assert await q.remove(POOL, "default", "r") is True
            assert await q.remove(POOL, "default", "r") is False
            assert await _claim(q) == []

        run_pools(body)

    def test_a_run_enqueued_again_while_held_is_not_claimed_twice(self, run_pools: Run) -> None:
        """A duplicate index entry of an in-flight run is dropped, not handed out again."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            await q.enqueue(POOL, "default", "r", NOW)
            assert await _claim(q) == ["r"]
            await q.enqueue(POOL, "default", "r", NOW)
            assert await _claim(q) == []
            assert await q.depth(POOL, "default") == 0

        run_pools(body)

    def test_large_rebuild_is_batched(self, run_pools: Run) -> None:
        """enqueue_many takes thousands of runs at once."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            runs = [(f"r{i}", NOW + i) for i in range(2500)]
            assert await q.enqueue_many(POOL, "default", runs) == 2500
            assert await q.depth(POOL, "default") == 2500

        run_pools(body)


class TestIdempotentClaims:
    """A claim with an idempotency key keeps what it took, in the same script call."""

    def test_a_claim_sent_again_gets_its_runs_and_takes_no_more(self, run_pools: Run) -> None:
        """The first call keeps the runs and tokens it took; a recall answers them alone."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            await q.enqueue_many(POOL, "default", [("a", NOW), ("b", NOW), ("c", NOW)])
            first = await q.claim(
                POOL, worker="w", max_runs=2, now=NOW, lease_seconds=30, idempotency_key="k1"
            )
            assert first.replayed is None
            again = await q.claim(
                POOL, worker="w", max_runs=2, now=NOW, lease_seconds=30,
                idempotency_key="k1", recall=True,
            )  # fmt: skip
            assert again.claims == []
            assert again.replayed == [(c.run_id, c.token) for c in first.claims]
            assert [c.run_id for c in first.claims] == ["a", "b"]
            assert await _claim(q) == ["c"]  # the resend took nothing

        run_pools(body)

    def test_only_a_claim_that_took_runs_is_kept(self, run_pools: Run) -> None:
        """An empty claim keeps nothing; without ``recall`` a key is not looked at; a key
        without ``recall`` is overwritten by the next runs taken; the answer ends with the
        lease."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))

            async def claim(**kw: object) -> list[str]:
                return await _claim(q, max_runs=1, idempotency_key="k2", **kw)

            assert await claim(recall=True) == []
            await q.enqueue_many(POOL, "default", [("a", NOW), ("b", NOW)])
            assert await claim(recall=True) == ["a"]
            assert await claim() == ["b"]  # a later round of the same request
            replay = await q.claim(
                POOL, worker="w", max_runs=1, now=NOW, lease_seconds=30,
                idempotency_key="k2", recall=True,
            )  # fmt: skip
            assert [run for run, _ in replay.replayed or []] == ["b"]
            ttl = await q._redis.pttl(keys.claim_answer(POOL, "k2"))
            assert 0 < ttl <= 30_000
            assert await q._redis.exists(keys.claim_answer(POOL, "")) == 0

        run_pools(body)


class TestLeases:
    """Leases, their expiry and release."""

    def test_expired_lease_is_reported_and_release_frees_the_slot(self, run_pools: Run) -> None:
        """An expired lease shows in expired_leases; releasing it lets the next claim succeed."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"), limit=1)
            await q.enqueue_many(POOL, "default", [("r1", NOW), ("r2", NOW + 1)])
            (held,) = (
                await q.claim(POOL, worker="w", max_runs=5, now=NOW, lease_seconds=30)
            ).claims
            assert await q.expired_leases(POOL, NOW + 29) == []
            assert await q.expired_leases(POOL, NOW + 31) == [held]
            assert await _claim(q, now=NOW + 31) == []
            assert await q.release(POOL, "r1") is True
            assert await q.expired_leases(POOL, NOW + 31) == []
            assert await _claim(q, now=NOW + 31) == ["r2"]

        run_pools(body)

    def test_release_is_idempotent(self, run_pools: Run) -> None:
        """Releasing twice, or releasing what was never held, returns False."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            await q.enqueue(POOL, "default", "r", NOW)
            await _claim(q)
            assert await q.release(POOL, "r") is True
            assert await q.release(POOL, "r") is False
            assert await q.release(POOL, "never") is False
            assert await q.running_count(POOL) == 0
            assert await q.running_count(POOL, "default") == 0

        run_pools(body)

    def test_extend_leases_only_for_runs_still_held(self, run_pools: Run) -> None:
        """Extension moves the leases of held runs and reports only those."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("default"))
            await q.enqueue_many(POOL, "default", [("a", NOW), ("b", NOW)])
            await _claim(q)
            await q.release(POOL, "b")
            assert await q.extend_leases(POOL, ["a", "b", "c"], NOW + 100) == ["a"]
            assert await q.expired_leases(POOL, NOW + 99) == []
            assert [c.run_id for c in await q.expired_leases(POOL, NOW + 100)] == ["a"]
            assert await q.extend_leases(POOL, [], NOW) == []

        run_pools(body)


class TestConfiguration:
    """Pool configuration changes and the cached layout."""

    def test_stale_layout_is_reloaded(self, run_pools: Run, redis_url: str) -> None:
        """A queue added by another PoolQueues is seen by the next claim."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("old", 5))
            await q.enqueue(POOL, "old", "o", NOW - 10)
            assert await _claim(q, max_runs=0) == []  # caches the layout
            other = PoolQueues(q._redis)
            await _setup(other, QueueConfig("old", 5), QueueConfig("new", 1))
            await other.enqueue(POOL, "new", "n", NOW)
            assert await _claim(q, max_runs=1) == ["n"]
            assert await q.release(POOL, "n") is True

        run_pools(body)

    def test_sync_replaces_the_queue_set(self, run_pools: Run) -> None:
        """sync_pool drops queues not listed (with their waiting runs) and adds new ones."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("a"), QueueConfig("b"), limit=4)
            await q.enqueue(POOL, "a", "ra", NOW)
            await q.enqueue(POOL, "b", "rb", NOW)
            await _setup(q, QueueConfig("b", 2), QueueConfig("c", 1))
            await q.enqueue(POOL, "c", "rc", NOW)
            assert await q.depth(POOL, "a") == 0
            assert await _claim(q) == ["rc", "rb"]

        run_pools(body)

    def test_deleted_queue_loses_waiting_runs_but_held_ones_release(self, run_pools: Run) -> None:
        """Deleting a queue drops its waiting runs; its held runs still free their pool slot."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("a"), QueueConfig("b"))
            await q.enqueue_many(POOL, "a", [("a1", NOW), ("a2", NOW + 1)])
            assert await _claim(q, max_runs=1) == ["a1"]
            await q.delete_queue(POOL, "a")
            assert await q.depth(POOL, "a") == 0
            assert await q.release(POOL, "a1") is True
            assert await q.running_count(POOL) == 0

        run_pools(body)

    def test_delete_pool_removes_everything(self, run_pools: Run) -> None:
        """After delete_pool nothing of the pool is left in Redis."""

        async def body(q: PoolQueues) -> None:
            await _setup(q, QueueConfig("a"))
            await q.enqueue_many(POOL, "a", [("r1", NOW), ("r2", NOW)])
            await _claim(q, max_runs=1)
            await q.delete_pool(POOL)
            assert await q._redis.keys("fy:*") == []
            assert await _claim(q) == []

        run_pools(body)


def test_claim_is_a_value() -> None:
    """Claims compare by value, so they can be asserted directly."""
    assert Claim("r", "q", "t") == Claim("r", "q", "t")
