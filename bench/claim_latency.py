"""Due → claimed latency with a worker already waiting (target: p50 ≤ 5 ms, p99 ≤ 25 ms).

1,000 runs are created ahead, each due at its own moment 15 ms apart. One claimer (the
worker's long-poll, through the HTTP API) waits throughout; for each run the latency is
the time it was received minus the time it became due. A second figure, created →
claimed, times runs that are due the moment they are created.

With ``--scheduled-backlog N``, 100 deployments of another pool have interval schedules
that the scheduler (every 2 s) turns into N runs waiting ahead, and the latencies are
measured while it writes them and after: a scheduler pass must not stall claims (issue
20's target: p99 ≤ 25 ms with 100,000 schedule-made runs waiting).

    python bench/claim_latency.py [--runs 1000] [--scheduled-backlog 100000]
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime, timedelta

from common import embedded_server, make_deployment, summary, write_results

from flowyard import schemas as s
from flowyard.workers.process import ProcessWorker


def claim_all(api, pool: str, count: int, received: dict[str, float], wanted=None) -> None:
    """Claim until ``count`` runs (of ``wanted``, when given: an earlier round's run whose
    lease expired, as nothing heartbeats here, comes back and is not this round's)."""
    while len(received) < count:
        for claimed in api.claim(pool, s.ClaimRequest(worker_name="bench", max_runs=1, wait=30)):
            if wanted is None or claimed.run.id in wanted:
                received[claimed.run.id] = time.time()


def due_to_claimed(api, dep, pool: str, runs: int, lead: float | None = None) -> list[float]:
    lead = 2 + runs * 0.012 if lead is None else lead  # room to create them all
    start = datetime.now(UTC) + timedelta(seconds=lead)
    due = {}
    for i in range(runs):
        when = start + timedelta(milliseconds=15 * i)
        run = api.run_deployment(dep.id, s.DeploymentRunRequest(scheduled_time=when))
        due[run.id] = when.timestamp()
    if datetime.now(UTC) > start:
        raise SystemExit("creating the runs took longer than the lead time; raise --lead")
    received: dict[str, float] = {}
    claim_all(api, pool, runs, received, wanted=due)
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


BACKLOG_DEPLOYMENTS = 100


def scheduled_backlog(api, flows_dir, runs: int) -> None:
    """Deployments whose schedules the scheduler turns into ``runs`` runs waiting ahead."""
    template = ProcessWorker.default_base_job_template()
    api.create_work_pool(
        s.WorkPoolCreate(name="backlog", type="process", base_job_template=template)
    )
    for i in range(BACKLOG_DEPLOYMENTS):
        api.create_deployment(
            s.DeploymentCreate(
                name=f"scheduled-{i}",
                flow_name="trivial",
                entrypoint="flows.py:trivial",
                path=str(flows_dir),
                pool_name="backlog",
                schedules=[s.ScheduleCreate(kind="interval", expression=str(60 + i))],
            )
        )


def backlog_env(runs: int) -> dict[str, str]:
    per_schedule = max(1, runs // BACKLOG_DEPLOYMENTS)
    return {
        "FLOWYARD_SCHEDULER_INTERVAL_SECONDS": "2",
        "FLOWYARD_SCHEDULER_MAX_RUNS": str(per_schedule),
        "FLOWYARD_SCHEDULER_HORIZON_SECONDS": str(per_schedule * 200),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--scheduled-backlog", type=int, default=0)
    parser.add_argument(
        "--lead", type=float, default=None, help="seconds to create the runs in (loaded machine)"
    )
    args = parser.parse_args()
    env = backlog_env(args.scheduled_backlog) if args.scheduled_backlog else None
    figures: dict[str, object] = {"scheduled_backlog": args.scheduled_backlog}
    with embedded_server(env) as (server, flows_dir):
        with server.client() as api:
            dep = make_deployment(api, "latency", flows_dir)
            if args.scheduled_backlog:
                scheduled_backlog(api, flows_dir, args.scheduled_backlog)
                figures["due_to_claimed_while_scheduling_ms"] = summary(
                    due_to_claimed(api, dep, "latency", args.runs, args.lead)
                )
                # the first round's runs come back when their leases expire (nothing here
                # heartbeats): the next round claims from a pool of its own
                dep = make_deployment(api, "latency-after", flows_dir, "hold")
            pool = "latency-after" if args.scheduled_backlog else "latency"
            figures["due_to_claimed_ms"] = summary(
                due_to_claimed(api, dep, pool, args.runs, args.lead)
            )
        figures["created_to_claimed_ms"] = summary(
            created_to_claimed(server, dep, pool, min(200, args.runs))
        )
    name = "claim_latency_scheduled" if args.scheduled_backlog else "claim_latency"
    figures["targets"] = {"due_to_claimed_p50_ms": 5, "due_to_claimed_p99_ms": 25}
    write_results(name, figures)


if __name__ == "__main__":
    main()
