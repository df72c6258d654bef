"""The worker in a pod, as its service account: the token file rotates while it works.

Emulated: the API server (``tests.kube``, over HTTPS on loopback with a self-signed
certificate standing in for the cluster's CA), the pod's service-account mount (a folder
holding ``token`` and ``ca.crt``, its token swapped by an atomic rename as the kubelet's
symlink swap does) and the ``KUBERNETES_SERVICE_HOST``/``_PORT`` variables a pod gets.
Real: the official client, its TLS checks, and the worker's watch of a Job whose pod is a
local process. After a rotation the emulated server accepts only the new token, as one
that has revoked the old one does.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowyard.blocks import KubernetesClusterConfig
from flowyard.errors import KubernetesError
from flowyard.workers.kubernetes import outcomes
from flowyard.workers.kubernetes.cluster import connect, read_json
from tests.helpers.kube_jobs import WAIT_FOR_FILE, job, watch_job_end
from tests.kube import KubeApiServer, ProcessRuntime
from tests.kube.tls import self_signed, server_context
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

IN_CLUSTER = KubernetesClusterConfig(in_cluster=True)


@pytest.fixture
def account(tmp_path: Path) -> Path:
    """The pod's service-account folder: ``ca.crt`` and a first ``token``."""
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    self_signed(folder)
    rotate(folder, "token-1")
    return folder


@pytest.fixture
def kube(account: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeApiServer]:
    server = KubeApiServer(
        ProcessRuntime(), tls=server_context(account / "ca.crt", account / "tls.key")
    ).start()
    server.tokens = {"token-1"}
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
    yield server
    server.stop()


def rotate(folder: Path, token: str) -> None:
    """Write a new token the way the kubelet does: a new file renamed over the old."""
    fresh = folder / f".{token}"
    fresh.write_text(token)
    os.replace(fresh, folder / "token")


def bearer_tokens(kube: KubeApiServer) -> list[str]:
    return [m for w in kube.wire for m in re.findall(r"(?im)^authorization: bearer (\S+)$", w)]


def list_pods(client: Any) -> dict[str, Any]:
    from kubernetes.client import CoreV1Api

    return read_json(CoreV1Api(client).list_namespaced_pod, "list pods", "default")


def test_each_request_carries_the_token_in_the_file_now(kube: KubeApiServer, account: Path):
    """Rotated between two requests, the second already carries the new token: the
    server, which now refuses the old one, answers both."""
    client = connect(IN_CLUSTER, service_account=account)
    try:
        assert list_pods(client)["kind"] == "List"
        rotate(account, "token-2")
        kube.tokens = {"token-2"}
        assert list_pods(client)["kind"] == "List"
    finally:
        client.close()
    assert bearer_tokens(kube) == ["token-1", "token-2"]


def test_a_watch_resumes_with_the_rotated_token(kube: KubeApiServer, account: Path, tmp_path: Path):
    """A Job's watch, cut after the rotation, comes back with the new token and still
    reports the Job's end."""
    from kubernetes.client import BatchV1Api

    client = connect(IN_CLUSTER, service_account=account)
    try:
        go = tmp_path / "go"
        body = job("rotating", [sys.executable, "-c", WAIT_FOR_FILE, str(go)])
        BatchV1Api(client).create_namespaced_job("default", body)
        verdicts: list[Any] = []
        watcher = watch_job_end(client, "rotating", verdicts)
        wait_until(lambda: kube.requests["GET jobs"] >= 2, message="no watch started")
        rotate(account, "token-2")
        kube.tokens = {"token-2"}
        watches = kube.requests["GET jobs"]
        kube.close_watches()
        wait_until(lambda: kube.requests["GET jobs"] > watches, message="no watch again")
        go.touch()
        watcher.join(60)
    finally:
        client.close()
    assert verdicts == [outcomes.JobEnd("complete")]
    assert bearer_tokens(kube)[-1] == "token-2"
    assert set(bearer_tokens(kube)) == {"token-1", "token-2"}


def test_the_old_token_is_refused_by_the_emulation(kube: KubeApiServer, account: Path):
    """The emulation really refuses a token it no longer accepts (401), so the tests
    above could fail."""
    client = connect(IN_CLUSTER, service_account=account)
    try:
        kube.tokens = {"token-2"}
        with pytest.raises(KubernetesError) as refused:
            list_pods(client)
    finally:
        client.close()
    assert refused.value.status == 401


def test_outside_a_pod_the_error_says_so(account: Path, monkeypatch: pytest.MonkeyPatch):
    """Without the service variables a pod gets, connecting in-cluster fails clearly."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubernetesError, match="not running in a Kubernetes pod"):
        connect(IN_CLUSTER, service_account=account)
