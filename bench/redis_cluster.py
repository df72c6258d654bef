"""One Redis against a 3-primary Redis Cluster on the same machine: due → claimed latency
and claims per second (1 and 10 runs per claim) through a real server.

For each topology a fresh server (SQLite) runs on it. Due → claimed: one claimer long-polls
while runs fall due 15 ms apart (``claim_latency``'s measure). Claims per second: runs are
queued in ``--pools`` pools whose slots spread over the cluster's primaries, then one
claimer process per pool drains its pool (``claim_throughput``'s claimer, heartbeating what
it holds); each run is counted once and ``claimed_again`` must be 0.

    python bench/redis_cluster.py [--latency-runs 300] [--runs 2000] [--pools 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from claim_latency import due_to_claimed
from claim_throughput import claimer
from common import embedded_server, make_deployment, summary, write_results

from flowyard import schemas as s

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
                deployments = [make_deployment(api, pool, flows_dir) for pool in pools]
                queue_runs(api, deployments, args.runs)
                figures[f"batch_{batch}"] = claims_per_second(server, pools, batch)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-runs", type=int, default=300)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--pools", type=int, default=4)
    args = parser.parse_args()
    figures = {name: measure(name, args) for name in ("single", "cluster")}
    write_results("redis_cluster", {"runs": args.runs, "pools": args.pools, **figures})


if __name__ == "__main__":
    main()
