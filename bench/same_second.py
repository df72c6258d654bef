"""10,000 runs scheduled for the same second, drained by 4 claimers (no infrastructure).

Target: every run claimed ≤ 10 s after that second. Half the runs wait in a queue of
priority 1, half in a queue of priority 2; priorities are strict between the queues of a
pool, so the spread of claim order against priority shows how strict: how many priority-2
runs were claimed before the last priority-1 run (with several claimers only the claims in
flight at the boundary can overlap).

Each claimer is its own process asking for up to ``--batch`` runs per claim, as a process
worker with that many free slots does. Runs are created through the API ahead of the
second (``--lead`` seconds; the benchmark says if creating them took longer).

    python bench/same_second.py [--runs 10000] [--claimers 4] [--batch 10] [--lead 150]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from common import embedded_server, make_deployment, write_results

from flowyard import schemas as s
from flowyard.client import FlowyardClient

POOL = "same-second"


def claimer(url: str, batch: int, due: float, results: multiprocessing.Queue) -> None:
    claims: list[tuple[float, list[str]]] = []
    with FlowyardClient(url) as api:
        while time.time() < due:
            time.sleep(0.001)
        empty = 0
        while empty < 3:
            runs = api.claim(POOL, s.ClaimRequest(worker_name="c", max_runs=batch))
            if runs:
                claims.append((time.time(), [c.run.id for c in runs]))
                empty = 0
            else:
                empty += 1
    results.put(claims)


def create_runs(url: str, deployment_id: str, count: int, when: datetime) -> None:
    with FlowyardClient(url) as api:
        for _ in range(count):
            api.run_deployment(deployment_id, s.DeploymentRunRequest(scheduled_time=when))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--lead", type=float, default=150.0)
    args = parser.parse_args()
    with embedded_server() as (server, flows_dir):
        with server.client() as api:
            high = make_deployment(api, POOL, flows_dir)
            api.create_work_queue(POOL, s.WorkQueueCreate(name="low", priority=2))
            low = api.create_deployment(
                s.DeploymentCreate(
                    name="low",
                    flow_name="trivial",
                    entrypoint="flows.py:trivial",
                    path=str(flows_dir),
                    pool_name=POOL,
                    queue_name="low",
                )
            )
        due = float(int(time.time() + args.lead))
        when = datetime.fromtimestamp(due, UTC)
        t0 = time.time()
        per_thread = args.runs // 8
        with ThreadPoolExecutor(8) as pool:
            jobs = [
                pool.submit(create_runs, server.url, dep.id, per_thread, when)
                for dep in (high, low)
                for _ in range(4)
            ]
            for job in jobs:
                job.result()
        created_at = time.time()
        with server.client() as api:
            high_ids = {r.id for r in api.list_flow_runs(deployment_id=high.id, limit=args.runs)}
        results: multiprocessing.Queue = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(target=claimer, args=(server.url, args.batch, due, results))
            for _ in range(args.claimers)
        ]
        for proc in procs:
            proc.start()
        claims = sorted(c for _ in procs for c in results.get(timeout=900))
        for proc in procs:
            proc.join()
    order = [run_id for _, ids in claims for run_id in ids]
    claimed_at = {run_id: at for at, ids in claims for run_id in ids}
    last_high = max(i for i, run_id in enumerate(order) if run_id in high_ids)
    low_before = sum(1 for run_id in order[:last_high] if run_id not in high_ids)
    write_results(
        "same_second",
        {
            "runs": args.runs,
            "claimers": args.claimers,
            "runs_per_claim": args.batch,
            "runs_claimed": len(order),
            "duplicates": len(order) - len(set(order)),
            "creation_seconds": created_at - t0,
            "created_before_the_second": created_at < due,
            "seconds_until_all_claimed": claims[-1][0] - due,
            "seconds_until_priority_1_claimed": max(claimed_at[i] for i in high_ids) - due,
            "priority_2_claimed_before_last_priority_1": low_before,
            "target_seconds": 10,
        },
    )


if __name__ == "__main__":
    main()
