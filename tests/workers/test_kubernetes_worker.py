"""The Kubernetes worker against the emulated API server, its pods real containers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.blocks import KubernetesClusterConfig
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from tests.docker_engine import TEST_IMAGE
from tests.e2e.conftest import FAST, deploy_flow
from tests.helpers.counting_proxy import CountingProxy
from tests.helpers.runs import completed, has_line, job_of, log_lines, wait_for_state
from tests.kube.fixtures import (  # noqa: F401 - fixtures
    create_secret,
    deploy_k8s,
    flows_volume,
    k8s_pool,
    kube_api,
    kubeconfig,
    start_k8s_worker,
)
from tests.kube.server import KubeApiServer
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)

Deploy = Callable[..., s.Deployment]
StartWorker = Callable[..., WorkerProcess]


class TestJobRuns:
    def test_flow_runs_as_a_job_and_completes_with_its_logs(
        self,
        api: FlowyardClient,
        server: ServerProcess,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
        k8s_pool: str,  # noqa: F811
    ):
        """A deployed flow runs as a Job's pod, completes, and its pod's output is in its logs;
        the Job's name is reported to the server in one POST."""
        dep = deploy_k8s("hello")
        with CountingProxy(server.url) as proxy:
            worker = start_k8s_worker(api_url=proxy.url)
            run = api.run_deployment(dep.id, s.DeploymentRunRequest(parameters={"n": 21}))
            completed(api, run.id)
            worker.stop(timeout=30)
        assert proxy.count("POST", f"/api/flow_runs/{run.id}/infrastructure") == 1
        job = job_of(kube_api, run.id)
        assert job is not None
        name = job["metadata"]["name"]
        assert api.read_flow_run(run.id).infrastructure_id == f"default:{name}"
        labels = job["metadata"]["labels"]
        assert labels["flowyard.io/pool"] == k8s_pool
        assert labels["flowyard.io/deployment-id"] == dep.id
        assert job["spec"]["backoffLimit"] == 0
        lines = wait_until(
            lambda: has_line(api, run.id, "printed on stdout"),
            timeout=30,
            message="the pod's stdout never reached the run's logs",
        )
        assert any(line.startswith("hello from a container, uid 10001") for line in lines)
        assert kube_api.rejected == []

    def test_custom_job_manifest_replaces_the_default(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
        docker_flows_dir: Path,
    ):
        """A job_manifest is sent as given, plus the Job's name, Flowyard's labels, the engine."""
        from tests.docker_engine import TEST_IMAGE

        volume = flows_volume(docker_flows_dir)
        manifest = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"labels": {"team": "data"}},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "volumes": volume["volumes"],
                        "containers": [
                            {
                                "name": "main",
                                "image": TEST_IMAGE,
                                "imagePullPolicy": "Never",
                                "env": [{"name": "EXTRA", "value": "yes"}],
                                "volumeMounts": volume["volume_mounts"],
                            }
                        ],
                    }
                },
            },
        }
        dep = deploy_k8s("hello", job_manifest=manifest)
        start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        completed(api, run.id)
        (sent,) = [m for m in kube_api.received if m["metadata"]["labels"].get("team") == "data"]
        assert sent["metadata"]["labels"]["flowyard.io/flow-run-id"] == run.id
        (container,) = sent["spec"]["template"]["spec"]["containers"]
        env = {e["name"] for e in container["env"]}
        assert {"EXTRA", "FLOWYARD_FLOW_RUN_ID", "FLOWYARD_CLAIM_TOKEN"} <= env
        assert container["command"] == ["python", "-m", "flowyard.engine", run.id]

    def test_cluster_config_block_replaces_the_default_chain(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
        tmp_path: Path,
    ):
        """A kubernetes-cluster-config block (kubeconfig contents) reaches the cluster; the
        kubeconfig's token is in no log."""
        token = "tok-" + "5e1d0c3b9a"  # assembled, so grepping this file finds nothing
        text = kube_api.write_kubeconfig(tmp_path / "block-kubeconfig", token).read_text()
        KubernetesClusterConfig(kubeconfig=text).save("emulator", client=api)
        dep = deploy_k8s("hello", cluster_config="{{ block.kubernetes-cluster-config/emulator }}")
        home = tmp_path / "home"
        home.mkdir()
        worker = start_k8s_worker(env={"KUBECONFIG": str(tmp_path / "none"), "HOME": str(home)})
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        completed(api, run.id)
        worker.stop()
        assert token not in worker.output.read_text()
        assert token not in repr(log_lines(api, run.id))


class TestJobFaults:
    def test_image_pull_error_is_crashed_with_the_reason(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
    ):
        """A pod stuck on ErrImagePull ends the run Crashed after pod_watch_timeout_seconds."""
        dep = deploy_k8s("hello", image="flowyard-test:no-such-tag", pod_watch_timeout_seconds=4)
        start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert wait_for_state(api, run.id, "CRASHED", "COMPLETED", timeout=60) == "CRASHED"
        message = api.read_flow_run(run.id).state.message or ""
        assert "did not start within 4s" in message and "ImagePull" in message, message
        wait_until(
            lambda: has_line(api, run.id, "pod pending: ErrImagePull"),
            message="the pull error never reached the run's logs",
        )
        wait_until(lambda: job_of(kube_api, run.id) is None, message="the Job was not deleted")

    def test_unschedulable_pod_is_crashed_with_the_reason(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
    ):
        """A pod no node can take reports Unschedulable in the logs, then the run Crashes."""
        dep = deploy_k8s("hello", node_selector={"disk": "ssd"}, pod_watch_timeout_seconds=3)
        start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert wait_for_state(api, run.id, "CRASHED", "COMPLETED", timeout=60) == "CRASHED"
        # log lines are shipped in batches, apart from the state: they may come just after it
        wait_until(lambda: has_line(api, run.id, "pod pending: Unschedulable: 0/1 nodes"))

    def test_pod_failing_without_a_final_state_is_crashed(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
    ):
        """A pod that exits 3 before the engine reports anything: Crashed, saying so."""
        dep = deploy_k8s("hello", command="python -c 'import sys; print(\"bye\"); sys.exit(3)'")
        start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert wait_for_state(api, run.id, "CRASHED", "COMPLETED", timeout=60) == "CRASHED"
        message = api.read_flow_run(run.id).state.message or ""
        assert "BackoffLimitExceeded" in message and "exited with code 3" in message, message
        wait_until(lambda: has_line(api, run.id, "bye"), message="the pod's output never came")

    def test_invalid_job_variables_crash_the_run_and_send_nothing(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
    ):
        """A label value Kubernetes would refuse: Crashed with the field named; no Job sent."""
        dep = deploy_k8s("hello", labels={"team": "data science"})
        start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert wait_for_state(api, run.id, "CRASHED", "COMPLETED", timeout=60) == "CRASHED"
        message = api.read_flow_run(run.id).state.message or ""
        assert "metadata.labels[team]" in message and "'data science'" in message, message
        assert kube_api.received == []

    def test_manifest_the_client_refuses_is_crashed_with_the_reason(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
    ):
        """A custom manifest with a field batch/v1 lacks: refused, run Crashed, nothing sent."""
        manifest = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {},
            "spec": {
                "retries": 3,
                "template": {"spec": {"containers": [{"name": "main", "image": "x"}]}},
            },
        }
        dep = deploy_k8s("hello", job_manifest=manifest)
        start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert wait_for_state(api, run.id, "CRASHED", "COMPLETED", timeout=60) == "CRASHED"
        message = api.read_flow_run(run.id).state.message or ""
        assert "spec.retries: Extra inputs are not permitted" in message, message
        assert kube_api.received == []


def keyed_pool(admin: FlowyardClient, flows_dir: Path) -> tuple[str, str, s.Deployment]:
    """A kubernetes pool on the locked server, a worker key for it, and a deployment."""
    from flowyard.workers.kubernetes import KubernetesWorker

    pool = f"k8s-{uuid.uuid4().hex[:8]}"
    template = KubernetesWorker.default_base_job_template()
    admin.create_work_pool(
        s.WorkPoolCreate(name=pool, type="kubernetes", base_job_template=template)
    )
    key = admin.create_api_key(s.ApiKeyCreate(name=pool, pools=[pool])).key
    variables = {"image": TEST_IMAGE, "image_pull_policy": "Never", **flows_volume(flows_dir)}
    dep = deploy_flow(admin, pool, flows_dir, "hello", job_variables=variables)
    return pool, key, dep


def flow_env(manifest: dict) -> dict[str, dict]:
    """The flow container's variables by name, each as sent (``value`` or ``valueFrom``)."""
    containers = manifest["spec"]["template"]["spec"]["containers"]
    container = next((c for c in containers if c["name"] == "flowyard"), containers[0])
    return {e["name"]: e for e in container["env"]}


def job_with_env(flows_dir: Path, env: list[dict]) -> dict:
    """A job_manifest running the test image with the flows mounted and ``env`` added."""
    volume = flows_volume(flows_dir)
    container = {
        "name": "flowyard",
        "image": TEST_IMAGE,
        "imagePullPolicy": "Never",
        "env": env,
        "volumeMounts": volume["volume_mounts"],
    }
    pod = {"restartPolicy": "Never", "volumes": volume["volumes"], "containers": [container]}
    spec = {"backoffLimit": 0, "template": {"spec": pod}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {}, "spec": spec}


class TestRunToken:
    def test_job_carries_the_run_token_never_the_worker_key(
        self,
        admin: FlowyardClient,
        locked_server: ServerProcess,
        kube_api: KubeApiServer,  # noqa: F811
        kubeconfig: Path,  # noqa: F811
        docker_flows_dir: Path,
        tmp_path: Path,
    ):
        """Against a server with keys, the pod's FLOWYARD_API_KEY is the run's token (a plain
        value), the run completes with it, and the worker's key is in nothing the API server
        received; the token from the spec may read its run but, the run final, write nothing."""
        pool, key, dep = keyed_pool(admin, docker_flows_dir)
        env = {**FAST, "KUBECONFIG": str(kubeconfig), "FLOWYARD_API_KEY": key}
        worker = WorkerProcess(locked_server.url, pool, tmp_path, "--type", "kubernetes", env=env)
        try:
            run = admin.run_deployment(dep.id, s.DeploymentRunRequest())
            completed(admin, run.id)
        finally:
            worker.stop(timeout=30)
        (sent,) = [
            m for m in kube_api.received if m["metadata"]["labels"].get("flowyard.io/pool") == pool
        ]
        variable = flow_env(sent)["FLOWYARD_API_KEY"]
        assert set(variable) == {"name", "value"}, variable
        token = variable["value"]
        assert token.startswith("fyrt_") and token != key
        assert kube_api.wire and all(key not in request for request in kube_api.wire)
        assert key not in worker.output.read_text()
        with FlowyardClient(locked_server.url, token, retry_seconds=0) as as_run:
            assert as_run.read_flow_run(run.id).id == run.id
            line = s.LogCreate(flow_run_id=run.id, message="late", timestamp=datetime.now(UTC))
            with pytest.raises(ApiError) as refused:
                as_run.create_logs([line])
        assert refused.value.status_code == 403


class TestUserSecrets:
    def test_user_variable_from_a_secret_reaches_the_flow(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        kube_api: KubeApiServer,  # noqa: F811
        kubeconfig: Path,  # noqa: F811
        docker_flows_dir: Path,
    ):
        """A job_manifest variable read from a Secret (secretKeyRef) is sent as given and
        the flow reads its value; the value is in no manifest sent."""
        create_secret(kubeconfig, "warehouse", {"token": "s3cr3t-" + "value"})
        ref = {"name": "warehouse", "key": "token"}
        variable = {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": ref}}
        manifest = job_with_env(docker_flows_dir, [variable])
        dep = deploy_k8s("uses_secret", job_manifest=manifest)
        start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        completed(api, run.id)
        wait_until(
            lambda: has_line(api, run.id, "token has 12 characters"),
            message="the flow never logged the Secret's length",
        )
        (sent,) = [
            m
            for m in kube_api.received
            if m["metadata"]["labels"].get("flowyard.io/flow-run-id") == run.id
        ]
        assert flow_env(sent)["API_TOKEN"] == variable
        assert "s3cr3t-value" not in json.dumps(kube_api.received)

    def test_missing_secret_keeps_the_pod_pending_and_crashes_the_run(
        self,
        api: FlowyardClient,
        deploy_k8s: Deploy,  # noqa: F811
        start_k8s_worker: StartWorker,  # noqa: F811
        docker_flows_dir: Path,
    ):
        """A variable from a Secret that does not exist: CreateContainerConfigError in the
        logs, then Crashed after pod_watch_timeout_seconds."""
        ref = {"name": "absent", "key": "token"}
        variable = {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": ref}}
        manifest = job_with_env(docker_flows_dir, [variable])
        dep = deploy_k8s("uses_secret", job_manifest=manifest, pod_watch_timeout_seconds=4)
        start_k8s_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert wait_for_state(api, run.id, "CRASHED", "COMPLETED", timeout=60) == "CRASHED"
        message = api.read_flow_run(run.id).state.message or ""
        assert 'CreateContainerConfigError: secret "absent" not found' in message, message
        wait_until(lambda: has_line(api, run.id, "pod pending: CreateContainerConfigError"))
