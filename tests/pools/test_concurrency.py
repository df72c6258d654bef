"""Many claimers at once never exceed a limit and never share a run."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from flowyard.pools import Claim, PoolQueues, QueueConfig, connect

NOW = 1_700_000_000.0
POOL = "busy"
POOL_LIMIT = 5
QUEUE_LIMITS = {"fast": 3, "slow": 2, "bulk": None}
RUNS_PER_QUEUE = 70


class Tally:
    """What the claimers hold right now, and the most they ever held."""

    def __init__(self) -> None:
        self.held: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.claimed: list[str] = []

    def take(self, claim: Claim) -> None:
        self.claimed.append(claim.run_id)
        for scope in (claim.queue, "pool"):
            self.held[scope] += 1
            self.peak[scope] = max(self.peak[scope], self.held[scope])

    def give_back(self, claim: Claim) -> None:
        for scope in (claim.queue, "pool"):
            self.held[scope] -= 1


async def _claimer(name: str, q: PoolQueues, tally: Tally, total: int, seed: int) -> None:
    rng = random.Random(seed)
    redis_peak = 0
    while len(tally.claimed) < total:
        result = await q.claim(POOL, worker=name, max_runs=2, now=NOW, lease_seconds=30)
        for claim in result.claims:
            tally.take(claim)
        redis_peak = max(redis_peak, await q.running_count(POOL))
        for _ in range(rng.randint(0, 3)):  # hold the slots while others claim
            await asyncio.sleep(0)  # noqa: TID251 - a yield to the other claimers
        for claim in result.claims:
            tally.give_back(claim)  # before release: our view never over-counts Redis
            assert await q.release(POOL, claim.run_id) is True
        if not result.claims:
            await asyncio.sleep(0)  # noqa: TID251 - a yield to the other claimers
    assert redis_peak <= POOL_LIMIT


def test_eight_claimers_respect_limits_and_claim_each_run_once(redis_url: str) -> None:
    """8 concurrent PoolQueues over 210 runs: limits hold and every run is claimed exactly once."""

    async def main() -> Tally:
        clients = [connect(redis_url) for _ in range(8)]
        claimers = [PoolQueues(client) for client in clients]
        try:
            queues = [
                QueueConfig(name, priority, limit)
                for priority, (name, limit) in enumerate(QUEUE_LIMITS.items())
            ]
            await claimers[0].sync_pool(
                POOL, paused=False, concurrency_limit=POOL_LIMIT, queues=queues
            )
            for name in QUEUE_LIMITS:
                runs = [(f"{name}-{i}", NOW - i) for i in range(RUNS_PER_QUEUE)]
                await claimers[0].enqueue_many(POOL, name, runs)
            tally = Tally()
            total = RUNS_PER_QUEUE * len(QUEUE_LIMITS)
            workers = (_claimer(f"w{i}", q, tally, total, i) for i, q in enumerate(claimers))
            await asyncio.wait_for(asyncio.gather(*workers), timeout=60)
            assert await claimers[0].running_count(POOL) == 0
            return tally
        finally:
            for client in clients:
                await client.aclose()

    tally = asyncio.run(main())
    counts = Counter(tally.claimed)
    assert len(counts) == RUNS_PER_QUEUE * len(QUEUE_LIMITS)
    assert set(counts.values()) == {1}
    assert tally.peak["pool"] <= POOL_LIMIT
    for name, limit in QUEUE_LIMITS.items():
        if limit is not None:
            assert tally.peak[name] <= limit
    assert tally.peak["pool"] >= 2  # the claimers really did overlap
