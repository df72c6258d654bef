"""Runs created per second through the API: single creates from 4 client threads, and bulk
creates (``POST /api/deployments/{ref}/runs/bulk``, up to 1,000 runs a request), alike and
with a parameter set per run (``parameter_sets``), answered with the runs' documents or,
``?ids_only=true``, with their ids only.

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
from flowyard.workers.process import ProcessWorker


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
            sets = _typed_deployment(api, flows_dir)
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

        bulk_result = _bulk(server, bulk.id, args.runs, args.batch, per_run=False)
        ids_result = _bulk(server, bulk.id, args.runs, args.batch, per_run=False, ids_only=True)
        sets_result = _bulk(server, sets.id, args.runs, args.batch, per_run=True)
    write_results(
        "create_runs",
        {
            "runs": args.runs,
            "single": {
                "clients": args.clients,
                "runs_per_second": args.runs / single_seconds,
                "server_cpu_ms_per_run": single_cpu * 1000 / args.runs,
            },
            "bulk": bulk_result,
            "bulk_ids_only": ids_result,
            "bulk_parameter_sets": sets_result,
            "targets_runs_per_second": {"single": 1000, "bulk": 10_000},
        },
    )


def _typed_deployment(api, flows_dir) -> s.Deployment:
    """``hold`` with a parameter schema: each run's set is checked against it."""
    template = ProcessWorker.default_base_job_template()
    api.create_work_pool(s.WorkPoolCreate(name="sets", type="process", base_job_template=template))
    schema = {"type": "object", "properties": {"seconds": {"type": "number"}}}
    return api.create_deployment(
        s.DeploymentCreate(
            name="sets",
            flow_name="hold",
            entrypoint="flows.py:hold",
            path=str(flows_dir),
            pool_name="sets",
            parameter_schema=schema,
        )
    )


def _bulk(
    server, deployment_id: str, runs: int, batch: int, *, per_run: bool, ids_only: bool = False
) -> dict:
    """``runs`` runs in requests of ``batch``: alike, or each with its own parameter set;
    answered with documents, or with ids only."""
    requests: list[float] = []
    created = 0
    cpu_before, t0 = cpu_seconds(server.pid), time.perf_counter()
    with FlowyardClient(server.url, timeout=120) as api:
        while created < runs:
            count = min(batch, runs - created)
            sets = [{"seconds": created + i} for i in range(count)] if per_run else None
            body = s.DeploymentRunBulk(count=count, parameter_sets=sets)
            started = time.perf_counter()
            create = api.run_deployment_bulk_ids if ids_only else api.run_deployment_bulk
            made = create(deployment_id, body)
            requests.append(time.perf_counter() - started)
            created += len(made)
    seconds = time.perf_counter() - t0
    return {
        "runs_per_request": batch,
        "runs_per_second": created / seconds,
        "request_seconds": summary(requests),
        "server_cpu_ms_per_run": (cpu_seconds(server.pid) - cpu_before) * 1000 / created,
    }


if __name__ == "__main__":
    main()
