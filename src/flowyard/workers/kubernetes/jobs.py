"""A run's Job at the API server: its handle, and the calls that create, delete and list.

``JobInfrastructure`` is what the worker records on the run (``namespace:name``) and
what a restarted worker rebuilds from a Job it finds. Creating a Job retries what
``is_transient`` calls transient; a 409 AlreadyExists on a retry is the Job the first
attempt created. Deleting a Job that is already gone is not an error.
"""

from __future__ import annotations

from typing import Any

import structlog
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from flowyard.errors import KubernetesError
from flowyard.workers.base import Infrastructure
from flowyard.workers.kubernetes.cluster import is_transient, read_json
from flowyard.workers.kubernetes.manifest import POOL, label_value

log = structlog.get_logger()

CREATE_RETRY: dict[str, Any] = {
    "stop": stop_after_attempt(4),
    "wait": wait_exponential(multiplier=0.5, max=4),
    "retry": retry_if_exception(is_transient),
    "reraise": True,
    "before_sleep": lambda state: log.warning(
        "job_create_retry", attempt=state.attempt_number, error=str(state.outcome.exception())
    ),
}
"""Creating a Job: a server restarting or overloaded is tried again, three more times."""


class JobInfrastructure(Infrastructure):
    """``id`` is ``namespace:name``; ``cluster`` names the API client it was created with."""

    namespace: str
    name: str
    run_id: str
    cluster: str = "default"

    @classmethod
    def of(cls, namespace: str, name: str, *, run_id: str, cluster: str) -> JobInfrastructure:
        """The handle of the Job ``name`` in ``namespace``."""
        return cls(
            id=f"{namespace}:{name}", namespace=namespace, name=name, run_id=run_id, cluster=cluster
        )


def create_job(batch: Any, job: JobInfrastructure, manifest: dict[str, Any]) -> None:
    """Create the Job; a transient failure is tried again, an AlreadyExists then is ours."""
    for attempt in Retrying(**CREATE_RETRY):
        with attempt:
            try:
                read_json(batch.create_namespaced_job, "create the Job", job.namespace, manifest)
            except KubernetesError as exc:
                if exc.status == 409 and attempt.retry_state.attempt_number > 1:
                    return
                raise


def delete_job(batch: Any, job: JobInfrastructure, propagation: str) -> None:
    """Delete the Job with this propagation policy (``Foreground``, ``Background``)."""
    try:
        read_json(
            batch.delete_namespaced_job,
            "delete the Job",
            job.name,
            job.namespace,
            propagation_policy=propagation,
        )
    except KubernetesError as exc:
        if exc.status != 404:
            raise


def list_pods(core: Any, job: JobInfrastructure) -> dict[str, Any]:
    """The Job's pods, by name."""
    pods = _items(core.list_namespaced_pod, "list pods", job.namespace, f"job-name={job.name}")
    return {p["metadata"]["name"]: p for p in pods}


def list_job_events(core: Any, job: JobInfrastructure) -> list[dict[str, Any]]:
    """The Events about the Job (the Job controller's ``FailedCreate`` when admission
    refused its pod, for one)."""
    selector = f"involvedObject.kind=Job,involvedObject.name={job.name}"
    listing = read_json(
        core.list_namespaced_event, "list the Job's events", job.namespace, field_selector=selector
    )
    items: list[dict[str, Any]] = listing.get("items") or []
    return items


def list_pool_jobs(batch: Any, namespace: str, pool: str) -> list[dict[str, Any]]:
    """The Jobs in ``namespace`` labelled with ``pool``, as JSON documents."""
    selector = f"{POOL}={label_value(pool)}"
    return _items(batch.list_namespaced_job, "list the pool's Jobs", namespace, selector)


def _items(call: Any, doing: str, namespace: str, selector: str) -> list[dict[str, Any]]:
    listing = read_json(call, doing, namespace, label_selector=selector)
    items: list[dict[str, Any]] = listing.get("items") or []
    return items
