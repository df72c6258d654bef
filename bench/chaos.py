"""Chaos: many short runs on 8 process workers, 2 of them SIGKILLed mid-load and restarted.

Targets: runs lost 0, runs executed twice 0, and each killed worker's runs recovered
within 2 × the claim lease. Every run appends its id to a marker file (O_APPEND), so a
run executed twice shows up twice. A run counts as recovered once it is final or held
by another worker; a killed worker's flow-run processes outlive it (they heartbeat and
report by themselves), its unstarted claims come back when their lease expires.

    python bench/chaos.py [--runs 10000] [--workers 8] [--limit 4] [--lease 10]
"""

from __future__ import annotations

import argparse
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import embedded_server, make_deployment, summary, write_results

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess
from flowyard.client import FlowyardClient

MARKER_FLOW = """
import os
from flowyard import flow


@flow(name="marker")
def marker(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (os.environ["FLOWYARD_FLOW_RUN_ID"] + "\\n").encode())
    os.close(fd)
"""
FINAL = "COMPLETED,FAILED,CRASHED,CANCELLED"


def create_runs(url: str, dep_id: str, count: int) -> None:
    with FlowyardClient(url) as api:
        for _ in range(count):
            api.run_deployment(dep_id, s.DeploymentRunRequest())


def recovered_after(api: FlowyardClient, worker_name: str, killed_at: float) -> float:
    """Seconds until every run the killed worker held is final or held by another worker."""
    held = [
        r.id
        for state in ("PENDING", "RUNNING")
        for r in api.list_flow_runs(state=state, limit=10_000)
        if r.worker_name == worker_name
    ]
    while held:
        held = [
            run_id
            for run_id in held
            if (run := api.read_flow_run(run_id)).worker_name == worker_name
            and not run.state.type.is_terminal
        ]
        time.sleep(0.2)
    return time.time() - killed_at


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--lease", type=float, default=10.0)
    args = parser.parse_args()
    env = {
        "FLOWYARD_CLAIM_LEASE_SECONDS": str(args.lease),
        "FLOWYARD_WORKER_HEARTBEAT_SECONDS": str(args.lease / 5),
        "FLOWYARD_RUN_HEARTBEAT_SECONDS": str(args.lease / 5),
        "FLOWYARD_RECONCILE_INTERVAL_SECONDS": "1",
    }
    with embedded_server(env) as (server, flows_dir):
        (flows_dir / "chaos.py").write_text(MARKER_FLOW)
        markers = flows_dir / "markers.txt"
        api = server.client()
        make_deployment(api, "chaos", flows_dir)
        dep = api.create_deployment(
            s.DeploymentCreate(
                name="chaos",
                flow_name="marker",
                entrypoint="chaos.py:marker",
                path=str(flows_dir),
                pool_name="chaos",
                parameters={"path": str(markers)},
            )
        )
        t0 = time.time()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: create_runs(server.url, dep.id, args.runs // 4), range(4)))
        created = time.time() - t0

        def start_worker(i: int) -> WorkerProcess:
            extra = ("--limit", str(args.limit), "--name", f"chaos-{i}-{time.time():.0f}")
            return WorkerProcess(server.url, "chaos", flows_dir, *extra, env=env)

        workers = [start_worker(i) for i in range(args.workers)]
        t_start = time.time()
        recoveries: list[float] = []
        rng = random.Random(7)

        def chaos() -> None:
            for kill in range(args.kills):
                time.sleep(rng.uniform(5, 15))
                victim = rng.randrange(len(workers))
                name = workers[victim].args[workers[victim].args.index("--name") + 1]
                workers[victim].stop(timeout=0, sig=signal.SIGKILL)
                killed_at = time.time()
                workers[victim] = start_worker(100 + kill)
                recoveries.append(recovered_after(api, name, killed_at))

        chaos_thread = threading.Thread(target=chaos)
        chaos_thread.start()
        while True:
            done = len(api.list_flow_runs(state=FINAL, limit=min(10_000, args.runs)))
            if done >= args.runs:
                break
            time.sleep(3.0)
        elapsed = time.time() - t_start
        chaos_thread.join()
        states = Counter(
            r.state.type.value for r in api.list_flow_runs(limit=min(10_000, args.runs))
        )
        for worker in workers:
            worker.stop()
    executions = Counter(Path(markers).read_text().split())
    write_results(
        "chaos",
        {
            "runs": args.runs,
            "workers": args.workers,
            "worker_limit": args.limit,
            "workers_killed": args.kills,
            "lease_seconds": args.lease,
            "creation_seconds": created,
            "seconds_until_all_final": elapsed,
            "runs_per_second": args.runs / elapsed,
            "final_states": dict(states),
            "runs_lost": args.runs - states.get("COMPLETED", 0),
            "runs_executed_twice": sum(1 for n in executions.values() if n > 1),
            "runs_never_executed": args.runs - len(executions),
            "recovery_seconds": summary(recoveries) if recoveries else None,
            "target_recovery_seconds": 2 * args.lease,
        },
    )


if __name__ == "__main__":
    main()
