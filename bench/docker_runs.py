"""The Docker worker end to end: a trivial flow, each run a container on a local dockerd.

- created → Completed for one run at a time (20 runs, p50), from the server's own
  timestamps (the run's creation and its Completed state);
- 50 runs at once through a worker with ``--limit 10``: wall time from the first creation
  to the last Completed, and the worker's RSS (idle, and the peak while the batch runs).

Starts a private dockerd and builds the test image the way the tests do (cached per
machine in ~/.cache/flowyard/docker).

    python bench/docker_runs.py [--sequential 20] [--batch 50] [--limit 10]
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import threading
import time
from pathlib import Path

from common import embedded_server, percentile, rss_mib, summary, write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.docker_engine import TEST_IMAGE, DockerEngine  # noqa: E402

from flowyard import schemas as s  # noqa: E402
from flowyard.cli.processes import WorkerProcess  # noqa: E402
from flowyard.workers.docker import DockerWorker  # noqa: E402

POOL = "docker-bench"


def readable(folder: Path) -> None:
    """Let the image's unprivileged user read the flows (mkdtemp makes folders 0700)."""
    folder.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    (folder / "flows.py").chmod(0o644)


def deploy(api, flows_dir: Path) -> s.Deployment:
    template = DockerWorker.default_base_job_template()
    api.create_work_pool(s.WorkPoolCreate(name=POOL, type="docker", base_job_template=template))
    variables = {
        "image": TEST_IMAGE,
        "image_pull_policy": "never",
        "volumes": [f"{flows_dir}:{flows_dir}:ro"],
    }
    return api.create_deployment(
        s.DeploymentCreate(
            name="trivial",
            flow_name="trivial",
            entrypoint="flows.py:trivial",
            path=str(flows_dir),
            pool_name=POOL,
            job_variables=variables,
        )
    )


def created_to_completed(api, run_id: str) -> float:
    history = api.read_flow_run_history(run_id)
    done = next(st for st in history.states if st.type.value == "COMPLETED")
    return (done.timestamp - history.run.created).total_seconds() * 1000


def wait_final(api, run_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    while pending and time.monotonic() < deadline:
        for run_id in list(pending):
            state = api.read_flow_run(run_id).state.type
            if state.is_terminal:
                if state.value != "COMPLETED":
                    raise SystemExit(f"run {run_id} ended {state.value}")
                pending.discard(run_id)
        time.sleep(0.02)
    if pending:
        raise SystemExit(f"{len(pending)} runs did not finish within {timeout}s")


def peak_rss(pid: int, stop: threading.Event, peak: list[float]) -> None:
    while not stop.wait(0.1):
        peak[0] = max(peak[0], rss_mib([pid]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--limit", type=int, default=10)
    args = parser.parse_args()

    engine = DockerEngine().start()
    try:
        engine.ensure_base_image()
        engine.build_test_image()
        env = {"DOCKER_HOST": engine.url}
        with embedded_server() as (server, flows_dir), server.client() as api:
            readable(flows_dir)
            dep = deploy(api, flows_dir)
            worker = WorkerProcess(
                server.url,
                POOL,
                flows_dir,
                "--type",
                "docker",
                "--limit",
                str(args.limit),
                env={**os.environ, **env},
            )
            try:
                api.run_deployment(dep.id, s.DeploymentRunRequest())  # warm-up: page cache
                time.sleep(0.5)
                latencies = []
                for _ in range(args.sequential):
                    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
                    wait_final(api, [run.id], 120)
                    latencies.append(created_to_completed(api, run.id))
                rss_idle = rss_mib([worker.pid])
                stop, peak = threading.Event(), [rss_idle]
                sampler = threading.Thread(target=peak_rss, args=(worker.pid, stop, peak))
                sampler.start()
                started = time.monotonic()
                ids = [
                    api.run_deployment(dep.id, s.DeploymentRunRequest()).id
                    for _ in range(args.batch)
                ]
                wait_final(api, ids, 600)
                wall = time.monotonic() - started
                stop.set()
                sampler.join()
            finally:
                worker.stop(timeout=60)
    finally:
        engine.stop()
    write_results(
        "docker_runs",
        {
            "created_to_completed_ms": {**summary(latencies), "p50": percentile(latencies, 50)},
            "batch": {
                "runs": args.batch,
                "limit": args.limit,
                "wall_seconds": round(wall, 2),
                "runs_per_second": round(args.batch / wall, 2),
            },
            "worker_rss_mib": {"idle": round(rss_idle, 1), "peak_during_batch": round(peak[0], 1)},
        },
    )


if __name__ == "__main__":
    main()
