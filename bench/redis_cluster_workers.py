"""Flow runs through real workers on a 3-primary Redis Cluster against one Redis.

For each topology a fresh server (SQLite) runs on it, with ``--pools`` process pools whose
hash slots are spread over the cluster's primaries, served by ``--workers`` ``flowyard
worker start`` processes, each serving ``pools / workers`` of the pools (``--pool a --pool
b``: one worker per pool inside the process). Each run's flow appends its run id to
``marks.log`` (``O_APPEND``): a run executed twice shows as a repeated line, a run lost as
a missing one.

- due → claimed: ``--latency-runs`` runs, spread over the pools, fall due ``--pace`` ms
  apart while the workers wait; the latency is the run's Pending time (the claim's
  compare-and-set in the store) minus its scheduled time (or its creation, if later).
- drain: ``--runs`` runs queued at once over the pools, drained by the workers started
  with ``--limit`` (per pool: a worker claims as many runs as its pool has room for, up to
  10 per claim); runs claimed per second between the first and the last claim, runs
  completed per second from the first claim to the last end. Claims/s at 1 and at 10 runs
  per claim, without flow processes, are ``bench/redis_cluster.py``'s.
- runs lost and runs executed twice (both must be 0; the script fails otherwise), from
  ``marks.log`` and each run's history (one Running per run, every run Completed).

    python bench/redis_cluster_workers.py [--runs 10000] [--pools 8] [--workers 4]
        [--limit 10] [--latency-runs 200]

Every run is a real flow run (an engine process from the worker's fork server), so on a
small machine the workers' CPU, not Redis, bounds claims/s here; ``bench/redis_cluster.py``
measures the claim path alone. 10,000 runs take about an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from common import embedded_server, summary, write_results
from redis_cluster import pool_names, queue_runs, topology

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess
from flowyard.states import StateType
from flowyard.workers.process import ProcessWorker

MARK_FLOW = """

@flow(name="mark")
def mark() -> None:
    from flowyard.runtime import flow_run

    fd = os.open(Path(__file__).with_name("marks.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (str(flow_run.id) + "\\n").encode())
    finally:
        os.close(fd)
"""

LEAD_SECONDS = 5.0
"""Time to create the latency runs before the first falls due (plus 0.3 s a run)."""

FINAL = "COMPLETED,FAILED,CRASHED,CANCELLED"


def mark_deployment(api, pool: str, flows_dir: Path) -> s.Deployment:
    """A new process pool and a deployment of the ``mark`` flow on it."""
    template = ProcessWorker.default_base_job_template()
    api.create_work_pool(s.WorkPoolCreate(name=pool, type="process", base_job_template=template))
    return api.create_deployment(
        s.DeploymentCreate(
            name=f"mark-{pool}",
            flow_name="mark",
            entrypoint="flows.py:mark",
            path=str(flows_dir),
            pool_name=pool,
        )
    )


def start_workers(server, pools: list[str], flows_dir: Path, args) -> list[WorkerProcess]:
    """``--workers`` processes, the i-th serving every ``--workers``-th pool from i (on a
    cluster, pools on different primaries)."""
    options = ("--limit", str(args.limit))
    return [
        WorkerProcess(server.url, pools[i :: args.workers], flows_dir, *options, "--name", f"w{i}")
        for i in range(args.workers)
    ]


def wait_online(api, pools: list[str]) -> None:
    """Until every pool's worker heartbeats (each process lists one worker per pool)."""
    deadline = time.monotonic() + 120
    while sum(w.status == "ONLINE" for pool in pools for w in api.list_workers(pool)) < len(pools):
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not come online within 120 s")
        time.sleep(0.1)


def wait_final(api, pools: list[str], count: int, timeout: float) -> list[s.FlowRun]:
    """Poll until ``count`` runs of ``pools`` are final; fails with how many were."""
    deadline = time.monotonic() + timeout
    while True:
        final = [
            run
            for pool in pools
            for run in api.list_flow_runs(state=FINAL, pool=pool, limit=10_000)
        ]
        if len(final) >= count:
            return final
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(final)}/{count} runs final after {timeout:.0f}s")
        time.sleep(0.5)


def histories(server, runs: list[s.FlowRun]) -> list[s.FlowRunHistory]:
    def read(run_id: str) -> s.FlowRunHistory:
        with server.client() as api:
            return api.read_flow_run_history(run_id)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(read, [run.id for run in runs]))


def due(run: s.FlowRun) -> float:
    """When the run fell due: its scheduled time, or its creation if that came later (on
    a loaded machine creating the runs can fall behind their due times)."""
    return max(run.scheduled_time, run.created).timestamp()


def first(history: s.FlowRunHistory, kind: StateType) -> float:
    return next(st.timestamp.timestamp() for st in history.states if st.type is kind)


def outcome(found: list[s.FlowRunHistory], marks: list[str], queued: int) -> dict[str, object]:
    """Runs lost and executed twice, from the marks and the histories."""
    ids = {h.run.id for h in found}
    marked = Counter(line for line in marks if line in ids)
    runnings = Counter(sum(st.type is StateType.RUNNING for st in h.states) for h in found)
    return {
        "runs_queued": queued,
        "runs_completed": sum(h.run.state.type is StateType.COMPLETED for h in found),
        "runs_lost": queued - len(marked),
        "runs_executed_twice": sum(n > 1 for n in marked.values()),
        "runs_with_more_than_one_running": sum(n for k, n in runnings.items() if k > 1),
    }


def read_marks(flows_dir: Path) -> list[str]:
    path = flows_dir / "marks.log"
    return path.read_text().split() if path.exists() else []


def latency(server, api, deps: list[s.Deployment], flows_dir: Path, args) -> dict[str, object]:
    """Runs falling due ``--pace`` ms apart over the pools while every worker waits."""
    from datetime import UTC, datetime, timedelta

    pools = [dep.pool_name for dep in deps]
    with ExitStack() as stack:
        for worker in start_workers(server, pools, flows_dir, args):
            stack.callback(worker.stop)
        wait_online(api, pools)
        start = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS + args.latency_runs * 0.3)
        for i in range(args.latency_runs):
            when = start + timedelta(milliseconds=args.pace * i)
            api.run_deployment(deps[i % len(deps)].id, s.DeploymentRunRequest(scheduled_time=when))
        runs = wait_final(api, pools, args.latency_runs, 120 + args.latency_runs * args.pace / 1000)
    found = histories(server, runs)
    delays = [(first(h, StateType.PENDING) - due(h.run)) * 1000 for h in found]
    return {
        "due_to_claimed_ms": summary(delays),
        **outcome(found, read_marks(flows_dir), args.latency_runs),
    }


def drain(server, api, deps: list[s.Deployment], flows_dir: Path, args) -> dict[str, object]:
    """``--runs`` runs queued at once, drained by the ``--workers`` processes."""
    pools = [dep.pool_name for dep in deps]
    queue_runs(api, deps, args.runs)
    queued = len(deps) * (args.runs // len(deps))
    with ExitStack() as stack:
        for worker in start_workers(server, pools, flows_dir, args):
            stack.callback(worker.stop)
        runs = wait_final(api, pools, queued, args.timeout)
    found = histories(server, runs)
    claimed = sorted(first(h, StateType.PENDING) for h in found)
    ended = max(h.run.end_time.timestamp() for h in found if h.run.end_time)
    return {
        "claims_per_second": len(claimed) / max(claimed[-1] - claimed[0], 1e-9),
        "completed_per_second": len(found) / (ended - claimed[0]),
        **outcome(found, read_marks(flows_dir), queued),
    }


def measure(name: str, args: argparse.Namespace) -> dict[str, object]:
    figures: dict[str, object] = {}
    with topology(name) as (env, cluster), embedded_server(env) as (server, flows_dir):
        (flows_dir / "flows.py").write_text((flows_dir / "flows.py").read_text() + MARK_FLOW)
        with server.client() as api:
            for phase, measure_phase in (("latency", latency), ("drain", drain)):
                pools = pool_names(cluster, args.pools, phase)
                deps = [mark_deployment(api, pool, flows_dir) for pool in pools]
                figures[phase] = measure_phase(server, api, deps, flows_dir, args)
        if cluster is not None:
            figures["pools_per_primary"] = dict(
                Counter(str(cluster.node_of(f"{{{p}}}")) for p in pools)
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000, help="runs drained")
    parser.add_argument("--pools", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--limit", type=int, default=10, help="each worker's --limit (per pool)")
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--pace", type=float, default=150.0, help="ms between due times")
    parser.add_argument("--timeout", type=float, default=7200.0, help="s to drain the runs")
    args = parser.parse_args()
    if args.workers < 1 or args.pools % args.workers:
        parser.error("--pools must be a multiple of --workers (each serves as many pools)")
    load = os.getloadavg()
    figures = {name: measure(name, args) for name in ("single", "cluster")}
    write_results(
        "redis_cluster_workers",
        {
            "runs": args.runs,
            "pools": args.pools,
            "workers": args.workers,
            "pools_per_worker": args.pools // args.workers,
            "worker_limit_per_pool": args.limit,
            "load_average_at_start": load,
            "load_average_at_end": os.getloadavg(),
            **figures,
        },
    )
    failures = [
        f"{name} {phase}: {found[key]} {key}"
        for name, phases in figures.items()
        for phase, found in phases.items()
        if isinstance(found, dict)
        for key in ("runs_lost", "runs_executed_twice", "runs_with_more_than_one_running")
        if found.get(key)
    ]
    if failures:
        raise SystemExit("runs lost or run twice: " + "; ".join(failures))


if __name__ == "__main__":
    main()
