"""The Lambda worker end to end against moto's Lambda, functions run on a local dockerd.

- created → Completed for one run at a time (20 runs, p50), from the server's own
  timestamps (the run's creation and its Completed state), Event invocations;
- a batch of runs through one worker with ``--limit 20``: invocations per second it
  sustains (each invocation is one run, from the first creation to the last Completed).

moto answers an Event invoke only once the function returned (AWS answers at once), so
here an Event invocation holds a worker thread for its run's length, as RequestResponse
does: the batch figure is bound by the emulation (a container per invoke), not the worker.
Starts a private dockerd and moto the way the tests do (``FLOWYARD_TEST_DOCKER_DIR``).

    python bench/lambda_runs.py [--sequential 20] [--batch 60] [--limit 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import embedded_server, percentile, rss_mib, summary, write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.docker_engine import DockerEngine  # noqa: E402
from tests.moto_lambda import MotoLambda, code_zip  # noqa: E402

from flowyard import schemas as s  # noqa: E402
from flowyard.cli.processes import WorkerProcess  # noqa: E402
from flowyard.workers.aws_lambda import LambdaWorker  # noqa: E402

POOL = "lambda-bench"
FUNCTION = "flowyard-bench"


def deploy(api, moto: MotoLambda) -> s.Deployment:
    api.save_block("aws-credentials", "moto", moto.credentials())
    template = LambdaWorker.default_base_job_template()
    properties = template["variables"]["properties"]
    properties["aws_credentials"]["default"] = "{{ block.aws-credentials/moto }}"
    properties["function_name"]["default"] = FUNCTION
    properties["start_timeout_seconds"]["default"] = 60
    api.create_work_pool(s.WorkPoolCreate(name=POOL, type="lambda", base_job_template=template))
    return api.create_deployment(
        s.DeploymentCreate(
            name="trivial", flow_name="trivial", entrypoint="flows.py:trivial", pool_name=POOL
        )
    )


def phases(api, run_id: str) -> dict[str, float]:
    """Milliseconds from creation to Completed, and of each step on the way."""
    history = api.read_flow_run_history(run_id)
    at = {st.type.value: st.timestamp for st in history.states}
    created = history.run.created

    def ms(start, end) -> float:
        return (end - start).total_seconds() * 1000

    return {
        "created_to_completed": ms(created, at["COMPLETED"]),
        "created_to_pending": ms(created, at["PENDING"]),
        "pending_to_running": ms(at["PENDING"], at["RUNNING"]),
        "running_to_completed": ms(at["RUNNING"], at["COMPLETED"]),
    }


def wait_final(api, run_ids: list[str], timeout: float) -> dict[str, str]:
    """Each run's final state (waiting at most ``timeout`` s), with its message when not
    Completed: under heavy load the emulation itself fails some invokes."""
    deadline = time.monotonic() + timeout
    pending, finals = set(run_ids), {}
    while pending and time.monotonic() < deadline:
        for run_id in list(pending):
            run = api.read_flow_run(run_id)
            if run.state.type.is_terminal:
                finals[run_id] = f"{run.state.type.value}: {run.state.message or ''}".rstrip(": ")
                pending.discard(run_id)
        time.sleep(0.05)
    if pending:
        raise SystemExit(f"{len(pending)} runs did not finish within {timeout}s")
    return finals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--batch", type=int, default=60)
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()

    engine = DockerEngine().start()
    try:
        engine.ensure_base_image()
        engine.build_test_image()
        with MotoLambda(engine, Path(tempfile.mkdtemp(prefix="flowyard-moto-"))) as moto:
            with embedded_server() as (server, flows_dir), server.client() as api:
                moto.create_function(FUNCTION, code_zip(flows_dir), MemorySize=256)
                figures = measure(api, server.url, flows_dir, moto, args)
    finally:
        engine.stop()
    write_results("lambda_runs", figures)


def measure(api, url: str, flows_dir: Path, moto: MotoLambda, args) -> dict[str, object]:
    dep = deploy(api, moto)
    worker = WorkerProcess(url, POOL, flows_dir, "--type", "lambda", "--limit", str(args.limit))
    try:
        warm = api.run_deployment(dep.id, s.DeploymentRunRequest())
        wait_final(api, [warm.id], 400)
        steps: dict[str, list[float]] = {}
        for _ in range(args.sequential):
            run = api.run_deployment(dep.id, s.DeploymentRunRequest())
            if wait_final(api, [run.id], 400)[run.id] != "COMPLETED":
                continue
            for name, value in phases(api, run.id).items():
                steps.setdefault(name, []).append(value)
        rss_idle = rss_mib([worker.pid])
        started = time.monotonic()
        ids = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(args.batch)]
        finals = wait_final(api, ids, 1800)
        wall = time.monotonic() - started
        failed = [run_id for run_id in ids if finals[run_id] != "COMPLETED"]
        failure_logs = [e.message[:300] for e in api.read_logs(failed[0])][-5:] if failed else []
        rss_after = rss_mib([worker.pid])
    finally:
        worker.stop(timeout=60)
    latencies = steps["created_to_completed"]
    return {
        "created_to_completed_ms": {**summary(latencies), "p50": percentile(latencies, 50)},
        "step_medians_ms": {name: round(statistics.median(v), 1) for name, v in steps.items()},
        "load_average_1m": round(os.getloadavg()[0], 2),
        "batch": {
            "runs": args.batch,
            "limit": args.limit,
            "wall_seconds": round(wall, 2),
            "invocations_per_second": round(args.batch / wall, 2),
            "completed": sum(state == "COMPLETED" for state in finals.values()),
            "not_completed": sorted({s for s in finals.values() if s != "COMPLETED"})[:3],
            "first_failure_logs": failure_logs,
        },
        "worker_rss_mib": {"idle": round(rss_idle, 1), "after_batch": round(rss_after, 1)},
        "emulation": "moto (synchronous Event invokes), one container per invocation",
    }


if __name__ == "__main__":
    main()
