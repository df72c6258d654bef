"""Order within one queue under a burst: fair turns and per-run priority (Redis only).

A burst of ``--burst`` runs of deployment A and then ``--small`` runs of deployment B
become due in the same second; a claimer takes ``--batch`` runs per claim (the claim
script alone, against a managed redis-server: no API, no store). Reported for a
first-come-first-served queue and for a fair one: at which claim position B's last run
was taken (fair target: within the first 2 × small positions), how long until it was
taken, and the claim script's time per claim while 10,000 runs are due. Then one urgent
run (priority -1) arrives behind the burst: its position (target: the next claim).

    python bench/fairness.py [--burst 10000] [--small 10] [--batch 10]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from common import summary, write_results

from flowyard.pools import ManagedRedis, PoolQueues, QueueConfig, connect

POOL = "fairness"
NOW = 1_700_000_000.0


async def drain(q: PoolQueues, batch: int) -> tuple[list[str], list[float], list[float]]:
    """Claim until empty: the order, when each claim ended, and each claim's duration."""
    order: list[str] = []
    ended: list[float] = []
    took: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        result = await q.claim(POOL, worker="w", max_runs=batch, now=NOW, lease_seconds=60)
        took.append((time.perf_counter() - t0) * 1000)
        if not result.claims:
            return order, ended, took
        for claim in result.claims:
            order.append(claim.run_id)
            ended.append(time.perf_counter() - start)


async def scenario(q: PoolQueues, *, fair: bool, burst: int, small: int, batch: int) -> dict:
    queue = QueueConfig("q", fair=fair)
    await q.sync_pool(POOL, paused=False, concurrency_limit=None, queues=[queue])
    a_runs = [(f"a-{fair}-{i}", NOW) for i in range(burst)]
    b_runs = [(f"b-{fair}-{i}", NOW) for i in range(small)]
    await q.enqueue_many(POOL, "q", a_runs, {run_id: "A" for run_id, _ in a_runs})
    await q.enqueue_many(POOL, "q", b_runs, {run_id: "B" for run_id, _ in b_runs})
    first = await q.claim(POOL, worker="w", max_runs=batch, now=NOW, lease_seconds=60)
    await q.enqueue(POOL, "q", f"urgent-{fair}", NOW, "A", priority=-1)
    order, ended, took = await drain(q, batch)
    order = [c.run_id for c in first.claims] + order
    ended = [0.0] * len(first.claims) + ended
    last_b = max(order.index(run_id) for run_id, _ in b_runs)
    return {
        "fair": fair,
        "runs_claimed": len(order),
        "duplicates": len(order) - len(set(order)),
        "position_of_last_b_run": last_b,
        "seconds_until_last_b_run": ended[last_b],
        "urgent_run_position": order.index(f"urgent-{fair}") - len(first.claims),
        "claim_ms": summary(took),
        "claims_per_second": len(took) / (sum(took) / 1000),
    }


async def run(args: argparse.Namespace, url: str) -> list[dict]:
    client = connect(url)
    try:
        q = PoolQueues(client)
        return [
            await scenario(q, fair=fair, burst=args.burst, small=args.small, batch=args.batch)
            for fair in (False, True)
        ]
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    redis = ManagedRedis(workdir=Path(tempfile.mkdtemp(prefix="flowyard-fairness-"))).start()
    try:
        plain, fair = asyncio.run(run(args, redis.url))
    finally:
        redis.stop()
    write_results(
        "fairness",
        {
            "burst_runs": args.burst,
            "small_runs": args.small,
            "runs_per_claim": args.batch,
            "first_come_first_served": plain,
            "fair": fair,
            "target_last_b_position_fair": 2 * args.small,
        },
    )


if __name__ == "__main__":
    main()
