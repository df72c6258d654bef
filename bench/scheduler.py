"""Materializing schedules: 1,000 deployments with hourly cron schedules, 24 h ahead.

Target: ≤ 2 s of wall time for the passes that write the 24,000 runs (store + Redis; a
pass writes at most 5,000, in transactions of 250). The store is SQLite in a temp folder
(the embedded default), the queues a managed Redis; the passes are the scheduler's own
code (``materialize`` then the batched enqueue). A last pass, which finds nothing to write
(what every later pass does), is timed too. Each repetition starts from a fresh store;
the figures are over the repetitions (the commit's fsync makes passes vary by ±25% here).

    python bench/scheduler.py [--deployments 1000] [--hours 24] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import summary, write_results

from flowyard.orchestrator.runs import QueueEffect
from flowyard.orchestrator.services.scheduler import Window, materialize
from flowyard.pools import ManagedRedis, PoolQueues, QueueConfig, connect
from flowyard.store import Database
from flowyard.store import models as m


def seed(db: Database, deployments: int) -> None:
    with db.session() as session:
        pool = m.WorkPool(name="cron", type="process")
        queue = m.WorkQueue(name="default", priority=1)
        pool.queues.append(queue)
        flow = m.Flow(name="etl")
        session.add(pool)
        for i in range(deployments):
            dep = m.Deployment(flow=flow, name=f"d{i}", entrypoint="f.py:etl", queue=queue)
            session.add(m.DeploymentSchedule(deployment=dep, kind="cron", expression="0 * * * *"))


async def enqueue(redis_url: str, effects: list[QueueEffect]) -> None:
    redis = connect(redis_url)
    queues = PoolQueues(redis)
    await queues.sync_pool(
        "cron", queues=[QueueConfig("default", 1)], concurrency_limit=None, paused=False
    )
    by_queue: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for effect in effects:
        assert effect.enqueue_at is not None
        by_queue.setdefault((effect.pool, effect.queue), []).append(
            (effect.run_id, effect.enqueue_at)
        )
    for (pool, queue), runs in by_queue.items():
        await queues.enqueue_many(pool, queue, runs)
    await redis.aclose()


def one_pass(deployments: int, hours: int) -> dict[str, float]:
    """A fresh store with the deployments, then the first pass and an idle one, timed."""
    folder = Path(tempfile.mkdtemp(prefix="flowyard-bench-"))
    db = Database(f"sqlite:///{folder / 'store.db'}")
    db.migrate()
    seed(db, deployments)
    window = Window(max_runs=hours, horizon_seconds=hours * 3600)
    effects: list[QueueEffect] = []
    passes = 0
    with ManagedRedis(workdir=folder / "redis") as redis_server:
        t0 = time.perf_counter()
        while written := materialize(db, datetime.now(UTC), window):  # a pass has a limit
            effects += written
            passes += 1
        t1 = time.perf_counter()
        asyncio.run(enqueue(redis_server.url, effects))
        t2 = time.perf_counter()
        again = materialize(db, datetime.now(UTC), window)
        t3 = time.perf_counter()
    db.dispose()
    assert len(again) == 0
    return {
        "runs": len(effects),
        "passes": passes,
        "store": t1 - t0,
        "redis": t2 - t1,
        "first_pass": t2 - t0,
        "idle_pass": t3 - t2,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    passes = [one_pass(args.deployments, args.hours) for _ in range(args.repeat)]
    first = [p["first_pass"] for p in passes]
    write_results(
        "scheduler",
        {
            "deployments": args.deployments,
            "runs_written": passes[0]["runs"],
            "passes_to_write_them": passes[0]["passes"],
            "repetitions": args.repeat,
            "first_pass_seconds": summary(first),
            "store_seconds_median": statistics.median(p["store"] for p in passes),
            "redis_seconds_median": statistics.median(p["redis"] for p in passes),
            "runs_per_second_median": passes[0]["runs"] / statistics.median(first),
            "idle_pass_seconds_median": statistics.median(p["idle_pass"] for p in passes),
            "target_first_pass_seconds": 2.0,
        },
    )


if __name__ == "__main__":
    main()
