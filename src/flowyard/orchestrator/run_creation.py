"""New runs of a deployment written by SQL core: the API's single and bulk creates.

The ORM's unit of work cost ~0.7 ms of server CPU per run (an object per run and per
state row, a flush, an event built from the loaded relationships); the rows written here
are plain dicts, inserted in one statement per table, and the labels every run's
Scheduled event shares (flow, deployment, pool, queue, tags) are built once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.blocks import merge_variables
from flowyard.errors import InvalidInput, NotFound
from flowyard.orchestrator import events
from flowyard.orchestrator.names import run_name
from flowyard.orchestrator.parameters import check_parameter_sets, check_parameters
from flowyard.orchestrator.runs import QueueEffect
from flowyard.states import StateType
from flowyard.store import models as m

_RUNS = m.FlowRun.__table__
_STATES = m.FlowRunState.__table__
assert isinstance(_RUNS, Table) and isinstance(_STATES, Table)
_INSERT_RUNS, _INSERT_STATES = insert(_RUNS), insert(_STATES)
_SCHEDULED = StateType.SCHEDULED


def checked_parameters(
    dep: m.Deployment,
    body: s.DeploymentRunRequest,
    parameter_sets: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Each run's parameters (one set when ``parameter_sets`` is None), all checked with the
    request's job variables and tags: ``InvalidInput`` (422) before any write, naming the
    set's index and the parameter."""
    base = {**dep.parameters, **body.parameters}
    if parameter_sets is None:
        check_parameters(dep.parameter_schema, base)
        merged = [base]
    else:
        merged = [{**base, **one} for one in parameter_sets]
        check_parameter_sets(dep.parameter_schema, merged)
    template = dep.queue.pool.base_job_template
    merge_variables(template, dep.job_variables, body.job_variables, complete=True)
    run_tags(dep, body.tags)
    return merged


def check_parent(session: Session, body: s.DeploymentRunRequest) -> None:
    """The task run a child run names as its parent exists (``NotFound`` otherwise)."""
    parent = body.parent_task_run_id
    if parent is not None and session.get(m.TaskRun, parent) is None:
        raise NotFound(f"parent task run {parent!r} not found")


def run_tags(dep: m.Deployment, tags: Sequence[str]) -> list[str]:
    """A run's tags: its deployment's and those its request adds (Prefect's union), at
    most ``MAX_TAGS`` in all (``InvalidInput`` otherwise)."""
    merged = sorted({*dep.tags, *tags})
    if len(merged) > s.MAX_TAGS:
        raise InvalidInput(
            f"tags: a run has at most {s.MAX_TAGS} tags, its deployment's included "
            f"({len(merged)} asked for)"
        )
    return merged


def insert_requested(
    session: Session,
    dep: m.Deployment,
    body: s.DeploymentRunRequest,
    parameter_sets: Sequence[dict[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """``insert_runs`` with what the request ``body`` asks of every run."""
    return insert_runs(
        session,
        dep,
        parameter_sets,
        job_variables=body.job_variables,
        scheduled_time=body.scheduled_time,
        name=body.name,
        priority=body.priority,
        tags=body.tags,
        parent_task_run_id=body.parent_task_run_id,
        now=now,
    )


def insert_runs(
    session: Session,
    dep: m.Deployment,
    parameter_sets: Sequence[dict[str, Any]],
    *,
    job_variables: dict[str, Any],
    scheduled_time: datetime | None,
    name: str | None,
    priority: int | None,
    now: datetime,
    tags: Sequence[str] = (),
    parent_task_run_id: str | None = None,
) -> list[dict[str, Any]]:
    """One Scheduled run of ``dep`` per parameter set (checked already), each with its
    state row and its Scheduled event; returns the runs' rows (``documents.flow_run_of``
    reads them). A run's tags are the deployment's and ``tags``, as Prefect merges them."""
    if scheduled_time is not None and scheduled_time.tzinfo is None:
        scheduled_time = scheduled_time.replace(tzinfo=UTC)
    merged_tags = run_tags(dep, tags)
    queue = dep.queue
    shared = {
        "flow_id": dep.flow_id,
        "deployment_id": dep.id,
        "queue_id": dep.queue_id,
        "schedule_id": None,
        "parent_task_run_id": parent_task_run_id,
        "job_variables": job_variables,
        "state_type": _SCHEDULED,
        "state_name": _SCHEDULED.display_name,
        "state_message": None,
        "state_timestamp": now,
        "scheduled_time": scheduled_time or now,
        "start_time": None,
        "end_time": None,
        "claim_token": None,
        "worker_name": None,
        "infrastructure_id": None,
        "infrastructure_details": None,
        "priority": priority if priority is not None else dep.priority,
        "alive_until": None,
        "heartbeat_seconds": None,
        "result_ref": None,
        "tags": merged_tags,
        "created": now,
    }
    rows = [
        {"id": m.new_id(), "name": name or run_name(), "parameters": parameters, **shared}
        for parameters in parameter_sets
    ]
    session.execute(_INSERT_RUNS, rows)
    state = {"type": _SCHEDULED, "name": _SCHEDULED.display_name, "message": None}
    session.execute(
        _INSERT_STATES, [{"flow_run_id": r["id"], "timestamp": now, **state} for r in rows]
    )
    _scheduled_events(session, dep, rows, now)
    names = {
        "flow_name": dep.flow.name,
        "deployment_name": dep.name,
        "pool_name": queue.pool.name,
        "queue_name": queue.name,
    }
    return [row | names for row in rows]


def _scheduled_events(
    session: Session, dep: m.Deployment, rows: list[dict[str, Any]], now: datetime
) -> None:
    """``flowyard.flow-run.Scheduled`` per run, as ``events.flow_run_state`` words it."""
    queue = dep.queue
    flow = (dep.flow.id, dep.flow.name)
    pool_queue = (queue.pool.id, queue.pool.name, queue.id, queue.name)
    run_tags = rows[0]["tags"] if rows else ()  # the same for every run of a request
    _, found = events.flow_run_labels("", "", flow, (dep.id, dep.name), pool_queue, run_tags)
    kind = _SCHEDULED.value
    payload = events.state_payload(None, kind, _SCHEDULED.display_name, None, now)
    event_name = f"flowyard.flow-run.{_SCHEDULED.display_name}"
    for row in rows:
        about = events.resource("flow-run", row["id"], row["name"])
        events.record(session, event_name, about, found, payload, occurred=now)


def enqueue_effects(dep: m.Deployment, rows: list[dict[str, Any]]) -> list[QueueEffect]:
    """What queues the new runs of ``dep`` in Redis once their transaction committed."""
    pool, queue = dep.queue.pool.name, dep.queue.name
    return [
        QueueEffect(
            pool,
            queue,
            row["id"],
            enqueue_at=row["scheduled_time"].timestamp(),
            deployment_id=dep.id,
            priority=row["priority"],
        )
        for row in rows
    ]
