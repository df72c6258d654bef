"""Deployment concurrency limits in the claim script: wait or cancel-new, never starve others."""

from __future__ import annotations

from flowyard.pools import Claim, DeploymentLimits, PoolQueues, QueueConfig, keys

NOW = 1_700_000_000.0
POOL = "deps"


async def _setup(q: PoolQueues, runs: dict[str, list[str]]) -> None:
    """One queue; each deployment's runs enqueued in order, the first deployment's first."""
    await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[QueueConfig("default")])
    at = NOW - 100
    for dep, run_ids in runs.items():
        for run_id in run_ids:
            at += 1
            await q.enqueue(POOL, "default", run_id, at, deployment_id=dep)


async def _claim(q: PoolQueues, max_runs: int = 10):
    return await q.claim(POOL, worker="w", max_runs=max_runs, now=NOW, lease_seconds=30)


def test_a_full_deployment_waits_and_others_are_not_starved(run_pools):
    """Limit 2 on A: a claim takes 2 of A's 5 runs and all of B's, though A's came first;
    a released slot lets the next run of A through."""

    async def body(q: PoolQueues) -> None:
        await _setup(q, {"A": [f"a{i}" for i in range(5)], "B": ["b0", "b1", "b2"]})
        await DeploymentLimits(q._redis).set(POOL, "A", 2)
        first = await _claim(q)
        assert [c.run_id for c in first.claims] == ["a0", "a1", "b0", "b1", "b2"]
        assert first.collided == [] and await DeploymentLimits(q._redis).running(POOL, "A") == 2
        assert (await _claim(q)).claims == []
        assert await q.release(POOL, "a0")
        assert await DeploymentLimits(q._redis).running(POOL, "A") == 1
        assert [c.run_id for c in (await _claim(q)).claims] == ["a2"]

    run_pools(body)


def test_cancel_new_hands_back_the_runs_over_the_limit(run_pools):
    """With cancel-new, due runs over the limit leave the queue as collided, to be cancelled."""

    async def body(q: PoolQueues) -> None:
        await _setup(q, {"A": ["a0", "a1", "a2"]})
        await DeploymentLimits(q._redis).set(POOL, "A", 1, cancel_new=True)
        result = await _claim(q)
        assert [c.run_id for c in result.claims] == ["a0"]
        assert result.collided == ["a1", "a2"]
        assert await q.depth(POOL, "default") == 0

    run_pools(body)


def test_a_changed_limit_applies_at_the_next_claim(run_pools):
    """Lowering to 0 holds everything back; removing the limit lets all through."""

    async def body(q: PoolQueues) -> None:
        await _setup(q, {"A": ["a0", "a1", "a2"]})
        await DeploymentLimits(q._redis).set(POOL, "A", 0)
        assert (await _claim(q)).claims == []
        await DeploymentLimits(q._redis).set(POOL, "A", None)
        assert len((await _claim(q)).claims) == 3

    run_pools(body)


def test_restored_claims_count_against_the_limit(run_pools):
    """Claims restored after Redis lost its data hold their deployment's slots again."""

    async def body(q: PoolQueues) -> None:
        await _setup(q, {"A": ["a1"]})
        await DeploymentLimits(q._redis).replace(POOL, {"A": (1, False)})
        held = Claim("a0", "default", "t.1", deployment="A")
        await q.restore_claims(POOL, [(held, "w")], NOW + 30)
        assert await DeploymentLimits(q._redis).running(POOL, "A") == 1
        assert (await _claim(q)).claims == []
        assert (await q.expired_leases(POOL, NOW + 31))[0].deployment == "A"
        await q.release(POOL, "a0")
        assert [c.run_id for c in (await _claim(q)).claims] == ["a1"]

    run_pools(body)


def test_a_removed_run_forgets_its_deployment(run_pools):
    """Taking a waiting run out of its queue also drops its deployment mapping."""

    async def body(q: PoolQueues) -> None:
        await _setup(q, {"A": ["a0"]})
        assert await q.remove(POOL, "default", "a0")
        assert await q._redis.hlen(keys.run_deployments(POOL)) == 0

    run_pools(body)
