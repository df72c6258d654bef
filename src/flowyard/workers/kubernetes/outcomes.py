"""What a Job's and its pods' status documents say, read by pure functions (no I/O).

The watch (``watching.follow``) hands these the current objects; they answer whether the
pod has started, why it is still pending, whether the Job has ended and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowyard.workers.kubernetes.manifest import CONTAINER

Obj = dict[str, Any]


@dataclass(frozen=True)
class PodStart:
    """How the wait for the pod ended: it ``started`` (running or ended), or was deleted."""

    pod: str
    started: bool


@dataclass(frozen=True)
class JobEnd:
    """How the Job ended: ``complete``, ``failed`` (with the reason), or ``gone`` (deleted)."""

    kind: str
    reason: str = ""


def newest(pods: dict[str, Obj]) -> Obj | None:
    """The most recently created pod (a Job with retries has several)."""
    if not pods:
        return None
    return max(pods.values(), key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "")


def pod_start(pods: dict[str, Obj], seen: set[str]) -> PodStart | None:
    """A verdict once the newest pod runs or ended, or a pod in ``seen`` was deleted.

    ``seen`` collects the names of pods observed so far (the caller's, updated here).
    """
    gone = seen - set(pods)
    seen.update(pods)
    if gone:
        return PodStart(pod=sorted(gone)[0], started=False)
    pod = newest(pods)
    if pod is None:
        return None
    phase = pod.get("status", {}).get("phase")
    if phase in ("Running", "Succeeded", "Failed"):
        return PodStart(pod=pod["metadata"]["name"], started=True)
    return None


def pending_reasons(pod: Obj | None) -> list[str]:
    """Why a pod is not running yet: scheduling and container waiting reasons."""
    if pod is None:
        return []
    status = pod.get("status") or {}
    reasons = []
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reasons.append(_reason(condition))
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
            reasons.append(_reason(waiting))
    return reasons


HOPELESS = ("InvalidImageName", "image will run as root")
"""Pending reasons no wait cures (the kubelet would retry them forever)."""


def hopeless(reasons: list[str]) -> str | None:
    """The first pending reason that no wait cures: an invalid image name, or a
    ``runAsNonRoot`` container whose image runs as root."""
    return next((r for r in reasons if any(word in r for word in HOPELESS)), None)


def job_end(jobs: dict[str, Obj], name: str) -> JobEnd | None:
    """A verdict once the Job named ``name`` has a Complete or Failed condition, or is gone."""
    job = jobs.get(name)
    if job is None:
        return JobEnd("gone")
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobEnd("complete")
        if condition.get("type") == "Failed":
            return JobEnd("failed", _reason(condition))
    return None


def exit_code(pod: Obj | None) -> int | None:
    """The exit code of the flow's container (named ``flowyard``, else the first)."""
    if pod is None:
        return None
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if not statuses:
        return None
    status = next((s for s in statuses if s.get("name") == CONTAINER), statuses[0])
    terminated = (status.get("state") or {}).get("terminated")
    return None if terminated is None else int(terminated.get("exitCode", -1))


def admission_refusal(events: list[Obj]) -> str | None:
    """Why the Job has no pod, when admission refused it (Pod Security, a ResourceQuota or
    LimitRange, a missing service account): the newest ``FailedCreate`` Warning."""
    refusals = [
        e for e in events if e.get("reason") == "FailedCreate" and e.get("type") == "Warning"
    ]
    if not refusals:
        return None
    newest_event = max(refusals, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return str(newest_event.get("message") or "FailedCreate")


def pod_failure(pod: Obj | None) -> str | None:
    """How the pod ended badly, when Kubernetes says: evicted, or the flow's container
    OOMKilled (over its memory limit)."""
    if pod is None:
        return None
    status = pod.get("status") or {}
    if status.get("reason") == "Evicted":
        message = status.get("message")
        return f"the pod was evicted ({message})" if message else "the pod was evicted"
    statuses = status.get("containerStatuses") or [{}]
    flow = next((s for s in statuses if s.get("name") == CONTAINER), statuses[0])
    terminated = (flow.get("state") or {}).get("terminated") or {}
    if terminated.get("reason") == "OOMKilled":
        return "the flow's container was OOMKilled: it used more memory than its limit"
    return None


def _reason(document: Obj) -> str:
    reason, message = document.get("reason") or "Unknown", document.get("message")
    return f"{reason}: {message}" if message else str(reason)
