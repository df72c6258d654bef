"""A Sentinel failover under load: the time from the primary's death to claims flowing
again, and runs lost or claimed twice (both must be 0).

A real server runs on a Sentinel-watched Redis (1 primary, 1 replica, 3 Sentinels that
call a primary down after 1 s of silence: ``tests.helpers.redis_cluster.LocalSentinel``).
``--runs`` runs are queued over ``--pools`` pools; one thread per pool claims 10 at a time
(``redis_cluster.Drain``, riding out the API's 503s) and, once a third are claimed, the
primary is killed. The figure is the first claim answered with runs among those asked for
after the kill. The claims' leases last 600 s, so no run comes back by expiring: a run
claimed twice would be a run the failover made run twice.

    python bench/redis_sentinel.py [--runs 2000] [--pools 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import embedded_server, write_results
from redis_cluster import Drain, deployment_in, queue_runs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.redis_cluster import LocalSentinel  # noqa: E402


def sentinel_failover(args: argparse.Namespace) -> dict[str, object]:
    sentinel = LocalSentinel(Path(tempfile.mkdtemp(prefix="flowyard-bench-sentinel-")))
    env = {"FLOWYARD_REDIS_URL": sentinel.url, "FLOWYARD_CLAIM_LEASE_SECONDS": "600"}
    try:
        with embedded_server(env) as (server, flows_dir), server.client() as api:
            pools = [f"sentinel-{i}" for i in range(args.pools)]
            queue_runs(api, [deployment_in(api, pool, flows_dir) for pool in pools], args.runs)
            queued = len(pools) * (args.runs // len(pools))
            with Drain(server, pools) as drain:
                while len(drain.claims) < queued // 3:
                    time.sleep(0.01)
                killed = time.time()
                sentinel.primary.kill()
            after = [at for sent, at, *_ in drain.claims if sent > killed]
            promoted = sentinel.primary_port() == sentinel.replica.port
    finally:
        sentinel.stop()
    return {"replica_promoted": promoted, **drain.figures(queued, killed, after)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--pools", type=int, default=2)
    args = parser.parse_args()
    load = os.getloadavg()
    figures = sentinel_failover(args)
    write_results(
        "redis_sentinel",
        {"runs": args.runs, "pools": args.pools, "load_average_at_start": load, **figures},
    )


if __name__ == "__main__":
    main()
