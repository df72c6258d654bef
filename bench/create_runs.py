"""Runs created per second through the API: single creates from 4 client threads, and bulk
creates (``POST /api/deployments/{ref}/runs/bulk``, up to 1,000 runs a request).

Targets: ≥ 1,000 runs/s single creates with 4 clients; ≥ 10,000 runs/s bulk.

    python bench/create_runs.py [--runs 10000] [--clients 4] [--batch 1000]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from common import cpu_seconds, embedded_server, make_deployment, summary, write_results

from flowyard import schemas as s
from flowyard.client import FlowyardClient


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=s.MAX_BULK_RUNS)
    args = parser.parse_args()
    with embedded_server() as (server, flows_dir):
        with server.client() as api:
            single = make_deployment(api, "single", flows_dir)
            bulk = make_deployment(api, "bulk", flows_dir)
            api.run_deployment(single.id, s.DeploymentRunRequest())  # warm-up

        def create(_: int) -> None:
            with FlowyardClient(server.url) as api:
                for _ in range(args.runs // args.clients):
                    api.run_deployment(single.id, s.DeploymentRunRequest())

        cpu_before, t0 = cpu_seconds(server.pid), time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(create, range(args.clients)))
        single_seconds = time.perf_counter() - t0
        single_cpu = cpu_seconds(server.pid) - cpu_before

        requests: list[float] = []
        created = 0
        cpu_before, t0 = cpu_seconds(server.pid), time.perf_counter()
        with FlowyardClient(server.url, timeout=120) as api:
            while created < args.runs:
                count = min(args.batch, args.runs - created)
                started = time.perf_counter()
                made = api.run_deployment_bulk(bulk.id, s.DeploymentRunBulk(count=count))
                requests.append(time.perf_counter() - started)
                created += len(made)
        bulk_seconds = time.perf_counter() - t0
        bulk_cpu = cpu_seconds(server.pid) - cpu_before
    write_results(
        "create_runs",
        {
            "runs": args.runs,
            "single": {
                "clients": args.clients,
                "runs_per_second": args.runs / single_seconds,
                "server_cpu_ms_per_run": single_cpu * 1000 / args.runs,
            },
            "bulk": {
                "runs_per_request": args.batch,
                "runs_per_second": created / bulk_seconds,
                "request_seconds": summary(requests),
                "server_cpu_ms_per_run": bulk_cpu * 1000 / created,
            },
            "targets_runs_per_second": {"single": 1000, "bulk": 10_000},
        },
    )


if __name__ == "__main__":
    main()
