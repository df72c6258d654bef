"""Claims per second through the API: 4 concurrent claimers draining 10,000 queued runs.

Target: ≥ 1,000 runs claimed per second. Each claimer is its own process with its own
HTTP client (as workers are), asking for one run per claim (``--batch`` to ask for more),
and heartbeats the runs it holds (as workers do), so no lease expires mid-benchmark. Runs
are counted once each; ``claimed_again`` says how many claims took a run a second time.

    python bench/claim_throughput.py [--runs 10000] [--claimers 4] [--batch 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from common import cpu_seconds, embedded_server, make_deployment, summary, write_results

from flowyard import schemas as s
from flowyard.client import FlowyardClient

BEAT_SECONDS = 10.0  # a third of the default claim lease (30 s), as workers beat


def claimer(
    url: str, pool: str, name: str, batch: int, start: float, results: multiprocessing.Queue
) -> None:
    """Claim until the pool is empty, heartbeating what it holds (as a worker does), so
    that no lease expires and no run is claimed twice."""
    latencies: list[float] = []
    held: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    beater = threading.Thread(target=heartbeat, args=(url, pool, name, held, lock, done))
    beater.start()
    with FlowyardClient(url) as api:
        while time.time() < start:
            pass
        while True:
            t0 = time.perf_counter()
            runs = api.claim(pool, s.ClaimRequest(worker_name=name, max_runs=batch))
            latencies.append((time.perf_counter() - t0) * 1000)
            if not runs:
                break
            with lock:
                held.extend(claimed.run.id for claimed in runs)
    finished = time.time()
    done.set()
    beater.join()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    results.put((held, finished, latencies, cpu.ru_utime + cpu.ru_stime))


def heartbeat(
    url: str, pool: str, name: str, held: list[str], lock: threading.Lock, done: threading.Event
) -> None:
    """The worker's heartbeat: every third of the lease, extend the leases of ``held``."""
    with FlowyardClient(url) as api:
        while not done.wait(BEAT_SECONDS):
            with lock:
                run_ids = list(held)
            for i in range(0, len(run_ids), s.MAX_LIST_ITEMS):
                chunk = run_ids[i : i + s.MAX_LIST_ITEMS]
                api.worker_heartbeat(pool, s.WorkerHeartbeat(worker_name=name, run_ids=chunk))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    with embedded_server() as (server, flows_dir):
        with server.client() as api:
            dep = make_deployment(api, "throughput", flows_dir)
        t0 = time.time()

        def create(_: int) -> None:
            with FlowyardClient(server.url) as api:
                for _ in range(args.runs // 4):
                    api.run_deployment(dep.id, s.DeploymentRunRequest())

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(create, range(4)))
        created_per_s = args.runs / (time.time() - t0)
        # spawned, not forked: a fork taken after the create threads ran can inherit a
        # lock held at that moment (a claimer hung creating its heartbeat's SSL context)
        spawn = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue = spawn.Queue()
        start = time.time() + 5.0  # spawned interpreters take a moment to start
        procs = [
            spawn.Process(
                target=claimer,
                args=(server.url, "throughput", f"claimer-{i}", args.batch, start, results),
            )
            for i in range(args.claimers)
        ]
        for proc in procs:
            proc.start()
        server_cpu_before = cpu_seconds(server.pid)
        outcomes = [results.get(timeout=600) for _ in procs]
        server_cpu = cpu_seconds(server.pid) - server_cpu_before
        for proc in procs:
            proc.join()
    claims = sum(len(o[0]) for o in outcomes)
    claimed = len({run_id for o in outcomes for run_id in o[0]})  # each run counted once
    elapsed = max(o[1] for o in outcomes) - start
    latencies = [lat for o in outcomes for lat in o[2]]
    claimer_cpu_ms = sum(o[3] for o in outcomes) * 1000 / max(1, sum(len(o[2]) for o in outcomes))
    write_results(
        f"claim_throughput_batch{args.batch}",
        {
            "runs_queued": args.runs,
            "claimers": args.claimers,
            "runs_per_claim": args.batch,
            "runs_claimed": claimed,
            "claimed_again": claims - claimed,  # 0 unless a lease expired while held
            "seconds": elapsed,
            "claims_per_second": claimed / elapsed,
            "claim_request_ms": summary(latencies),
            "claimer_cpu_ms_per_request": claimer_cpu_ms,
            # the API process alone (not its Redis), per run claimed: what bounds claims/s
            # on a machine of its own
            "server_cpu_ms_per_run": server_cpu * 1000 / max(1, claimed),
            "runs_created_per_second": created_per_s,
            "target_claims_per_second": 1000,
        },
    )


if __name__ == "__main__":
    main()
