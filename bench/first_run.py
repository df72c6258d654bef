"""The first run after a process worker starts, against the runs after it: the worker warms
its engine (fork server) when it starts, so the first run should not pay for the imports.

Each round starts a worker, waits until the API lists it ONLINE and then ``--settle``
seconds more (a worker usually waits a while for its first run), then runs one trivial
flow after another; figures are created → Completed seconds.

    python bench/first_run.py [--rounds 5] [--later 3] [--settle 3]
"""

from __future__ import annotations

import argparse
import time

from common import embedded_server, make_deployment, summary, write_results
from flow_runs import wait_final

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--later", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    first, later = [], []
    with embedded_server() as (server, flows_dir):
        api = server.client()
        for round_ in range(args.rounds):
            # a pool per round: a stopped worker's long-poll may still be open on the server
            # (and would claim the next run of its pool; the lease then has to expire)
            pool = f"bench-{round_}"
            dep = make_deployment(api, pool, flows_dir)  # the deployment moves to this pool
            worker = WorkerProcess(server.url, pool, flows_dir)
            try:
                deadline = time.monotonic() + 60
                while not [w for w in api.list_workers(pool) if w.status == "ONLINE"]:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the worker did not come online:\n{worker.tail()}")
                    time.sleep(0.02)
                time.sleep(args.settle)
                for index in range(1 + args.later):
                    t0 = time.time()
                    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
                    took = wait_final(api, [run.id], timeout=60)[run.id] - t0
                    (first if index == 0 else later).append(took)
            finally:
                worker.stop()
        api.close()
    write_results(
        "first_run",
        {
            "first_run_after_worker_start_s": summary(first),
            "later_runs_s": summary(later),
            "settle_seconds": args.settle,
        },
    )


if __name__ == "__main__":
    main()
