"""Jobs of the Kubernetes watch tests: a manifest whose pod is a command, and a watch of
its end on a thread (shared by ``test_kubernetes_watch`` and ``test_kubernetes_in_cluster``)."""

from __future__ import annotations

import threading
from typing import Any

from flowyard.workers.kubernetes import outcomes
from flowyard.workers.kubernetes.watching import follow

WAIT_FOR_FILE = (
    "import os, sys, time\n"
    "for i in range(3): print('line', i, flush=True)\n"
    "while not os.path.exists(sys.argv[1]): time.sleep(0.05)\n"
    "for i in range(3, 6): print('line', i, flush=True)\n"
)


def job(name: str, command: list[str]) -> dict[str, Any]:
    container = {"name": "flowyard", "image": "local", "command": command}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }


def watch_job_end(client: Any, name: str, into: list[Any]) -> threading.Thread:
    from kubernetes.client import BatchV1Api

    def run() -> None:
        into.append(
            follow(
                BatchV1Api(client).list_namespaced_job,
                "default",
                lambda jobs: outcomes.job_end(jobs, name),
                selector={"field_selector": f"metadata.name={name}"},
            )
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
