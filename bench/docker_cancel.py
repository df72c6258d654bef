"""How long a cancel takes to stop a Docker run, with the default heartbeats (10 s).

For each of ``--runs`` runs of a flow that sleeps: wait until it is Running, cancel it,
then time (from the cancel request) the run's Cancelled state (the server's timestamp)
and its container having exited. The worker's cancel watch reads its runs' states every
second; without it, the cancel waited for the worker's or the engine's next heartbeat.
Starts a private dockerd and builds the test image the way the tests do.

    python bench/docker_cancel.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from common import embedded_server, percentile, summary, write_results
from docker_runs import readable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.docker_engine import TEST_IMAGE, DockerEngine  # noqa: E402

from flowyard import schemas as s  # noqa: E402
from flowyard.cli.processes import WorkerProcess  # noqa: E402
from flowyard.workers.docker import DockerWorker  # noqa: E402

POOL = "docker-cancel-bench"


def deploy(api, flows_dir: Path) -> s.Deployment:
    template = DockerWorker.default_base_job_template()
    api.create_work_pool(s.WorkPoolCreate(name=POOL, type="docker", base_job_template=template))
    variables = {
        "image": TEST_IMAGE,
        "image_pull_policy": "never",
        "volumes": [f"{flows_dir}:{flows_dir}:ro"],
        "auto_remove": False,
    }
    return api.create_deployment(
        s.DeploymentCreate(
            name="hold",
            flow_name="hold",
            entrypoint="flows.py:hold",
            path=str(flows_dir),
            pool_name=POOL,
            parameters={"seconds": 600},
            job_variables=variables,
        )
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit(f"{what} did not happen within {timeout}s")


def one_cancel(api, client, dep: s.Deployment) -> tuple[float, float, str]:
    """Milliseconds from the cancel to Cancelled and to the container's exit; the message."""
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    wait_for(lambda: api.read_flow_run(run.id).state.type.value == "RUNNING", 120, "Running")
    container = client.containers.get(
        wait_for(lambda: api.read_flow_run(run.id).infrastructure_id, 30, "id")
    )
    asked_at, asked = datetime.now(UTC), time.monotonic()
    api.cancel_flow_run(run.id)
    wait_for(lambda: container.reload() or container.status == "exited", 60, "the exit")
    exited = (time.monotonic() - asked) * 1000
    done = wait_for(
        lambda: (r := api.read_flow_run(run.id)).state.type.value == "CANCELLED" and r,
        60,
        "Cancelled",
    )
    container.remove(force=True)
    cancelled = (done.state.timestamp - asked_at).total_seconds() * 1000
    return cancelled, exited, done.state.message or ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    engine = DockerEngine().start()
    try:
        engine.ensure_base_image()
        engine.build_test_image()
        with embedded_server() as (server, flows_dir), server.client() as api:
            readable(flows_dir)
            dep = deploy(api, flows_dir)
            env = {**os.environ, "DOCKER_HOST": engine.url}
            worker = WorkerProcess(server.url, POOL, flows_dir, "--type", "docker", env=env)
            client = engine.client()
            try:
                results = [one_cancel(api, client, dep) for _ in range(args.runs)]
            finally:
                worker.stop(timeout=60)
                client.close()
    finally:
        engine.stop()
    to_cancelled = [r[0] for r in results]
    to_exit = [r[1] for r in results]
    by_engine_alone = sum("the engine stopped itself" in r[2] for r in results)
    write_results(
        "docker_cancel",
        {
            "heartbeat_seconds": {"worker": 10, "engine": 10},
            "cancel_to_cancelled_ms": {
                **summary(to_cancelled),
                "p50": percentile(to_cancelled, 50),
            },
            "cancel_to_container_exited_ms": {**summary(to_exit), "p50": percentile(to_exit, 50)},
            "stopped_by_the_engine_alone": by_engine_alone,
        },
    )


if __name__ == "__main__":
    main()
