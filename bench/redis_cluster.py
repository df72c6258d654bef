"""One Redis against a 3-primary Redis Cluster on the same machine: due → claimed latency
and claims per second (1 and 10 runs per claim) through a real server.

For each topology a fresh server (SQLite) runs on it. Due → claimed: one claimer long-polls
while runs fall due 15 ms apart (``claim_latency``'s measure). Claims per second: runs are
queued in ``--pools`` pools whose slots spread over the cluster's primaries, then one
claimer process per pool drains its pool (``claim_throughput``'s claimer, heartbeating what
it holds); each run is counted once and ``claimed_again`` must be 0. Failover: on a
cluster of 3 primaries + 3 replicas, pools on every primary drain while the primary of one
dies; the seconds until its pool's claims flow again, runs lost and claimed twice (0, 0).

    python bench/redis_cluster.py [--latency-runs 300] [--runs 2000] [--pools 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from claim_latency import due_to_claimed
from claim_throughput import claimer
from common import embedded_server, make_deployment, summary, write_results

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError, ApiUnavailable
from flowyard.workers.process import ProcessWorker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.redis_cluster import LocalCluster, pools_on_every_node  # noqa: E402


@contextmanager
def topology(name: str) -> Iterator[tuple[dict[str, str], LocalCluster | None]]:
    """The server environment for ``name``: the managed Redis, or a fresh cluster."""
    if name == "single":
        yield {}, None
        return
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="flowyard-bench-cluster-")))
    try:
        yield {"FLOWYARD_REDIS_URL": cluster.url}, cluster
    finally:
        cluster.stop()


def pool_names(cluster: LocalCluster | None, count: int, prefix: str) -> list[str]:
    """``count`` pool names; on a cluster, taken in turn from one per primary."""
    if cluster is None:
        return [f"{prefix}-{i}" for i in range(count)]
    names: list[str] = []
    while len(names) < count:
        names += pools_on_every_node(cluster, f"{prefix}{len(names)}")
    return names[:count]


def deployment_in(api, pool: str, flows_dir: Path) -> s.Deployment:
    """A new process pool and a deployment of its own (``make_deployment`` names every
    deployment after its flow, so a second pool would take the first one's over)."""
    template = ProcessWorker.default_base_job_template()
    api.create_work_pool(s.WorkPoolCreate(name=pool, type="process", base_job_template=template))
    return api.create_deployment(
        s.DeploymentCreate(
            name=f"trivial-{pool}",
            flow_name="trivial",
            entrypoint="flows.py:trivial",
            path=str(flows_dir),
            pool_name=pool,
        )
    )


def queue_runs(api, deployments: list[s.Deployment], runs: int) -> None:
    per_pool = runs // len(deployments)
    for dep in deployments:
        left = per_pool
        while left:
            count = min(left, s.MAX_BULK_RUNS)
            api.run_deployment_bulk(dep.id, s.DeploymentRunBulk(count=count))
            left -= count


def claims_per_second(server, pools: list[str], batch: int) -> dict[str, object]:
    results: multiprocessing.Queue = multiprocessing.Queue()
    start = time.time() + 1.0
    procs = [
        multiprocessing.Process(
            target=claimer, args=(server.url, pool, f"claimer-{pool}", batch, start, results)
        )
        for pool in pools
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    claims = sum(len(o[0]) for o in outcomes)
    claimed = len({run_id for o in outcomes for run_id in o[0]})
    elapsed = max(o[1] for o in outcomes) - start
    return {
        "runs_per_claim": batch,
        "runs_claimed": claimed,
        "claimed_again": claims - claimed,
        "claims_per_second": claimed / elapsed,
        "claim_request_ms": summary([lat for o in outcomes for lat in o[2]]),
    }


def measure(name: str, args: argparse.Namespace) -> dict[str, object]:
    figures: dict[str, object] = {}
    with topology(name) as (env, cluster), embedded_server(env) as (server, flows_dir):
        with server.client() as api:
            dep = make_deployment(api, f"latency-{name}", flows_dir)
            latencies = due_to_claimed(api, dep, f"latency-{name}", args.latency_runs)
            figures["due_to_claimed_ms"] = summary(latencies)
            for batch in (1, 10):
                pools = pool_names(cluster, args.pools, f"b{batch}")
                deployments = [deployment_in(api, pool, flows_dir) for pool in pools]
                queue_runs(api, deployments, args.runs)
                figures[f"batch_{batch}"] = claims_per_second(server, pools, batch)
    return figures


DRAIN_SECONDS = 120.0
"""A pool still not drained by then is reported with its runs lost."""


class Drain:
    """One thread per pool claims 10 runs at a time until its pool is empty, riding out
    errors (the API answers 503 while a primary fails over); when each run came."""

    def __init__(self, server, pools: list[str]) -> None:
        self.server = server
        self.claims: list[tuple[float, float, str, str]] = []  # (sent, answered, pool, run)
        self.errors = 0
        self.last_error = ""
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._drain, args=(p,)) for p in pools]

    def __enter__(self) -> Drain:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in self._threads:
            thread.join()

    def count(self, pool: str) -> int:
        with self._lock:
            return sum(1 for *_, of, _ in self.claims if of == pool)

    def _drain(self, pool: str) -> None:
        deadline = time.monotonic() + DRAIN_SECONDS
        with FlowyardClient(self.server.url, retry_seconds=0) as api:
            while time.monotonic() < deadline:
                sent = time.time()
                try:
                    runs = api.claim(pool, s.ClaimRequest(worker_name=pool, max_runs=10))
                except (ApiError, ApiUnavailable) as exc:
                    with self._lock:
                        self.errors += 1
                        self.last_error = str(exc)
                    continue
                if not runs:
                    return
                now = time.time()
                with self._lock:
                    self.claims += [(sent, now, pool, claimed.run.id) for claimed in runs]

    def figures(self, queued: int, killed: float, after: list[float]) -> dict[str, object]:
        """A failover's figures: ``after`` holds when each claim asked for after the kill
        was answered with runs."""
        run_ids = [run_id for *_, run_id in self.claims]
        return {
            "runs_queued": queued,
            "seconds_to_claims_again": (min(after) - killed) if after else None,
            "runs_lost": queued - len(set(run_ids)),
            "claimed_again": len(run_ids) - len(set(run_ids)),
            "claim_errors_during_failover": self.errors,
            "last_claim_error": self.last_error,
        }


def failover(args: argparse.Namespace) -> dict[str, object]:
    """A 3+3 cluster; while pools on every primary drain, the primary of the first dies:
    seconds until that pool's claims flow again, runs lost and claimed twice."""
    folder = Path(tempfile.mkdtemp(prefix="flowyard-bench-failover-"))
    cluster = LocalCluster(folder, primaries=3, replicas=1)
    env = {"FLOWYARD_REDIS_URL": cluster.url, "FLOWYARD_CLAIM_LEASE_SECONDS": "600"}
    try:
        with embedded_server(env) as (server, flows_dir), server.client() as api:
            seed = cluster.nodes[0].port
            on_seed = lambda pool: cluster.node_of(f"{{{pool}}}") == seed  # noqa: E731
            pools = sorted(pools_on_every_node(cluster, "fo"), key=on_seed)  # the seed's last
            queue_runs(api, [deployment_in(api, pool, flows_dir) for pool in pools], args.runs)
            doomed_port = cluster.node_of(f"{{{pools[0]}}}")
            doomed = next(node for node in cluster.nodes if node.port == doomed_port)
            with Drain(server, pools) as drain:
                while drain.count(pools[0]) < args.runs // len(pools) // 3:
                    time.sleep(0.01)
                killed = time.time()
                doomed.kill()
            # claims asked for after the death (one already on its way may still be answered)
            after = [at for sent, at, pool, _ in drain.claims if pool == pools[0] and sent > killed]
    finally:
        cluster.stop()
    return drain.figures(len(pools) * (args.runs // len(pools)), killed, after)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-runs", type=int, default=300)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--pools", type=int, default=4)
    args = parser.parse_args()
    figures = {name: measure(name, args) for name in ("single", "cluster")}
    figures["cluster_failover"] = failover(args)
    write_results("redis_cluster", {"runs": args.runs, "pools": args.pools, **figures})


if __name__ == "__main__":
    main()
