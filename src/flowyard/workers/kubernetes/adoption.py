"""Jobs left by a worker that died: found by the pool's label, then adopted or settled.

A worker lists the Jobs labelled with its pool when it starts and then every three
heartbeat intervals. A Job whose worker is online (another live worker) is left alone;
for the others, ``decide`` (pure) says what to do:

- the run is gone or already final, or was claimed again since (the Job's engine would
  be refused): the Job is deleted (``clean_up``), unless it is one of this worker's own
  finished Jobs (its ``ttlSecondsAfterFinished`` removes those);
- the Job ended but the run has no final state: the run is reported Crashed (``crash``);
- the Job still runs: the worker adopts it (``adopt``): it watches it to the end, streams
  its logs, extends its lease and cancels it, as if it had launched it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flowyard import schemas as s
from flowyard.workers.kubernetes import outcomes
from flowyard.workers.kubernetes.manifest import RUN_ID, WORKER


class Action(StrEnum):
    LEAVE = "leave"
    CLEAN_UP = "clean_up"
    CRASH = "crash"
    ADOPT = "adopt"


@dataclass(frozen=True)
class FoundJob:
    """What adoption needs of a Job document."""

    name: str
    namespace: str
    run_id: str
    worker: str
    end: outcomes.JobEnd | None
    token: str | None


def found_job(document: dict[str, Any]) -> FoundJob | None:
    """The Job as adoption sees it; None when it carries no flow-run label."""
    metadata = document.get("metadata") or {}
    labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
    run_id = labels.get(RUN_ID)
    if not run_id:
        return None
    name = str(metadata.get("name", ""))
    return FoundJob(
        name=name,
        namespace=str(metadata.get("namespace", "default")),
        run_id=run_id,
        worker=annotations.get(WORKER) or labels.get(WORKER, ""),
        end=outcomes.job_end({name: document}, name),
        token=_claim_token(document),
    )


def decide(
    job: FoundJob, run: s.FlowRun | None, *, online: set[str], me: str
) -> tuple[Action, str]:
    """What to do with a Job found by its pool label, and why."""
    if job.worker in online and job.worker != me:
        return Action.LEAVE, "its worker is online"
    if run is None:
        return Action.CLEAN_UP, "its flow run does not exist"
    if run.state.type.is_terminal:
        if job.worker == me:  # ours, finished: its TTL removes it, as with any Job we watched
            return Action.LEAVE, "its flow run is final and the Job is ours"
        return Action.CLEAN_UP, f"its flow run is already {run.state.type.value}"
    if run.worker_name != job.worker:
        return Action.CLEAN_UP, "its flow run was claimed again since"
    if job.end is not None:
        reason = f" ({job.end.reason})" if job.end.reason else ""
        what = "completed" if job.end.kind == "complete" else f"failed{reason}"
        return Action.CRASH, f"its Job {what} while no worker watched it, without a final state"
    if job.token is None:
        return Action.LEAVE, "its Job has no claim token to adopt it with"
    return Action.ADOPT, f"its worker {job.worker!r} is offline"


def _claim_token(document: dict[str, Any]) -> str | None:
    pod = document.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("containers") or []:
        for variable in container.get("env") or []:
            if variable.get("name") == "FLOWYARD_CLAIM_TOKEN" and variable.get("value"):
                return str(variable["value"])
    return None
