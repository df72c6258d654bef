"""The pod's output into the run's logs, as the Docker worker streams a container's.

Logs are read with ``follow=true&timestamps=true``. When the stream breaks while the
container still runs (an API server restart), it is read again and lines at or before
the last timestamp already sent are skipped, so nothing is sent twice.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog

from flowyard.errors import KubernetesError
from flowyard.workers.base import OutputSink
from flowyard.workers.kubernetes.cluster import read_json, stream_lines
from flowyard.workers.kubernetes.manifest import CONTAINER
from flowyard.workers.kubernetes.outcomes import exit_code

log = structlog.get_logger()


def follow_logs(
    core: Any, namespace: str, pod: dict[str, Any], output: OutputSink
) -> threading.Thread:
    """A thread that sends the flow container's log lines to ``output`` until it ends."""
    name = pod["metadata"]["name"]
    thread = threading.Thread(
        target=_follow,
        args=(core, namespace, name, flow_container(pod), output),
        name=f"logs-{name}",
        daemon=True,
    )
    thread.start()
    return thread


def _follow(core: Any, namespace: str, pod: str, container: str, output: OutputSink) -> None:
    last = ""
    pause, backoff = threading.Event(), 0.2
    while True:
        sent_before = last  # on a new stream, skip what the last one already sent
        try:
            for line in stream_lines(
                core.read_namespaced_pod_log,
                "read pod logs",
                pod,
                namespace,
                container=container,
                follow=True,
                timestamps=True,
            ):
                raw_stamp, _, text = line.partition(" ")
                stamp = sortable(raw_stamp)
                if stamp <= sent_before:
                    continue
                last = stamp
                output("stdout", text)
            backoff = 0.2
        except KubernetesError as exc:
            log.info("pod_logs_interrupted", pod=pod, error=str(exc))
        if _ended(core, namespace, pod):
            return
        pause.wait(backoff)
        backoff = min(backoff * 2, 5.0)


def sortable(stamp: str) -> str:
    """An RFC 3339 timestamp (UTC, ``Z``) with 9 fraction digits: compares as a string."""
    head, dot, fraction = stamp.rstrip("Z").partition(".")
    return f"{head}.{fraction.ljust(9, '0') if dot else '0' * 9}Z"


def flow_container(pod: dict[str, Any]) -> str:
    """The flow container's name: ``flowyard`` if the pod has one, else the first."""
    names = [c.get("name") for c in pod.get("spec", {}).get("containers") or []]
    return CONTAINER if CONTAINER in names or not names else str(names[0])


def _ended(core: Any, namespace: str, pod: str) -> bool:
    """True when the pod is gone or its flow container has terminated."""
    try:
        document = read_json(core.read_namespaced_pod, "read pod", pod, namespace)
    except KubernetesError as exc:
        return exc.status == 404
    return exit_code(document) is not None
