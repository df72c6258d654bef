"""Due → claimed latency with a worker already waiting (target: p50 ≤ 5 ms, p99 ≤ 25 ms).

1,000 runs are created ahead, each due at its own moment 15 ms apart. One claimer (the
worker's long-poll, through the HTTP API) waits throughout; for each run the latency is
the time it was received minus the time it became due. A second figure, created →
claimed, times runs that are due the moment they are created.

    python bench/claim_latency.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime, timedelta

from common import embedded_server, make_deployment, summary, write_results

from flowyard import schemas as s


def claim_all(api, pool: str, count: int, received: dict[str, float]) -> None:
    while len(received) < count:
        for claimed in api.claim(pool, s.ClaimRequest(worker_name="bench", max_runs=1, wait=30)):
            received[claimed.run.id] = time.time()


def due_to_claimed(api, dep, pool: str, runs: int) -> list[float]:
    start = datetime.now(UTC) + timedelta(seconds=2 + runs * 0.012)  # room to create them all
    due = {}
    for i in range(runs):
        when = start + timedelta(milliseconds=15 * i)
        run = api.run_deployment(dep.id, s.DeploymentRunRequest(scheduled_time=when))
        due[run.id] = when.timestamp()
    if datetime.now(UTC) > start:
        raise SystemExit("creating the runs took longer than the lead time; raise it")
    received: dict[str, float] = {}
    claim_all(api, pool, runs, received)
    return [(received[run_id] - due[run_id]) * 1000 for run_id in due]


def created_to_claimed(server, dep, pool: str, runs: int) -> list[float]:
    latencies = []
    with server.client() as claimer_api:
        for _ in range(runs):
            received: dict[str, float] = {}
            claimer = threading.Thread(target=claim_all, args=(claimer_api, pool, 1, received))
            claimer.start()
            time.sleep(0.005)  # let the long-poll reach the server and wait
            with server.client() as api:
                t0 = time.time()
                api.run_deployment(dep.id, s.DeploymentRunRequest())
            claimer.join()
            latencies.append((next(iter(received.values())) - t0) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    with embedded_server() as (server, flows_dir):
        with server.client() as api:
            dep = make_deployment(api, "latency", flows_dir)
            due = due_to_claimed(api, dep, "latency", args.runs)
        created = created_to_claimed(server, dep, "latency", min(200, args.runs))
    write_results(
        "claim_latency",
        {
            "due_to_claimed_ms": summary(due),
            "created_to_claimed_ms": summary(created),
            "targets": {"due_to_claimed_p50_ms": 5, "due_to_claimed_p99_ms": 25},
        },
    )


if __name__ == "__main__":
    main()
