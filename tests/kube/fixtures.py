"""Fixtures of the Kubernetes worker tests: the emulated API server, a pool, workers.

Imported by ``tests/workers/test_kubernetes_*.py``, which share the package's
``docker_engine`` (pods run as containers of the test image) and ``server`` fixtures.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from tests.docker_engine import TEST_IMAGE, DockerEngine
from tests.e2e.conftest import FAST, deploy_flow
from tests.kube.runtimes import DockerRuntime
from tests.kube.server import KubeApiServer


@pytest.fixture
def kube_api(docker_engine: DockerEngine) -> Iterator[KubeApiServer]:
    """An emulated API server whose pods run as containers on the test dockerd."""
    with contextlib.closing(docker_engine.client()) as docker:
        server = KubeApiServer(DockerRuntime(docker)).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def kubeconfig(kube_api: KubeApiServer, tmp_path: Path) -> Path:
    return kube_api.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def k8s_pool(api: FlowyardClient) -> str:
    """A fresh kubernetes pool with the worker type's default template."""
    from flowyard.workers.kubernetes import KubernetesWorker

    name = f"k8s-{uuid.uuid4().hex[:8]}"
    template = KubernetesWorker.default_base_job_template()
    api.create_work_pool(s.WorkPoolCreate(name=name, type="kubernetes", base_job_template=template))
    return name


def create_secret(kubeconfig: Path, name: str, values: dict[str, str]) -> None:
    """Create a Secret in ``default`` through the official client, as ``kubectl`` would."""
    from kubernetes import client, config

    with contextlib.closing(config.new_client_from_config(str(kubeconfig))) as api_client:
        secret = client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=values)
        client.CoreV1Api(api_client).create_namespaced_secret("default", secret)


def flows_volume(flows_dir: Path) -> dict[str, Any]:
    """Job variables that mount the test flows into the pod (a hostPath volume)."""
    return {
        "volumes": [{"name": "flows", "hostPath": {"path": str(flows_dir)}}],
        "volume_mounts": [{"name": "flows", "mountPath": str(flows_dir), "readOnly": True}],
    }


@pytest.fixture
def deploy_k8s(
    api: FlowyardClient, k8s_pool: str, docker_flows_dir: Path
) -> Callable[..., s.Deployment]:
    """Deploy a test flow to the kubernetes pool: the test image, the flows mounted."""

    def make(function: str, *, parameters: dict[str, Any] | None = None, **variables: Any):
        job_variables = {
            "image": TEST_IMAGE,
            "image_pull_policy": "Never",
            **flows_volume(docker_flows_dir),
            **variables,
        }
        return deploy_flow(
            api,
            k8s_pool,
            docker_flows_dir,
            function,
            job_variables=job_variables,
            parameters=parameters or {},
        )

    return make


@pytest.fixture
def start_k8s_worker(
    server: ServerProcess, k8s_pool: str, kubeconfig: Path, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``flowyard worker start --type kubernetes`` processes, stopped after the test
    (``api_url``: another way to the server, such as a ``CountingProxy``)."""
    started: list[WorkerProcess] = []

    def start(
        *args: str, env: dict[str, str] | None = None, api_url: str | None = None
    ) -> WorkerProcess:
        full_env = {**FAST, "KUBECONFIG": str(kubeconfig), **(env or {})}
        worker = WorkerProcess(
            api_url or server.url, k8s_pool, tmp_path, "--type", "kubernetes", *args, env=full_env
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=30)
