"""The Kubernetes worker when things go wrong around a running Job: watches expire, the API
server restarts, a run is cancelled, a worker dies and another takes its Jobs over."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.states import StateType
from tests.e2e.conftest import FAST, deploy_flow
from tests.helpers.runs import completed, has_line, job_of, log_lines, wait_for_state
from tests.kube.fixtures import (  # noqa: F401 - fixtures
    deploy_k8s,
    k8s_pool,
    kube_api,
    kubeconfig,
    start_k8s_worker,
)
from tests.kube.runtimes import ProcessRuntime
from tests.kube.server import KubeApiServer
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)

Deploy = Callable[..., s.Deployment]
StartWorker = Callable[..., WorkerProcess]


def running_with_pod(api: FlowyardClient, kube: KubeApiServer, run_id: str) -> None:
    """Wait until the run is Running and its pod's first line reached the run's logs."""
    wait_for_state(api, run_id, "RUNNING", timeout=90)
    wait_until(lambda: has_line(api, run_id, "sleeping"), timeout=60, message="no pod output")


class TestWatchesSurvive:
    def test_410_gone_mid_watch_is_no_crash(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
    ):
        """Compacted history and broken watches: the worker lists again; the run completes."""
        dep = deploy_k8s("sleeper", parameters={"seconds": 6})
        worker = start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        running_with_pod(api, kube_api, run.id)
        lists_before = kube_api.requests["GET jobs"]
        kube_api.compact()
        kube_api.gone_next_watches(1)
        assert kube_api.close_watches() >= 1
        completed(api, run.id)
        assert kube_api.requests["GET jobs"] > lists_before
        wait_until(lambda: "watch_expired" in worker.output.read_text(), message="no 410 seen")
        assert log_lines(api, run.id).count("sleeping") == 1

    def test_api_server_restart_mid_run_is_no_crash(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
    ):
        """Connections refused for 4 s while the pod runs: the worker waits it out, resumes
        its watches and logs (no line twice), and the run completes."""
        dep = deploy_k8s("sleeper", parameters={"seconds": 8})
        worker = start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        running_with_pod(api, kube_api, run.id)
        kube_api.restart(down_seconds=4).join(30)
        completed(api, run.id)
        assert "watch_interrupted" in worker.output.read_text()
        assert log_lines(api, run.id).count("sleeping") == 1


class TestCreateRetried:
    def test_job_creation_refused_twice_is_tried_again(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
    ):
        """Two 503 answers to the Job's creation: tried again, one Job made, run Completed."""
        kube_api.refuse_next_creates(2)
        dep = deploy_k8s("hello")
        worker = start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        completed(api, run.id)
        assert kube_api.requests["POST jobs"] == 3 and len(kube_api.received) == 1
        assert worker.output.read_text().count("job_create_retry") == 2


class TestCancel:
    def test_cancel_deletes_the_job_in_the_foreground(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
    ):
        """Cancelling a running run deletes its Job (foreground, pods first): Cancelled."""
        dep = deploy_k8s("sleeper")
        start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        running_with_pod(api, kube_api, run.id)
        name = job_of(kube_api, run.id)["metadata"]["name"]  # type: ignore[index]
        api.cancel_flow_run(run.id)
        assert wait_for_state(api, run.id, "CANCELLED", "CRASHED", timeout=60) == "CANCELLED"
        # the engine in the pod may report Cancelled on its SIGTERM before the deletion ends
        wait_until(lambda: job_of(kube_api, run.id) is None, timeout=60, message="Job not deleted")
        assert ("default", name, "Foreground") in kube_api.kubelet.deletions
        pods, _ = kube_api.store.list("pods", "default", {"job-name": name}, {})
        assert pods == []


class TestAdoption:
    def test_job_of_a_dead_worker_is_adopted_then_cleaned_up(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
    ):
        """A worker killed mid-run: the next one adopts its Job, watches it to the end, then
        deletes it once the run is final."""
        fast_beats = {"FLOWYARD_RUN_HEARTBEAT_SECONDS": "1"}  # the tests' lease is 4 s
        dep = deploy_k8s("sleeper", parameters={"seconds": 20}, env=fast_beats)
        first = start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        running_with_pod(api, kube_api, run.id)
        first.stop(sig=signal.SIGKILL)
        second = start_k8s_worker()
        wait_until(
            lambda: '"action": "adopt"' in second.output.read_text(),
            timeout=60,
            message="the second worker never adopted the Job",
        )
        completed(api, run.id)
        wait_until(
            lambda: job_of(kube_api, run.id) is None,
            timeout=60,
            message="the finished Job of the dead worker was not cleaned up",
        )
        assert '"action": "clean_up"' in second.output.read_text()

    def test_stopped_worker_leaves_its_jobs_running_for_the_next(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
    ):
        """SIGTERM with a run in flight: the worker exits, its Job runs on, and the next
        worker adopts it; the run completes."""
        fast_beats = {"FLOWYARD_RUN_HEARTBEAT_SECONDS": "1"}
        dep = deploy_k8s("sleeper", parameters={"seconds": 20}, env=fast_beats)
        first = start_k8s_worker("--grace-seconds", "1")
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        running_with_pod(api, kube_api, run.id)
        assert first.stop(timeout=30) == 0
        assert "run_left_running" in first.output.read_text()
        assert job_of(kube_api, run.id) is not None
        assert wait_for_state(api, run.id, "RUNNING") == "RUNNING"
        second = start_k8s_worker()
        completed(api, run.id)
        assert '"action": "adopt"' in second.output.read_text()

    def test_job_that_ended_unwatched_is_reported_crashed(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
        k8s_pool: str,  # noqa: F811
    ):
        """A Job that failed while its worker was gone: the next worker reports its Running
        run Crashed with the Job's reason."""
        dep = deploy_k8s("hello")
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        claimed = api.claim(k8s_pool, s.ClaimRequest(worker_name="dead-worker", wait=10))
        token = claimed[0].token
        api.set_flow_run_state(run.id, s.StateChange(type=StateType.RUNNING, token=token))
        kube_api.store.create("jobs", failed_job(k8s_pool, run.id, token))
        beating = threading.Event()
        beats = threading.Thread(target=keep_alive, args=(api, run.id, token, beating))
        beats.start()  # the lease stays alive, as a running engine would keep it
        try:
            start_k8s_worker()
            assert wait_for_state(api, run.id, "CRASHED", "COMPLETED", timeout=60) == "CRASHED"
        finally:
            beating.set()
            beats.join()
        message = api.read_flow_run(run.id).state.message or ""
        assert "BackoffLimitExceeded" in message and "no worker watched it" in message, message


class TestWithAWorkerKey:
    """What the docs recommend, a worker key scoped to the pool (pods as local processes)."""

    def test_a_pool_scoped_key_settles_a_dead_workers_jobs(
        self,
        admin: FlowyardClient,
        locked_server: ServerProcess,
        docker_flows_dir: Path,
        tmp_path: Path,
    ):
        """The worker reads the pool's workers and the Jobs' runs, reports the unwatched
        failed Job's run Crashed and deletes the Job whose run is gone (its 404 by id)."""
        pool, key = scoped_pool(admin)
        dep = deploy_flow(admin, pool, docker_flows_dir, "hello")
        run = admin.run_deployment(dep.id, s.DeploymentRunRequest())
        token = admin.claim(pool, s.ClaimRequest(worker_name="dead-worker", wait=10))[0].token
        admin.set_flow_run_state(run.id, s.StateChange(type=StateType.RUNNING, token=token))
        kube = KubeApiServer(ProcessRuntime()).start()
        gone = failed_job(pool, str(uuid.uuid4()), "t")
        gone["metadata"]["name"] = "fy-gone-run"
        kube.store.create("jobs", failed_job(pool, run.id, token))
        kube.store.create("jobs", gone)
        beating = threading.Event()
        beats = threading.Thread(target=keep_alive, args=(admin, run.id, token, beating))
        beats.start()
        worker = keyed_worker(locked_server, pool, key, kube, tmp_path)
        try:
            assert wait_for_state(admin, run.id, "CRASHED", "COMPLETED", timeout=60) == "CRASHED"
            wait_until(
                lambda: kube.store.get("jobs", "default", "fy-gone-run") is None,
                timeout=30,
                message="the Job of the deleted run was not cleaned up",
            )
        finally:
            beating.set()
            beats.join()
            worker.stop(timeout=30)
            kube.stop()
        assert "adoption_failed" not in worker.output.read_text()

    def test_a_pool_scoped_key_adopts_a_dead_workers_running_job(
        self,
        admin: FlowyardClient,
        locked_server: ServerProcess,
        docker_flows_dir: Path,
        tmp_path: Path,
    ):
        """A worker killed mid-run: the next one, with the same scoped key, adopts the Job
        (reads its run and deployment) and acts for it: a cancel deletes the Job and the
        run ends Cancelled (a flow that sleeps on: no race with its own end)."""
        pool, key = scoped_pool(admin)
        env = {
            "FLOWYARD_RUN_HEARTBEAT_SECONDS": "1",  # the tests' lease is 4 s
            "PYTHONDONTWRITEBYTECODE": "1",  # a local pod leaves the shared flows folder as is
        }
        dep = deploy_flow(
            admin, pool, docker_flows_dir, "sleeper",
            parameters={"seconds": 600}, job_variables={"env": env},
        )  # fmt: skip
        kube = KubeApiServer(ProcessRuntime()).start()
        first = keyed_worker(locked_server, pool, key, kube, tmp_path)
        second = None
        try:
            run = admin.run_deployment(dep.id, s.DeploymentRunRequest())
            running_with_pod(admin, kube, run.id)
            first.stop(sig=signal.SIGKILL)
            second = keyed_worker(locked_server, pool, key, kube, tmp_path)
            wait_until(
                lambda: '"action": "adopt"' in second.output.read_text(),
                timeout=60,
                message="the second worker never adopted the Job",
            )
            admin.cancel_flow_run(run.id)
            assert wait_for_state(admin, run.id, "CANCELLED", "CRASHED", timeout=60) == "CANCELLED"
            wait_until(lambda: job_of(kube, run.id) is None, timeout=60, message="Job kept")
        finally:
            for worker in (first, second):
                if worker is not None:
                    worker.stop(timeout=30)
            kube.stop()
        assert "adoption_failed" not in second.output.read_text()


def scoped_pool(admin: FlowyardClient) -> tuple[str, str]:
    """A new kubernetes pool and a worker key for it alone."""
    from flowyard.workers.kubernetes import KubernetesWorker

    pool = f"k8s-key-{uuid.uuid4().hex[:8]}"
    template = KubernetesWorker.default_base_job_template()
    admin.create_work_pool(
        s.WorkPoolCreate(name=pool, type="kubernetes", base_job_template=template)
    )
    return pool, admin.create_api_key(s.ApiKeyCreate(name=pool, pools=[pool])).key


def keyed_worker(
    server: ServerProcess, pool: str, key: str, kube: KubeApiServer, folder: Path
) -> WorkerProcess:
    config = kube.write_kubeconfig(folder / "kubeconfig")
    env = {**FAST, "KUBECONFIG": str(config), "FLOWYARD_API_KEY": key}
    return WorkerProcess(server.url, pool, folder, "--type", "kubernetes", env=env)


def failed_job(pool: str, run_id: str, token: str) -> dict:
    """A Job as a worker named ``dead-worker`` would have left it, failed."""
    worker = {"flowyard.io/worker": "dead-worker"}
    labels = {"flowyard.io/pool": pool, "flowyard.io/flow-run-id": run_id, **worker}
    container = {
        "name": "flowyard",
        "image": "flowyard-test:latest",
        "env": [{"name": "FLOWYARD_CLAIM_TOKEN", "value": token}],
    }
    condition = {
        "type": "Failed",
        "status": "True",
        "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"fy-orphan-{run_id[:8]}", "labels": labels, "annotations": worker},
        "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}},
        "status": {"failed": 1, "conditions": [condition]},
    }


def keep_alive(api: FlowyardClient, run_id: str, token: str, done: threading.Event) -> None:
    while not done.wait(0.5):
        api.run_heartbeat(run_id, token)
