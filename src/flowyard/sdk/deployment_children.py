"""A deployment's run started from inside a flow run is that run's child (Prefect's
``run_deployment(..., as_subflow=True)``, the default).

The calling flow run gets a task run standing for the deployment's run, named after the
deployment and left Pending as Prefect leaves it, until the call waits for the child's end;
the child names it as its parent, so it shows under the caller in the graph, its
``runtime.flow_run.parent_flow_run_id`` is the caller, and a deployed caller's run token
may start it (the API lets a token start deployment runs only below its own task runs).
"""

from __future__ import annotations

import uuid

from flowyard.schemas import TaskRunCreate, TaskRunUpdate
from flowyard.sdk.context import current_tags, get_flow_run_context
from flowyard.sdk.labels import task_run_document
from flowyard.states import StateType


def start_parent_task_run(deployment_name: str) -> str | None:
    """In a flow run recorded by the API (or a task of one): a new task run of it standing
    for the deployment's run; None outside a recorded flow run."""
    context = get_flow_run_context()
    if context is None or not context.reporter.records:
        return None
    key = f"run_deployment.{deployment_name}"
    fields = {
        "id": str(uuid.uuid4()),
        "flow_run_id": context.flow_run_id,
        "name": context.next_task_run_name(key, deployment_name),
        "task_key": key,
        "state": StateType.PENDING,
        "tags": sorted(current_tags() | context.tags),
    }
    body = task_run_document(TaskRunCreate, fields, task=key)
    return None if body is None else context.reporter.start_task_run(body, wait=True)


def finish_parent_task_run(task_run_id: str, child_state: StateType, message: str | None) -> None:
    """The standing task run takes its child's final state once the call saw it."""
    context = get_flow_run_context()
    if context is not None and context.reporter.records:
        update = TaskRunUpdate(state=child_state, message=message)
        context.reporter.finish_task_run(task_run_id, update)
