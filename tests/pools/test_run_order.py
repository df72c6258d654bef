"""Order within a queue, against a real redis-server: per-run priority and fair queues."""

from __future__ import annotations

from collections.abc import Callable

from flowyard.pools import PoolQueues, QueueConfig, keys
from tests.pools.conftest import Body

NOW = 1_700_000_000.0
POOL = "pool"
Run = Callable[[Body], None]


async def _claim(q: PoolQueues, max_runs: int = 10, now: float = NOW) -> list[str]:
    result = await q.claim(POOL, worker="w", max_runs=max_runs, now=now, lease_seconds=30)
    return [c.run_id for c in result.claims]


async def _drain(q: PoolQueues, per_claim: int = 10) -> list[str]:
    taken: list[str] = []
    while batch := await _claim(q, max_runs=per_claim):
        taken += batch
    return taken


async def _burst(q: PoolQueues, queue: str, deployment: str, count: int, ts: float = NOW) -> None:
    runs = [(f"{deployment}-{i:05}", ts) for i in range(count)]
    await q.enqueue_many(POOL, queue, runs, {run_id: deployment for run_id, _ in runs})


def test_a_lower_priority_number_is_claimed_first_then_first_come(run_pools: Run) -> None:
    """Due runs go by priority (lower first, default 0, negatives allowed), then by arrival."""

    async def body(q: PoolQueues) -> None:
        await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[QueueConfig("q")])
        await q.enqueue(POOL, "q", "plain-1", NOW - 30)
        await q.enqueue(POOL, "q", "low", NOW - 60, priority=5)
        await q.enqueue(POOL, "q", "plain-2", NOW - 20)
        await q.enqueue(POOL, "q", "urgent", NOW - 10, priority=-3)
        await q.enqueue(POOL, "q", "later", NOW + 60, priority=-9)  # not due: not taken
        assert await _claim(q, max_runs=10) == ["urgent", "plain-1", "plain-2", "low"]

    run_pools(body)


def test_an_urgent_run_jumps_a_backlog_already_waiting(run_pools: Run) -> None:
    """A run enqueued with a lower number after a backlog became due is taken next."""

    async def body(q: PoolQueues) -> None:
        await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[QueueConfig("q")])
        await _burst(q, "q", "bulk", 50)
        assert await _claim(q, max_runs=5) == [f"bulk-{i:05}" for i in range(5)]
        await q.enqueue(POOL, "q", "urgent", NOW, priority=-1)
        assert await _claim(q, max_runs=2) == ["urgent", "bulk-00005"]

    run_pools(body)


def test_queue_priority_still_beats_run_priority(run_pools: Run) -> None:
    """Between the queues of a pool, priority stays strict whatever the runs' own priority."""

    async def body(q: PoolQueues) -> None:
        queues = [QueueConfig("high", priority=1), QueueConfig("low", priority=2)]
        await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=queues)
        await q.enqueue(POOL, "low", "low-urgent", NOW, priority=-100)
        await q.enqueue(POOL, "high", "high-plain", NOW)
        assert await _claim(q, max_runs=2) == ["high-plain", "low-urgent"]

    run_pools(body)


def test_a_fair_queue_lets_deployments_take_turns(run_pools: Run) -> None:
    """A burst of 1,000 runs of one deployment does not hold back another's runs behind it."""

    async def body(q: PoolQueues) -> None:
        fair = QueueConfig("q", fair=True)
        await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[fair])
        await _burst(q, "q", "a", 1000)
        assert await _claim(q, max_runs=4) == [f"a-{i:05}" for i in range(4)]
        await _burst(q, "q", "b", 3)
        await q.enqueue(POOL, "q", "no-deployment", NOW)
        first = await _claim(q, max_runs=8)
        assert sorted(first[:3]) == ["a-00004", "b-00000", "no-deployment"]
        assert first[3:] == ["a-00005", "b-00001", "a-00006", "b-00002", "a-00007"]
        assert await _drain(q, per_claim=100) == [f"a-{i:05}" for i in range(8, 1000)]

    run_pools(body)


def test_a_plain_queue_is_first_come_first_served(run_pools: Run) -> None:
    """Without fairness the later deployment waits for the whole burst."""

    async def body(q: PoolQueues) -> None:
        await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[QueueConfig("q")])
        await _burst(q, "q", "a", 100)
        assert len(await _claim(q, max_runs=4)) == 4
        await _burst(q, "q", "b", 3)
        taken = await _drain(q)
        assert taken[-3:] == ["b-00000", "b-00001", "b-00002"]

    run_pools(body)


def test_priority_comes_before_turns_in_a_fair_queue(run_pools: Run) -> None:
    """In a fair queue, a lower priority number still wins over another deployment's turn."""

    async def body(q: PoolQueues) -> None:
        fair = QueueConfig("q", fair=True)
        await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[fair])
        await _burst(q, "q", "a", 5)
        await q.enqueue(POOL, "q", "b-urgent", NOW, "b", priority=-1)
        await q.enqueue(POOL, "q", "b-plain", NOW, "b")
        taken = await _claim(q, max_runs=7)
        assert taken[0] == "b-urgent"
        # then turns as they came due: b's plain run shares the first turn with a's first
        assert sorted(taken[1:3]) == ["a-00000", "b-plain"]
        assert taken[3:] == ["a-00001", "a-00002", "a-00003", "a-00004"]

    run_pools(body)


def test_ten_thousand_runs_due_at_once_keep_their_order(run_pools: Run) -> None:
    """Promotion handles bursts larger than one Lua call can unpack, without losing a run."""

    async def body(q: PoolQueues) -> None:
        await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[QueueConfig("q")])
        runs = [(f"r-{i:05}", NOW - 10_000 + i) for i in range(10_000)]
        priorities = {run_id: 1 for run_id, _ in runs[::2]}  # even runs after odd ones
        await q.enqueue_many(POOL, "q", runs, priorities=priorities)
        taken = await _drain(q, per_claim=500)
        odd = [run_id for run_id, _ in runs[1::2]]
        even = [run_id for run_id, _ in runs[::2]]
        assert taken == odd + even

    run_pools(body)


def test_a_deployment_whose_backlog_was_removed_is_not_held_back(run_pools: Run) -> None:
    """Turns reserved by runs that were since removed do not push the next run back."""

    async def body(q: PoolQueues) -> None:
        fair = QueueConfig("q", fair=True)
        await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[fair])
        await _burst(q, "q", "a", 100)
        assert await _claim(q, max_runs=1) == ["a-00000"]
        for i in range(1, 100):  # e.g. the deployment was paused: its waiting runs deleted
            assert await q.remove(POOL, "q", f"a-{i:05}")
        await q.enqueue(POOL, "q", "a-new", NOW, "a")
        await q.enqueue(POOL, "q", "b-new", NOW, "b")
        # same turn for both (ties go by name); without the reset a-new would wait 99 turns
        assert await _claim(q, max_runs=2) == ["a-new", "b-new"]

    run_pools(body)


def test_fairness_can_be_switched_on_live(run_pools: Run) -> None:
    """Runs that become due after the switch take turns; no restart, no run lost."""

    async def body(q: PoolQueues) -> None:
        await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[QueueConfig("q")])
        await _burst(q, "q", "a", 10, ts=NOW + 10)
        await _burst(q, "q", "b", 10, ts=NOW + 20)
        await q.sync_pool(
            POOL, paused=False, concurrency_limit=None, queues=[QueueConfig("q", fair=True)]
        )
        assert await _claim(q) == []  # nothing due yet
        result = await q.claim(POOL, worker="w", max_runs=4, now=NOW + 30, lease_seconds=30)
        assert [c.run_id[0] for c in result.claims] == ["a", "b", "a", "b"]

    run_pools(body)


def test_removing_a_run_forgets_its_priority(run_pools: Run) -> None:
    """No per-run record outlives the run's place in the queue."""

    async def body(q: PoolQueues) -> None:
        await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[QueueConfig("q")])
        await q.enqueue(POOL, "q", "gone", NOW, "dep", priority=3)
        await q.enqueue(POOL, "q", "taken", NOW, "dep", priority=4)
        assert await q.remove(POOL, "q", "gone")
        assert await _claim(q) == ["taken"]
        redis = q._redis  # reading the key layout directly is the point of this test
        assert await redis.hlen(keys.run_priorities(POOL)) == 0
        assert await redis.hlen(keys.run_deployments(POOL)) == 0

    run_pools(body)
