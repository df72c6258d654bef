"""The Kubernetes worker when the cluster refuses or kills a run's pod: admission (Pod
Security "restricted", a ResourceQuota, a LimitRange, a missing service account) Crashes
the run at once with Kubernetes' reason; an OOM-killed or evicted pod says so.

One emulated API server (pods as local processes) and one worker serve the module; each
case uses a namespace of its own, so that the admission rules of one do not touch another.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.states import StateType
from tests.e2e.conftest import FAST, deploy_flow, flows_dir  # noqa: F401 - fixtures
from tests.helpers.runs import completed, job_of, log_lines, wait_for_state
from tests.kube import KubeApiServer, ProcessRuntime
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

Launch = Callable[..., str]


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeApiServer]:
    server = KubeApiServer(ProcessRuntime()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[FlowyardClient]:
    with FlowyardClient(server.url) as client:
        yield client


@pytest.fixture(scope="module")
def launch(
    admin: FlowyardClient,
    server: ServerProcess,
    kube: KubeApiServer,
    flows_dir: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Launch]:
    """Start one kubernetes worker; ``launch(function, parameters, **job variables)`` runs
    a test flow through it and returns the run's id."""
    from flowyard.workers.kubernetes import KubernetesWorker

    pool = f"k8s-adm-{uuid.uuid4().hex[:8]}"
    template = KubernetesWorker.default_base_job_template()
    admin.create_work_pool(
        s.WorkPoolCreate(name=pool, type="kubernetes", base_job_template=template)
    )
    logs = tmp_path_factory.mktemp("k8s-admission")
    env = {**FAST, "KUBECONFIG": str(kube.write_kubeconfig(logs / "kubeconfig"))}
    worker = WorkerProcess(server.url, pool, logs, "--type", "kubernetes", env=env)

    def run(function: str, parameters: dict[str, Any] | None = None, **variables: Any) -> str:
        name = f"{function}-{uuid.uuid4().hex[:6]}"
        dep = deploy_flow(
            admin, pool, flows_dir, function, name=name,
            parameters=parameters or {}, job_variables={"image": "local", **variables},
        )  # fmt: skip
        return admin.run_deployment(dep.id, s.DeploymentRunRequest()).id

    yield run
    worker.stop(timeout=30)


def crash_message(admin: FlowyardClient, run_id: str) -> str:
    assert wait_for_state(admin, run_id, "CRASHED", "COMPLETED", timeout=60) == "CRASHED"
    return admin.read_flow_run(run_id).state.message or ""


def test_restricted_namespace_admits_the_default_job_and_refuses_an_open_one(
    admin: FlowyardClient, kube: KubeApiServer, launch: Launch
):
    """Pod Security "restricted" enforced: the default Job (its security_context) runs;
    one with ``security_context: {}`` is refused, and its run Crashes at once with the
    rules it broke (not at the 300 s pod timeout); its Job is deleted."""
    kube.admission.restricted.add("restricted")
    admitted = launch("noop", namespace="restricted")
    refused = launch("noop", namespace="restricted", security_context={})
    message = crash_message(admin, refused)
    assert 'violates PodSecurity "restricted:latest"' in message, message
    assert "allowPrivilegeEscalation != false" in message and "did not start" not in message
    wait_until(lambda: job_of(kube, refused) is None, timeout=30, message="Job not deleted")
    completed(admin, admitted)


def test_quota_limit_range_and_service_account_refusals_crash_with_the_reason(
    admin: FlowyardClient, kube: KubeApiServer, launch: Launch
):
    """A ResourceQuota, a LimitRange maximum and a missing service account: each run
    Crashes with Kubernetes' own words."""
    kube.admission.memory_quota["quota"] = "1Gi"
    kube.admission.memory_max["limits"] = "512Mi"
    runs = {
        launch("noop", namespace="quota", memory_limit="2Gi"): "exceeded quota: flowyard-quota",
        launch("noop", namespace="limits", memory_limit="1Gi"): (
            "maximum memory usage per Container is 512Mi, but limit is 1Gi"
        ),
        launch("noop", namespace="accounts", service_account_name="ghost"): (
            'serviceaccount "ghost" not found'
        ),
    }
    for run_id, words in runs.items():
        message = crash_message(admin, run_id)
        assert "Kubernetes refused the Job's pod" in message and words in message, message


def test_a_quota_used_up_by_other_pods_is_waited_out_up_to_the_pod_timeout(
    admin: FlowyardClient, kube: KubeApiServer, launch: Launch, tmp_path: Path
):
    """A ResourceQuota taken by a running pod: the Job controller creates a later pod
    once the quota frees, so its run waits (saying why in its logs) and then runs; a run
    whose pod timeout passes first Crashes with the quota named."""
    kube.admission.memory_quota["busy"] = "1Gi"
    holder = launch("sleeper", {"folder": str(tmp_path)}, namespace="busy", memory_limit="768Mi")
    wait_until(
        lambda: (tmp_path / f"{holder}.pid").exists(), timeout=90, message="no holder running"
    )
    waiter = launch("noop", namespace="busy", memory_limit="512Mi")
    impatient = launch("noop", namespace="busy", memory_limit="512Mi", pod_watch_timeout_seconds=3)
    message = crash_message(admin, impatient)
    assert "the pod did not start within 3s (waiting for quota:" in message, message
    assert "exceeded quota: flowyard-quota" in message and "refused" not in message
    wait_until(
        lambda: any("pod waiting for quota" in line for line in log_lines(admin, waiter)),
        timeout=60,
        message="the waiting run never said why",
    )
    assert admin.read_flow_run(waiter).state.type is StateType.PENDING
    admin.cancel_flow_run(holder)
    completed(admin, waiter)


def test_a_root_image_under_the_default_non_root_rule_crashes_at_once(
    admin: FlowyardClient, kube: KubeApiServer, launch: Launch
):
    """The default runAsNonRoot with an image that runs as root: the kubelet will never
    start it, so the run Crashes at once with the kubelet's words (not at the timeout);
    the same image with a non-root ``runAsUser`` in ``security_context`` runs."""
    kube.kubelet.root_images.add("root-image")
    refused = launch("noop", image="root-image")
    message = crash_message(admin, refused)
    assert "container has runAsNonRoot and image will run as root" in message, message
    wait_until(lambda: job_of(kube, refused) is None, timeout=30, message="Job not deleted")
    own = {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False}
    completed(admin, launch("noop", image="root-image", security_context=own))


def test_without_events_access_a_refusal_ends_at_the_pod_timeout(
    admin: FlowyardClient, kube: KubeApiServer, launch: Launch
):
    """A worker whose Role lacks events (an older chart) still runs Jobs: it says once in
    the run's logs that it cannot read them, and a refused pod ends the run at the pod
    timeout, as before."""
    kube.admission.memory_quota["no-events"] = "1Gi"
    kube.forbidden.add("events")
    try:
        run_id = launch(
            "noop", namespace="no-events", memory_limit="2Gi", pod_watch_timeout_seconds=3
        )
        message = crash_message(admin, run_id)
    finally:
        kube.forbidden.discard("events")
    assert "the pod did not start within 3s" in message, message
    logs = "\n".join(log_lines(admin, run_id))
    assert logs.count("cannot read the Job's events") == 1, logs
    assert "events is forbidden" in logs


def test_oom_killed_and_evicted_pods_say_so(
    admin: FlowyardClient, kube: KubeApiServer, launch: Launch, tmp_path: Path
):
    """A running pod OOM-killed, another evicted: each run Crashes with that reason."""
    oom = launch("sleeper", {"folder": str(tmp_path)}, namespace="oom")
    evicted = launch("sleeper", {"folder": str(tmp_path)}, namespace="evict")
    for run_id in (oom, evicted):
        wait_until(
            lambda run_id=run_id: (tmp_path / f"{run_id}.pid").exists(),
            timeout=90,
            message="the flow never started",
        )
    kube.kubelet.oom_kill("oom", pod_of(kube, oom))
    kube.kubelet.evict("evict", pod_of(kube, evicted), "The node was low on resource: memory.")
    message = crash_message(admin, oom)
    assert "exited with code 137 (the flow's container was OOMKilled" in message, message
    message = crash_message(admin, evicted)
    assert "the pod was evicted (The node was low on resource: memory.)" in message, message


def pod_of(kube: KubeApiServer, run_id: str) -> str:
    pods, _ = kube.store.list("pods", None, {"flowyard.io/flow-run-id": run_id}, {})
    (pod,) = pods
    return str(pod["metadata"]["name"])
