"""Flow runs through real workers on a 3-primary Redis Cluster against one Redis.

For each topology a fresh server (SQLite) runs on it, with ``--pools`` process pools whose
hash slots are spread over the cluster's primaries, and one ``flowyard worker start``
process per pool (a worker serves one pool, so 8 pools take 8 workers). Each run's flow
appends its run id to ``marks.log`` (``O_APPEND``): a run executed twice shows as a
repeated line, a run lost as a missing one.

- due → claimed: ``--latency-runs`` runs, spread over the pools, fall due ``--pace`` ms
  apart while the workers wait; the latency is the run's Pending time (the claim's
  compare-and-set in the store) minus its scheduled time (or its creation, if later).
- claims/s with 1 and with up to 10 runs per claim: ``--runs`` runs queued at once over
  the pools, drained by workers started with ``--limit 1`` and ``--limit 10`` (a worker
  claims as many runs as it has room for); runs claimed per second between the first and
  the last claim, runs completed per second from the first claim to the last end.
- runs lost and runs executed twice (both must be 0), from ``marks.log`` and each run's
  history (one Running per run, every run Completed).

    python bench/redis_cluster_workers.py [--runs 10000] [--pools 8] [--latency-runs 200]

Every run is a real flow run (an engine process from the worker's fork server), so on a
small machine the workers' CPU, not Redis, bounds claims/s here; ``bench/redis_cluster.py``
measures the claim path alone. The committed results are of ``--runs 300
--latency-runs 60 --pace 250`` (2 cores shared with other jobs, load average ~25-35: 10,000
runs would have taken over an hour there).
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


def start_workers(server, pools: list[str], flows_dir: Path, limit: int) -> list[WorkerProcess]:
    return [
        WorkerProcess(server.url, pool, flows_dir, "--limit", str(limit), "--name", pool)
        for pool in pools
    ]


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
        for worker in start_workers(server, pools, flows_dir, 10):
            stack.callback(worker.stop)
        while len(api.list_workers()) < len(pools):  # every worker up and polling
            time.sleep(0.1)
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


def throughput(
    server, api, deps: list[s.Deployment], flows_dir: Path, limit: int, args
) -> dict[str, object]:
    """``--runs`` runs queued at once, drained by one worker per pool with ``limit``."""
    pools = [dep.pool_name for dep in deps]
    queue_runs(api, deps, args.runs)
    queued = len(deps) * (args.runs // len(deps))
    with ExitStack() as stack:
        for worker in start_workers(server, pools, flows_dir, limit):
            stack.callback(worker.stop)
        runs = wait_final(api, pools, queued, args.timeout)
    found = histories(server, runs)
    claimed = sorted(first(h, StateType.PENDING) for h in found)
    ended = max(h.run.end_time.timestamp() for h in found if h.run.end_time)
    return {
        "worker_limit": limit,
        "claims_per_second": len(claimed) / max(claimed[-1] - claimed[0], 1e-9),
        "completed_per_second": len(found) / (ended - claimed[0]),
        **outcome(found, read_marks(flows_dir), queued),
    }


def measure(name: str, args: argparse.Namespace) -> dict[str, object]:
    figures: dict[str, object] = {}
    with topology(name) as (env, cluster), embedded_server(env) as (server, flows_dir):
        (flows_dir / "flows.py").write_text((flows_dir / "flows.py").read_text() + MARK_FLOW)
        with server.client() as api:
            for phase in ("latency", "limit1", "limit10"):
                pools = pool_names(cluster, args.pools, phase)
                deps = [mark_deployment(api, pool, flows_dir) for pool in pools]
                if phase == "latency":
                    figures[phase] = latency(server, api, deps, flows_dir, args)
                else:
                    limit = 1 if phase == "limit1" else 10
                    figures[f"runs_per_claim_{limit}"] = throughput(
                        server, api, deps, flows_dir, limit, args
                    )
        if cluster is not None:
            figures["pools_per_primary"] = dict(
                Counter(str(cluster.node_of(f"{{{p}}}")) for p in pools)
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000, help="runs per throughput phase")
    parser.add_argument("--pools", type=int, default=8)
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--pace", type=float, default=150.0, help="ms between due times")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()
    load = os.getloadavg()
    figures = {name: measure(name, args) for name in ("single", "cluster")}
    write_results(
        "redis_cluster_workers",
        {
            "runs": args.runs,
            "pools": args.pools,
            "workers": args.pools,
            "load_average_at_start": load,
            "load_average_at_end": os.getloadavg(),
            **figures,
        },
    )


if __name__ == "__main__":
    main()
