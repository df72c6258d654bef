"""The Kubernetes worker against the emulated API server (tests/kube), one Job per run.

- 200 trivial runs through a worker with ``--limit 50``: wall time from the first
  submission to the last Completed (runs/s submitted and watched to the end), and the
  API-server requests per run (counted by the emulator, all kinds: creates, lists,
  watches, log streams, the worker's adoption scans);
- ``--limit`` runs (50) that each hold for 20 s: the worker's RSS with 50 Jobs watched.

No real cluster here. By default each pod really runs as a container of the test image
on a private dockerd (host network), started by the emulated kubelet, as in the tests
(``FLOWYARD_TEST_DOCKER_DIR`` picks the engine's folder); ``--pods process`` runs each
pod's command as a local process instead (the emulator's ``ProcessRuntime``: the engine
still really runs the flow, without a container), for machines without dockerd.

    python bench/kubernetes_jobs.py [--runs 200] [--limit 50] [--pods docker|process]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import embedded_server, rss_mib, write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.kube import DockerRuntime, KubeApiServer, ProcessRuntime  # noqa: E402

from flowyard import schemas as s  # noqa: E402
from flowyard.cli.processes import WorkerProcess  # noqa: E402
from flowyard.workers.kubernetes import KubernetesWorker  # noqa: E402

POOL = "k8s-bench"


def deploy(api: Any, flows_dir: Path, function: str, variables: dict[str, Any]) -> s.Deployment:
    return api.create_deployment(
        s.DeploymentCreate(
            name=function,
            flow_name=function,
            entrypoint=f"flows.py:{function}",
            path=str(flows_dir),
            pool_name=POOL,
            job_variables=variables,
        )
    )


def job_variables(pods: str, flows_dir: Path) -> dict[str, Any]:
    if pods == "process":
        return {"image": "local-process"}
    from tests.docker_engine import TEST_IMAGE

    flows_dir.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    (flows_dir / "flows.py").chmod(0o644)
    return {
        "image": TEST_IMAGE,
        "image_pull_policy": "Never",
        "volumes": [{"name": "flows", "hostPath": {"path": str(flows_dir)}}],
        "volume_mounts": [{"name": "flows", "mountPath": str(flows_dir), "readOnly": True}],
    }


def wait_final(api: Any, run_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    while pending and time.monotonic() < deadline:
        for run in api.list_flow_runs(pool=POOL, limit=1000):
            if run.id in pending and run.state.type.is_terminal:
                if run.state.type.value != "COMPLETED":
                    raise SystemExit(f"run {run.id} ended {run.state.type.value}")
                pending.discard(run.id)
        time.sleep(0.2)
    if pending:
        raise SystemExit(f"{len(pending)} runs did not finish within {timeout}s")


def active_jobs(kube: KubeApiServer) -> int:
    """Jobs created and not finished (pending or running)."""
    jobs, _ = kube.store.list("jobs", None, {}, {})
    return sum(1 for job in jobs if not (job.get("status") or {}).get("conditions"))


def sample(pid: int, kube: KubeApiServer, stop: threading.Event, found: dict[str, float]) -> None:
    """The worker's RSS: the peak, and the largest seen at the most Jobs active at once."""
    best = (0, 0.0)
    while not stop.wait(0.2):
        rss, active = rss_mib([pid]), active_jobs(kube)
        found["peak"] = max(found.get("peak", 0.0), rss)
        best = max(best, (active, rss))
        found["max_active"], found["at_max_active"] = best


def submit(api: Any, deployment: s.Deployment, count: int, **parameters: Any) -> list[str]:
    body = s.DeploymentRunRequest(parameters=parameters)
    return [api.run_deployment(deployment.id, body).id for _ in range(count)]


@contextlib.contextmanager
def emulator(pods: str) -> Any:
    if pods == "process":
        kube = KubeApiServer(ProcessRuntime()).start()
        try:
            yield kube
        finally:
            kube.stop()
        return
    from tests.docker_engine import DockerEngine

    engine = DockerEngine().start()
    try:
        engine.ensure_base_image()
        engine.build_test_image()
        with contextlib.closing(engine.client()) as docker:
            kube = KubeApiServer(DockerRuntime(docker)).start()
            try:
                yield kube
            finally:
                kube.stop()
    finally:
        engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--pods", choices=["docker", "process"], default="docker")
    args = parser.parse_args()

    with emulator(args.pods) as kube, embedded_server() as (server, flows_dir):
        kubeconfig = kube.write_kubeconfig(flows_dir / "kubeconfig")
        with server.client() as api:
            template = KubernetesWorker.default_base_job_template()
            api.create_work_pool(
                s.WorkPoolCreate(name=POOL, type="kubernetes", base_job_template=template)
            )
            variables = job_variables(args.pods, flows_dir)
            trivial = deploy(api, flows_dir, "trivial", variables)
            hold = deploy(api, flows_dir, "hold", variables)
            env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
            worker = WorkerProcess(
                server.url, POOL, flows_dir, "--type", "kubernetes", "--limit", str(args.limit),
                env=env,
            )  # fmt: skip
            try:
                wait_final(api, submit(api, trivial, 1), 120)  # warm-up: imports, page cache
                rss_idle = rss_mib([worker.pid])
                before = Counter(kube.requests)
                started = time.monotonic()
                wait_final(api, submit(api, trivial, args.runs), 1800)
                wall = time.monotonic() - started
                by_kind = dict(Counter(kube.requests) - before)
                requests = sum(by_kind.values())
                stop, found = threading.Event(), {}
                sampler = threading.Thread(target=sample, args=(worker.pid, kube, stop, found))
                sampler.start()
                wait_final(api, submit(api, hold, args.limit, seconds=20.0), 600)
                stop.set()
                sampler.join()
            finally:
                worker.stop(timeout=60)
    write_results(
        "kubernetes_jobs",
        {
            "pods": (
                "local processes (emulator ProcessRuntime): the engine really runs each flow, "
                "without a container start"
                if args.pods == "process"
                else "Docker containers of the test image (emulator DockerRuntime)"
            ),
            "batch": {
                "runs": args.runs,
                "limit": args.limit,
                "wall_seconds": round(wall, 2),
                "runs_per_second": round(args.runs / wall, 2),
                "api_requests_per_run": round(requests / args.runs, 2),
            },
            "api_requests_by_kind_during_batch": by_kind,
            "worker_rss_mib": {
                "idle": round(rss_idle, 1),
                "at_most_active_jobs": round(found.get("at_max_active", 0.0), 1),
                "most_active_jobs_seen": int(found.get("max_active", 0)),
                "peak_during_hold": round(found.get("peak", 0.0), 1),
            },
        },
    )


if __name__ == "__main__":
    main()
