"""Containers a Docker worker left behind when it died, settled by the next worker.

When a Docker worker starts, it lists the containers labelled with its pool (on the
worker's own Docker host) whose worker is not online, and ``decide`` (pure) says what to
do with each:

- still running: left alone. Its engine heartbeats the run and reports its end itself,
  so the run finishes without a worker (only its output is no longer streamed);
- exited while its run has no final state (and was not claimed again since): the run is
  reported Crashed with the container's exit code, and the container removed;
- exited while its run is final, gone, or claimed again: the container is removed.

A container that exits later, with no worker left at all, ends Crashed through the
reconciler once the run's lease lapses (no heartbeats), as any silent run does.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from flowyard import schemas as s
from flowyard.errors import ApiError
from flowyard.states import StateType

if TYPE_CHECKING:
    from flowyard.workers.docker import DockerWorker


class Action(StrEnum):
    LEAVE = "leave"
    REMOVE = "remove"
    CRASH = "crash"


def decide(
    *,
    running: bool,
    exit_code: int | None,
    container_worker: str,
    run: s.FlowRun | None,
    online: set[str],
) -> tuple[Action, str]:
    """What to do with a container of this pool found at start, and why."""
    if container_worker in online:
        return Action.LEAVE, "its worker is online"
    if running:
        return Action.LEAVE, "it still runs; its engine reports the run's end"
    if run is None or run.state.type.is_terminal:
        return Action.REMOVE, "its flow run is final or gone"
    if run.worker_name != container_worker:
        return Action.REMOVE, "its flow run was claimed again since"
    return Action.CRASH, (
        f"its container exited with code {exit_code} while its worker was gone, "
        "without a final state"
    )


def settle_orphans(worker: DockerWorker, engine: Any) -> dict[str, Action]:
    """Apply ``decide`` to every container of the worker's pool; run id → what was done."""
    from flowyard.workers.docker import LABEL

    online = {w.name for w in worker.client.list_workers(worker.pool) if w.status == "ONLINE"}
    online.add(worker.name)
    found = engine.containers.list(
        all=True, filters={"label": f"{LABEL}.pool={worker.pool}"}, ignore_removed=True
    )
    done: dict[str, Action] = {}
    for container in found:
        labels = container.labels or {}
        run_id = labels.get(f"{LABEL}.flow-run-id")
        if not run_id:
            continue
        action, why = decide(
            running=container.status in ("running", "created", "restarting"),
            exit_code=(container.attrs.get("State") or {}).get("ExitCode"),
            container_worker=labels.get(f"{LABEL}.worker", ""),
            run=_run(worker, run_id),
            online=online,
        )
        if action is Action.CRASH:
            change = s.StateChange(type=StateType.CRASHED, message=why)
            worker.client.set_flow_run_state(run_id, change)
        if action is not Action.LEAVE:
            container.remove(force=True)
            worker.log.info("orphan_container_settled", run_id=run_id, action=action, why=why)
        done[run_id] = action
    return done


def _run(worker: DockerWorker, run_id: str) -> s.FlowRun | None:
    try:
        return worker.client.read_flow_run(run_id)
    except ApiError as exc:
        if exc.status_code == 404:
            return None
        raise
