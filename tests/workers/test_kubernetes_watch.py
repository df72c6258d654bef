"""Watches and log streams through the official client against the emulated API server
(pods as local processes): they resume through 410 Gone, broken streams and restarts."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowyard.blocks import KubernetesClusterConfig
from flowyard.workers.kubernetes import outcomes
from flowyard.workers.kubernetes.cluster import connect
from flowyard.workers.kubernetes.logs import follow_logs
from tests.helpers.kube_jobs import WAIT_FOR_FILE, job, watch_job_end
from tests.kube import KubeApiServer, ProcessRuntime
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


BLOCK = "import time; time.sleep(600)"  # the pod's command, run until deleted


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    server = KubeApiServer(ProcessRuntime()).start()
    yield server
    server.stop()


@pytest.fixture
def client(kube: KubeApiServer, tmp_path: Path) -> Iterator[Any]:
    text = kube.write_kubeconfig(tmp_path / "kubeconfig").read_text()
    api_client = connect(KubernetesClusterConfig(kubeconfig=text))
    yield api_client
    api_client.close()


class TestEmulator:
    def test_invalid_job_manifest_is_answered_422(self, kube: KubeApiServer):
        """A manifest kubernetes-validate refuses (strict) is a 422 Status; nothing is made."""
        body = job("bad", ["true"])
        body["spec"]["retries"] = 3
        answer = httpx.post(f"{kube.url}/apis/batch/v1/namespaces/default/jobs", json=body)
        assert answer.status_code == 422
        assert answer.json()["reason"] == "Invalid" and "retries" in answer.json()["message"]
        assert kube.store.get("jobs", "default", "bad") is None


class TestFollow:
    def test_watch_survives_410_broken_streams_and_a_restart(
        self, kube: KubeApiServer, client: Any, tmp_path: Path
    ):
        """No verdict while the Job runs, whatever the connection does; then 'complete'."""
        from kubernetes.client import BatchV1Api

        go = tmp_path / "go"
        body = job("steady", [sys.executable, "-c", WAIT_FOR_FILE, str(go)])
        BatchV1Api(client).create_namespaced_job("default", body)
        verdicts: list[Any] = []
        watcher = watch_job_end(client, "steady", verdicts)
        wait_until(lambda: kube.requests["GET jobs"] >= 2, message="no watch started")
        kube.compact()
        kube.gone_next_watches(1)
        kube.close_watches()
        wait_until(lambda: kube.requests["GET jobs"] >= 5, message="no list after the 410")
        kube.gone_next_watches(1, http=True)
        kube.close_watches()
        wait_until(lambda: kube.requests["GET jobs"] >= 8, message="no list after the 410")
        kube.restart(down_seconds=2).join(10)
        wait_until(lambda: kube.requests["GET jobs"] >= 9, message="no watch after the restart")
        assert verdicts == [] and watcher.is_alive()
        go.touch()
        watcher.join(60)
        assert verdicts == [outcomes.JobEnd("complete")]

    def test_deleted_job_is_gone(self, kube: KubeApiServer, client: Any, tmp_path: Path):
        """A Job deleted (foreground) while watched ends the watch with 'gone'."""
        from kubernetes.client import BatchV1Api

        batch = BatchV1Api(client)
        batch.create_namespaced_job("default", job("doomed", [sys.executable, "-c", BLOCK]))
        verdicts: list[Any] = []
        watcher = watch_job_end(client, "doomed", verdicts)
        wait_until(lambda: kube.requests["GET jobs"] >= 2, message="no watch started")
        batch.delete_namespaced_job("doomed", "default", propagation_policy="Foreground")
        watcher.join(60)
        assert verdicts == [outcomes.JobEnd("gone")]
        assert ("default", "doomed", "Foreground") in kube.kubelet.deletions

    def test_logs_resume_without_repeating_a_line(
        self, kube: KubeApiServer, client: Any, tmp_path: Path
    ):
        """A log stream broken mid-way is read again; no line is lost or sent twice."""
        from kubernetes.client import BatchV1Api

        go = tmp_path / "go"
        body = job("talker", [sys.executable, "-c", WAIT_FOR_FILE, str(go)])
        BatchV1Api(client).create_namespaced_job("default", body)
        pod = wait_until(lambda: running_pod(kube, "talker"), message="the pod never ran")
        lines: list[str] = []
        reader = follow_logs(_core(client), "default", pod, lambda _, line: lines.append(line))
        wait_until(lambda: len(lines) == 3, message="the first lines never came")
        assert kube.close_watches() >= 1
        go.touch()
        reader.join(60)
        assert lines == [f"line {i}" for i in range(6)]


def running_pod(kube: KubeApiServer, job_name: str) -> dict[str, Any] | None:
    pods, _ = kube.store.list("pods", "default", {"job-name": job_name}, {})
    return next((p for p in pods if p["status"]["phase"] == "Running"), None)


def _core(client: Any) -> Any:
    from kubernetes.client import CoreV1Api

    return CoreV1Api(client)
