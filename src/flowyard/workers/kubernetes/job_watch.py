"""A launched Job watched to its end: its pod's start, its logs, how it ended.

``watch_job`` watches the pods of the Job until one starts (pending reasons go to the
run's logs; a pod not started within ``pod_watch_timeout_seconds`` ends the wait and its
Job is deleted, and so, at once, does a pod admission refused, told by the Job's
``FailedCreate`` Event, or one pending for a reason no wait cures; a ResourceQuota used up
by other pods is waited out, see ``quota``), follows its logs into
the run's logs, and watches the Job until it
completes, fails or is deleted. The watches resume through timeouts, 410 Gone and
API-server restarts (``watching``). The answer, a ``JobExit``, is the flow container's
exit code and, unless the Job completed, why the run crashed (an OOM-killed container or
an evicted pod named): settling the run with it is the worker's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flowyard.errors import KubernetesError
from flowyard.workers.base import OutputSink
from flowyard.workers.kubernetes import outcomes
from flowyard.workers.kubernetes.cluster import is_transient
from flowyard.workers.kubernetes.jobs import (
    JobInfrastructure,
    delete_job,
    list_job_events,
    list_pods,
)
from flowyard.workers.kubernetes.logs import follow_logs
from flowyard.workers.kubernetes.quota import waits_for_quota
from flowyard.workers.kubernetes.watching import follow

LOG_DRAIN_SECONDS = 30.0
"""How long a finished run waits for the rest of its pod's logs."""
EVENTS_EVERY = 2.0
"""While no pod has started, how often the Job's Events are read for an admission refusal."""


@dataclass
class WatchOptions:
    """What watching a run needs to know beyond its Job."""

    output: OutputSink
    pod_timeout: float
    stream_output: bool


@dataclass(frozen=True)
class JobExit:
    """How a watched Job ended for its run.

    ``code`` is the flow container's exit code (-1 when unknown); ``crash_message`` says
    why the run crashed (its pod never started, or its Job failed or was deleted), and is
    None when the Job completed.
    """

    code: int
    crash_message: str | None = None


def watch_job(core: Any, batch: Any, job: JobInfrastructure, options: WatchOptions) -> JobExit:
    """Watch the Job from its pod's start to its end, following the pod's logs meanwhile."""
    pending: list[str] = []
    start = _wait_for_pod(core, job, options, pending)
    if start is None or "refused" in start:
        if start is not None:
            message = f"Kubernetes refused the Job's pod: {start['refused']}"
        else:
            why = "; ".join(pending) or "no reason reported"
            message = f"the pod did not start within {options.pod_timeout:g}s ({why})"
        options.output("stderr", f"flowyard kubernetes worker: {message}; deleting the Job")
        delete_job(batch, job, "Background")
        return JobExit(-1, message)
    readers = []
    if start.get("started") and options.stream_output:
        readers.append(follow_logs(core, job.namespace, start["pod"], options.output))
    end = follow(
        batch.list_namespaced_job,
        job.namespace,
        lambda jobs: outcomes.job_end(jobs, job.name),
        selector={"field_selector": f"metadata.name={job.name}"},
        what=f"job {job.name}",
    )
    pod = outcomes.newest(list_pods(core, job))
    code = outcomes.exit_code(pod)
    for reader in readers:
        reader.join(LOG_DRAIN_SECONDS)
    known_code = -1 if code is None else code
    if end is None or end.kind == "complete":
        return JobExit(known_code)
    return JobExit(known_code, _crash_message(end, code, outcomes.pod_failure(pod)))


def _wait_for_pod(
    core: Any, job: JobInfrastructure, options: WatchOptions, pending: list[str]
) -> dict[str, Any] | None:
    """The pod that started (or was deleted first), or why it never will (``{"refused": …}``:
    admission refused it, or it is pending for a reason no wait cures); None when none
    started in time.

    The pods are watched in stretches of ``EVENTS_EVERY`` seconds, the Job's Events read
    between them (a refused pod never exists, so no pod watch would tell).
    """
    deadline = time.monotonic() + options.pod_timeout
    seen: set[str] = set()
    told: set[str] = set()
    events = _EventReader(core, job, options.output)
    while True:
        stretch = min(deadline, time.monotonic() + EVENTS_EVERY)
        found = _watch_pods(core, job, options, pending, seen, told, stretch)
        if found is not None:
            return found
        refusal = events.refusal()
        if refusal is not None and not waits_for_quota(refusal):
            return {"refused": refusal}
        if refusal is not None and not seen:  # the Job controller retries once quota frees
            pending[:] = [f"waiting for quota: {refusal}"]
            if refusal not in told:
                told.add(refusal)
                options.output("stderr", f"pod waiting for quota: {refusal}")
        if time.monotonic() >= deadline:
            return None


class _EventReader:
    """Reads the Job's Events; stops for good (saying so once) when it may not."""

    def __init__(self, core: Any, job: JobInfrastructure, output: OutputSink) -> None:
        self.core, self.job, self.output = core, job, output
        self.allowed = True

    def refusal(self) -> str | None:
        if not self.allowed:
            return None
        try:
            return outcomes.admission_refusal(list_job_events(self.core, self.job))
        except KubernetesError as exc:
            if not is_transient(exc):
                self.allowed = False
                self.output(
                    "stderr",
                    f"flowyard kubernetes worker: cannot read the Job's events ({exc}); an "
                    "admission refusal shows only at the pod timeout (the worker's Role "
                    "needs events get/list)",
                )
            return None


def _watch_pods(
    core: Any,
    job: JobInfrastructure,
    options: WatchOptions,
    pending: list[str],
    seen: set[str],
    told: set[str],
    deadline: float,
) -> dict[str, Any] | None:
    """Watch the Job's pods until one starts or is deleted, or until ``deadline``.

    ``pending`` holds the newest pod's pending reasons last seen, ``seen`` the pods seen and
    ``told`` the reasons already logged (the caller's, updated here).
    """

    def decide(pods: dict[str, Any]) -> dict[str, Any] | None:
        verdict = outcomes.pod_start(pods, seen)
        if verdict is not None:
            return {"pod": pods.get(verdict.pod), "started": verdict.started}
        pending[:] = outcomes.pending_reasons(outcomes.newest(pods))
        for reason in pending:
            if reason not in told:
                told.add(reason)
                options.output("stderr", f"pod pending: {reason}")
        hopeless = outcomes.hopeless(pending)
        return {"refused": hopeless} if hopeless else None

    return follow(
        core.list_namespaced_pod,
        job.namespace,
        decide,
        selector={"label_selector": f"job-name={job.name}"},
        deadline=deadline,
        what=f"pods of {job.name}",
    )


def _crash_message(end: outcomes.JobEnd, code: int | None, pod_failure: str | None) -> str:
    """Why the run of a Job that failed or was deleted crashed."""
    exited = "" if code is None else f", the flow's container exited with code {code}"
    if pod_failure:
        exited += f" ({pod_failure})"
    if end.kind == "gone":
        return f"the Job was deleted before the flow run ended{exited}"
    return f"the Job failed ({end.reason}){exited}, without a final state from the engine"
