"""Store rows → API documents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_json

from flowyard import schemas as s
from flowyard.orchestrator.schedules import ScheduleSpec, next_times
from flowyard.store import models as m


def work_pool(pool: m.WorkPool, *, status: str) -> s.WorkPool:
    return s.WorkPool(
        id=pool.id,
        name=pool.name,
        type=pool.type,
        description=pool.description,
        concurrency_limit=pool.concurrency_limit,
        paused=pool.paused,
        base_job_template=pool.base_job_template,
        status="PAUSED" if pool.paused else status,
        created=pool.created,
    )


def work_queue(
    queue: m.WorkQueue, *, pool_name: str, ready: int = 0, running: int = 0
) -> s.WorkQueue:
    return s.WorkQueue(
        id=queue.id,
        pool_name=pool_name,
        name=queue.name,
        priority=queue.priority,
        concurrency_limit=queue.concurrency_limit,
        paused=queue.paused,
        fair=queue.fair,
        description=queue.description,
        ready=ready,
        running=running,
    )


def deployment(dep: m.Deployment) -> s.Deployment:
    return s.Deployment(
        id=dep.id,
        name=dep.name,
        flow_id=dep.flow_id,
        flow_name=dep.flow.name,
        entrypoint=dep.entrypoint,
        path=dep.path,
        pool_name=dep.queue.pool.name,
        queue_name=dep.queue.name,
        parameters=dep.parameters,
        parameter_schema=dep.parameter_schema,
        job_variables=dep.job_variables,
        tags=dep.tags,
        description=dep.description,
        version=dep.version,
        paused=dep.paused,
        catch_up=dep.catch_up,
        late_after_seconds=dep.late_after_seconds,
        crash_retries=dep.crash_retries,
        concurrency_limit=dep.concurrency_limit,
        collision_strategy=dep.collision_strategy,
        pull_steps=[s.PullStep.model_validate(step) for step in dep.pull_steps or []],
        blocks=dep.blocks or [],
        priority=dep.priority,
        created=dep.created,
        updated=dep.updated,
    )


def state(run: m.FlowRun) -> s.StateDoc:
    return s.StateDoc(
        type=run.state_type,
        name=run.state_name,
        message=run.state_message,
        timestamp=run.state_timestamp,
    )


RUN_COLUMNS = (
    "id", "name", "flow_id", "deployment_id", "parameters", "job_variables", "state_type",
    "state_name", "state_message", "state_timestamp", "scheduled_time", "start_time",
    "end_time", "worker_name", "infrastructure_id", "created", "priority",
    "parent_task_run_id", "result_ref", "tags",
)  # fmt: skip
"""The ``flow_runs`` columns a flow-run document shows."""


def flow_run(run: m.FlowRun) -> s.FlowRun:
    """The document of a stored run (its flow, deployment and queue are loaded if needed)."""
    queue = run.queue
    return flow_run_of(
        {column: getattr(run, column) for column in RUN_COLUMNS}
        | {
            "flow_name": run.flow.name,
            "deployment_name": run.deployment.name if run.deployment else None,
            "pool_name": queue.pool.name if queue else None,
            "queue_name": queue.name if queue else None,
            "infrastructure_details": run.infrastructure_details,
        }
    )


def flow_run_of(row: Mapping[str, Any]) -> s.FlowRun:
    """The document of a run from its ``RUN_COLUMNS`` and its ``flow_name``,
    ``deployment_name``, ``pool_name`` and ``queue_name``: an SQL row (as a claim reads
    its runs) or the values of a stored run (``flow_run``)."""
    return s.FlowRun.model_validate(_flow_run_fields(row))


def new_flow_runs_json(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """The JSON of ``flow_run_of`` for runs this request has just written from values it
    checked: encoded without building and validating a document per run (for 1,000 runs
    of a bulk create that cost more than writing them)."""
    return to_json([_flow_run_fields(row) for row in rows])


def new_flow_run_json(row: Mapping[str, Any]) -> bytes:
    """``new_flow_runs_json`` of one run: its document, not a list."""
    return to_json(_flow_run_fields(row))


def _flow_run_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of ``s.FlowRun``, in its order."""
    return {
        "id": row["id"],
        "name": row["name"],
        "flow_id": row["flow_id"],
        "flow_name": row["flow_name"],
        "deployment_id": row["deployment_id"],
        "deployment_name": row["deployment_name"],
        "pool_name": row["pool_name"],
        "queue_name": row["queue_name"],
        "parameters": row["parameters"],
        "job_variables": row["job_variables"],
        "state": {
            "type": row["state_type"],
            "name": row["state_name"],
            "message": row["state_message"],
            "timestamp": row["state_timestamp"],
        },
        "scheduled_time": row["scheduled_time"],
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "worker_name": row["worker_name"],
        "infrastructure_id": row["infrastructure_id"],
        "created": row["created"],
        "infrastructure_details": row.get("infrastructure_details") or {},
        "priority": row["priority"],
        "parent_task_run_id": row["parent_task_run_id"],
        "tags": row.get("tags") or [],
        "result": _result_ref(row["result_ref"]),
    }


def state_row(row: m.FlowRunState) -> s.StateDoc:
    return s.StateDoc(type=row.type, name=row.name, message=row.message, timestamp=row.timestamp)


def task_run(row: m.TaskRun) -> s.TaskRun:
    return s.TaskRun(
        id=row.id,
        flow_run_id=row.flow_run_id,
        caller_flow_run_id=row.caller_flow_run_id,
        name=row.name,
        task_key=row.task_key,
        state_type=row.state_type,
        state_name=row.state_name,
        message=row.message,
        start_time=row.start_time,
        end_time=row.end_time,
        created=row.created,
        parameters=row.parameters or {},
        tags=row.tags or [],
        task_version=row.task_version,
        task_inputs=row.task_inputs or {},
        cache_key=row.cache_key,
        run_count=row.run_count or 0,
        result=_result_ref(row.result_ref),
    )


def _result_ref(stored: dict[str, Any] | None) -> s.ResultRef | None:
    return s.ResultRef.model_validate(stored) if stored else None


def log(row: m.Log) -> s.Log:
    return s.Log.model_validate(row)


def worker(row: m.Worker, *, now: datetime, heartbeat_seconds: float) -> s.Worker:
    recent = now - row.last_heartbeat <= timedelta(seconds=3 * heartbeat_seconds)
    online = recent and bool(row.online)  # False once it said goodbye or went silent
    return s.Worker(
        id=row.id,
        name=row.name,
        pool_name=row.pool.name,
        type=row.type,
        status="ONLINE" if online else "OFFLINE",
        last_heartbeat=row.last_heartbeat,
    )


def schedule(sch: m.DeploymentSchedule, *, upcoming: int = 0) -> s.Schedule:
    """The schedule, with its next ``upcoming`` due times when it is active."""
    doc = s.Schedule.model_validate(sch)
    if upcoming and sch.active:
        spec = ScheduleSpec(sch.kind, sch.expression, sch.timezone, sch.anchor_date)
        doc.next_times = next_times(spec, datetime.now(UTC), count=upcoming)
    return doc
