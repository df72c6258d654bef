"""Deployments: create or update, read, run, and delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic_core import to_json
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from flowyard import schemas as s
from flowyard.blocks import merge_variables
from flowyard.entrypoints import check_entrypoint
from flowyard.errors import Conflict, NotFound
from flowyard.orchestrator import (
    documents,
    events,
    queue_sync,
    run_creation,
    runs,
    single_creates,
)
from flowyard.orchestrator.api import schedules
from flowyard.orchestrator.api.automations import hold_evaluator
from flowyard.orchestrator.api.pools import DEFAULT_QUEUE
from flowyard.orchestrator.lookups import get_deployment, get_flow, get_pool, get_queue
from flowyard.orchestrator.parameters import check_parameters
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.orchestrator.services.scheduler import clear_future_runs
from flowyard.states import StateType
from flowyard.store import models as m

router = APIRouter(prefix="/api/deployments", tags=["deployments"])


@router.post("", status_code=201)
async def create_deployment(body: s.DeploymentCreate, orch: Orch) -> s.Deployment:
    check_entrypoint(body.entrypoint)  # 422 for a malformed one or one leaving `path`

    def upsert() -> tuple[s.Deployment, list[runs.QueueEffect], str | None]:
        with orch.db.session() as session:
            pool = get_pool(session, body.pool_name)
            queue = get_queue(session, pool, body.queue_name or DEFAULT_QUEUE)
            check_parameters(body.parameter_schema, body.parameters, partial=True)
            # runs of schedules get no variables of their own: the deployment's must do
            scheduled = bool(body.schedules)
            merge_variables(pool.base_job_template, body.job_variables, complete=scheduled)
            flow = get_flow(session, body.flow_name, create=True)
            dep = session.scalars(
                select(m.Deployment).where(
                    m.Deployment.flow_id == flow.id, m.Deployment.name == body.name
                )
            ).first() or m.Deployment(flow=flow, name=body.name)
            created = dep.id is None
            before = bool(dep.paused), dep.concurrency_limit
            was = None if created else _comparable(dep)
            old_pool = dep.queue.pool.name if dep.queue_id is not None else None
            excluded = {"flow_name", "pool_name", "queue_name", "schedules", "pull_steps"}
            for field, value in body.model_dump(exclude=excluded).items():
                setattr(dep, field, value)
            dep.pull_steps = [step.model_dump(exclude_none=True) for step in body.pull_steps]
            dep.queue = queue
            session.add(dep)
            session.flush()
            about = events.deployment_related(dep)
            if created:
                events.changed(
                    session, "deployment", dep, "created", {"version": dep.version}, about
                )
            elif was != (now := _comparable(dep)):
                fields = sorted(k for k in now if now[k] != was.get(k)) if was else []
                events.changed(session, "deployment", dep, "updated", {"fields": fields}, about)
                events.pause_and_limit(session, "deployment", dep, before, about)
            effects = []
            if body.schedules is not None:
                effects = schedules.replace_schedules(session, dep, body.schedules)
                session.flush()
            return documents.deployment(dep), effects, old_pool

    doc, effects, old_pool = await orch.in_thread(upsert)
    await queue_sync.sync_deployment_limit(
        orch,
        doc.pool_name,
        doc.id,
        doc.concurrency_limit,
        doc.collision_strategy,
        old_pool=old_pool,
    )
    await queue_sync.apply_many(orch, effects)
    return doc


def _comparable(dep: m.Deployment) -> dict[str, object]:
    """What a deployment update may change (its document, less the time it was updated)."""
    return documents.deployment(dep).model_dump(mode="json", exclude={"updated"})


@router.get("")
async def list_deployments(orch: Orch) -> list[s.Deployment]:
    def read() -> list[s.Deployment]:
        with orch.db.read() as session:
            query = select(m.Deployment).join(m.Flow).order_by(m.Flow.name, m.Deployment.name)
            return [documents.deployment(d) for d in session.scalars(query).all()]

    return await orch.in_thread(read)


@router.get("/{ref:path}")
async def read_deployment(ref: str, orch: Orch) -> s.Deployment:
    def read() -> s.Deployment:
        with orch.db.read() as session:
            return documents.deployment(get_deployment(session, ref))

    return await orch.in_thread(read)


@router.patch("/{ref:path}")
async def update_deployment(ref: str, body: s.DeploymentUpdate, orch: Orch) -> s.Deployment:
    """Change a deployment's concurrency limit (the next claims follow it) or description."""

    def update() -> s.Deployment:
        with orch.db.session() as session:
            dep = get_deployment(session, ref)
            before, was = (bool(dep.paused), dep.concurrency_limit), _comparable(dep)
            if body.concurrency_limit is not None or body.clear_concurrency_limit:
                dep.concurrency_limit = body.concurrency_limit
            if body.description is not None:
                dep.description = body.description
            session.flush()
            now = _comparable(dep)
            if was != now:
                about = events.deployment_related(dep)
                fields = sorted(k for k in now if now[k] != was.get(k))
                events.changed(session, "deployment", dep, "updated", {"fields": fields}, about)
                events.pause_and_limit(session, "deployment", dep, before, about)
            return documents.deployment(dep)

    doc = await orch.in_thread(update)
    await queue_sync.sync_deployment_limit(
        orch, doc.pool_name, doc.id, doc.concurrency_limit, doc.collision_strategy
    )
    return doc


@router.delete("/{ref:path}", status_code=204)
async def delete_deployment(ref: str, orch: Orch) -> None:
    """Delete a deployment with its schedules, its triggers' automations and its runs not
    started yet; its other runs stay (without it). Refused (409) while one is in flight:
    its worker still needs the deployment to run it."""

    def remove() -> list[runs.QueueEffect]:
        with orch.db.session() as session:
            hold_evaluator(session)  # its triggers' automations go with it
            dep = get_deployment(session, ref)
            of_it = m.FlowRun.deployment_id == dep.id
            awaiting_retry = and_(
                m.FlowRun.state_type == StateType.SCHEDULED, m.FlowRun.claim_token.is_not(None)
            )
            in_flight = session.scalar(
                select(func.count()).where(
                    of_it, or_(m.FlowRun.state_type.in_(IN_FLIGHT), awaiting_retry)
                )
            )
            if in_flight:
                raise Conflict(
                    f"deployment {dep.flow.name}/{dep.name} has {in_flight} run(s) in flight: "
                    "cancel them or let them finish first"
                )
            waiting = session.scalars(
                select(m.FlowRun).where(of_it, m.FlowRun.state_type == StateType.SCHEDULED)
            ).all()
            effects = [
                runs.QueueEffect(run.queue.pool.name, run.queue.name, run.id, unqueue=True)
                for run in waiting
                if run.queue is not None
            ]
            session.execute(delete(m.FlowRun).where(m.FlowRun.id.in_([r.id for r in waiting])))
            about = events.deployment_related(dep)
            events.changed(session, "deployment", dep, "deleted", None, about)
            session.delete(dep)
            return effects

    effects = await orch.in_thread(remove)
    await queue_sync.apply_many(orch, effects)


IN_FLIGHT = (StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING)


@router.post("/{ref:path}/pause")
async def pause_deployment(ref: str, orch: Orch) -> s.Deployment:
    """No more scheduled runs: its schedules' runs not started yet are deleted."""
    return await _set_paused(orch, ref, paused=True)


@router.post("/{ref:path}/resume")
async def resume_deployment(ref: str, orch: Orch) -> s.Deployment:
    """Schedules run again from now on; slots that fell in the pause are not caught up."""
    return await _set_paused(orch, ref, paused=False)


async def _set_paused(orch: Orchestrator, ref: str, *, paused: bool) -> s.Deployment:
    def update() -> tuple[s.Deployment, list[runs.QueueEffect]]:
        with orch.db.session() as session:
            dep = get_deployment(session, ref)
            if dep.paused != paused:
                what = "paused" if paused else "resumed"
                about = events.deployment_related(dep)
                events.changed(session, "deployment", dep, what, None, about)
            dep.paused = paused
            effects = []
            if paused:
                schedule_ids = session.scalars(
                    select(m.DeploymentSchedule.id).where(
                        m.DeploymentSchedule.deployment_id == dep.id
                    )
                ).all()
                effects = clear_future_runs(session, schedule_ids)
            session.flush()
            return documents.deployment(dep), effects

    doc, effects = await orch.in_thread(update)
    await queue_sync.apply_many(orch, effects)
    return doc


@router.post("/{ref:path}/runs/bulk", status_code=201, response_model=list[s.FlowRun] | list[str])
async def run_deployment_bulk(
    ref: str, body: s.DeploymentRunBulk, orch: Orch, ids_only: bool = False
) -> Response:
    """Create ``count`` Scheduled runs in one transaction and queue them (each with its own
    state event, as single creates); alike, or one per ``parameter_sets`` item. Every
    run's parameters are checked before anything is written: one bad set refuses all.
    The answer is the runs' documents, or with ``ids_only`` just their ids, in order."""
    made, effects = await orch.in_thread(_create, orch, ref, body, body.parameter_sets)
    await queue_sync.apply_many(orch, effects)
    if ids_only:
        return _created(to_json([row["id"] for row in made]))
    return _created(documents.new_flow_runs_json(made))


@router.post("/{ref:path}/runs", status_code=201, response_model=s.FlowRun)
async def run_deployment(ref: str, body: s.DeploymentRunRequest, orch: Orch) -> Response:
    """Create a Scheduled run and queue it; parameters are checked before anything is written."""
    return _created(documents.new_flow_run_json(await single_creates.create_run(orch, ref, body)))


def _created(content: bytes) -> Response:
    """201 with JSON encoded already (FastAPI would validate every document again)."""
    return Response(content, status_code=201, media_type="application/json")


def _create(
    orch: Orchestrator,
    ref: str,
    body: s.DeploymentRunBulk,
    parameter_sets: list[dict[str, Any]] | None,
) -> tuple[list[dict[str, Any]], list[runs.QueueEffect]]:
    """Check in a read session, then write: the writer's lock (SQLite) is held only for
    the inserts, not for the deployment's read and the parameters' checks."""
    with orch.db.read() as session:
        dep = get_deployment(session, ref)
        merged = run_creation.checked_parameters(dep, body, parameter_sets)
        run_creation.check_parent(session, body)
    if parameter_sets is None:
        merged = merged * body.count
    try:
        with orch.db.session() as session:
            made = run_creation.insert_requested(session, dep, body, merged, datetime.now(UTC))
    except IntegrityError as exc:  # deleted since it was read
        raise NotFound(f"deployment {ref!r} not found") from exc
    return made, run_creation.enqueue_effects(dep, made)
