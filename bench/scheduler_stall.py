"""How long requests stall while the scheduler writes a backlog (issue 20).

100 deployments have interval schedules that the scheduler (every 2 s) turns into
``--scheduled-backlog`` runs. Meanwhile one client times, back to back for ``--seconds``,
a run's creation and its claim (``wait`` 0), both of which write to the store. A pass that
holds the API's event loop or the store's writer shows up in the p99 and max.

    python bench/scheduler_stall.py [--scheduled-backlog 100000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import time

from claim_latency import backlog_env, scheduled_backlog
from common import embedded_server, make_deployment, summary, write_results

from flowyard import schemas as s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scheduled-backlog", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    claims: list[float] = []
    creates: list[float] = []
    with embedded_server(backlog_env(args.scheduled_backlog)) as (server, flows_dir):
        with server.client() as api:
            dep = make_deployment(api, "stall", flows_dir)
            scheduled_backlog(api, flows_dir, args.scheduled_backlog)
            request = s.ClaimRequest(worker_name="bench", max_runs=1, wait=0)
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                t0 = time.perf_counter()
                api.run_deployment(dep.id, s.DeploymentRunRequest())
                t1 = time.perf_counter()
                api.claim("stall", request)
                t2 = time.perf_counter()
                creates.append((t1 - t0) * 1000)
                claims.append((t2 - t1) * 1000)
    write_results(
        "scheduler_stall",
        {
            "scheduled_backlog": args.scheduled_backlog,
            "seconds": args.seconds,
            "claim_ms": summary(claims),
            "create_ms": summary(creates),
        },
    )


if __name__ == "__main__":
    main()
