"""A launched Job watched to its end: its pod's start, its logs, how it ended.

``watch_job`` watches the pods of the Job until one starts (pending reasons go to the
run's logs; a pod not started within ``pod_watch_timeout_seconds`` ends the wait and its
Job is deleted), follows its logs into the run's logs, and watches the Job until it
completes, fails or is deleted. The watches resume through timeouts, 410 Gone and
API-server restarts (``watching``). The answer, a ``JobExit``, is the flow container's
exit code and, unless the Job completed, why the run crashed: settling the run with it
is the worker's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flowyard.workers.base import OutputSink
from flowyard.workers.kubernetes import outcomes
from flowyard.workers.kubernetes.jobs import JobInfrastructure, delete_job, list_pods
from flowyard.workers.kubernetes.logs import follow_logs
from flowyard.workers.kubernetes.watching import follow

LOG_DRAIN_SECONDS = 30.0
"""How long a finished run waits for the rest of its pod's logs."""


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
    if start is None:
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
    return JobExit(known_code, _crash_message(end, code))


def _wait_for_pod(
    core: Any, job: JobInfrastructure, options: WatchOptions, pending: list[str]
) -> dict[str, Any] | None:
    """The pod that started (or was deleted first); None when none started in time.

    ``pending`` holds the newest pod's pending reasons last seen (the caller's, updated here).
    """
    seen: set[str] = set()
    told: set[str] = set()

    def decide(pods: dict[str, Any]) -> dict[str, Any] | None:
        verdict = outcomes.pod_start(pods, seen)
        if verdict is not None:
            return {"pod": pods.get(verdict.pod), "started": verdict.started}
        pending[:] = outcomes.pending_reasons(outcomes.newest(pods))
        for reason in pending:
            if reason not in told:
                told.add(reason)
                options.output("stderr", f"pod pending: {reason}")
        return None

    return follow(
        core.list_namespaced_pod,
        job.namespace,
        decide,
        selector={"label_selector": f"job-name={job.name}"},
        deadline=time.monotonic() + options.pod_timeout,
        what=f"pods of {job.name}",
    )


def _crash_message(end: outcomes.JobEnd, code: int | None) -> str:
    """Why the run of a Job that failed or was deleted crashed."""
    exited = "" if code is None else f", the flow's container exited with code {code}"
    if end.kind == "gone":
        return f"the Job was deleted before the flow run ended{exited}"
    return f"the Job failed ({end.reason}){exited}, without a final state from the engine"
