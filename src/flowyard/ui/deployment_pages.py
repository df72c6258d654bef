"""Deployments (``/ui/deployments``) and one deployment (``/ui/deployments/{id}``): its
schedules with their next runs in each schedule's own time zone, pause and resume, and a
run form generated from its flow's parameter schema (``param_form``).

The form and the buttons send their changes to the deployments API (``POST
/api/deployments/{id}/runs``, ``/pause``, ``/resume``, ``PATCH .../schedules/{id}``) from
the page's script, so ``authority.guard`` decides and the API's checks (parameters, job
variables against the pool's template) answer a 422 the page shows next to the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from flowyard import schemas as s
from flowyard.errors import NotFound
from flowyard.orchestrator import documents
from flowyard.orchestrator.lookups import get_deployment
from flowyard.orchestrator.runtime import Orch
from flowyard.states import StateType
from flowyard.store import models as m
from flowyard.ui import param_form, views

LISTED = 500  # deployments on the list page at most
UPCOMING = 3  # next runs shown per schedule


@dataclass
class DeploymentRow:
    doc: s.Deployment
    schedules: int
    next_run: datetime | None


def in_zone(value: datetime, zone: str) -> str:
    """A time as the schedule's own time zone reads it."""
    try:
        local = value.astimezone(ZoneInfo(zone))
    except (KeyError, ValueError):  # an unknown zone: show UTC
        return views.when(value) + " UTC"
    return local.strftime("%Y-%m-%d %H:%M %Z")


views.templates.env.filters["in_zone"] = in_zone


def read_deployments(session: Session) -> list[DeploymentRow]:
    """Deployments by flow and name, with their schedule count and next run (two grouped
    queries over the first ``LISTED``)."""
    found = session.scalars(
        select(m.Deployment)
        .join(m.Flow)
        .options(
            joinedload(m.Deployment.flow),
            joinedload(m.Deployment.queue).joinedload(m.WorkQueue.pool),
        )
        .order_by(m.Flow.name, m.Deployment.name)
        .limit(LISTED)
    ).all()
    ids = [d.id for d in found]
    schedules = dict(
        session.execute(
            select(m.DeploymentSchedule.deployment_id, func.count())
            .where(m.DeploymentSchedule.deployment_id.in_(ids))
            .group_by(m.DeploymentSchedule.deployment_id)
        ).all()
    )
    upcoming = dict(
        session.execute(
            select(m.FlowRun.deployment_id, func.min(m.FlowRun.scheduled_time))
            .where(m.FlowRun.deployment_id.in_(ids), m.FlowRun.state_type == StateType.SCHEDULED)
            .group_by(m.FlowRun.deployment_id)
        ).all()
    )
    return [
        DeploymentRow(documents.deployment(d), schedules.get(d.id, 0), upcoming.get(d.id))
        for d in found
    ]


def read_deployment(session: Session, ref: str) -> dict[str, Any]:
    dep = get_deployment(session, ref)
    schedules = session.scalars(
        select(m.DeploymentSchedule)
        .where(m.DeploymentSchedule.deployment_id == dep.id)
        .order_by(m.DeploymentSchedule.created)
    ).all()
    doc = documents.deployment(dep)
    variables = dep.queue.pool.base_job_template.get("variables", {})
    return {
        "dep": doc,
        "schedules": [documents.schedule(sch, upcoming=UPCOMING) for sch in schedules],
        "fields": param_form.fields(doc.parameter_schema, doc.parameters),
        "variables": variables.get("properties", {}),
        "required_variables": set(variables.get("required", [])),
    }


async def deployments_page(request: Request, orch: Orch) -> Response:
    def read() -> list[DeploymentRow]:
        with orch.db.read() as session:
            return read_deployments(session)

    rows = await orch.in_thread(read)
    context = views.page_context(request, nav="deployments", rows=rows, listed=LISTED)
    return views.render(request, "deployments.html", context)


async def deployment_page(request: Request, ref: str, orch: Orch) -> Response:
    def read() -> dict[str, Any]:
        with orch.db.read() as session:
            return read_deployment(session, ref)

    try:
        data = await orch.in_thread(read)
    except NotFound as exc:
        context = views.page_context(request, nav="deployments", message=str(exc))
        return views.render(request, "not_found.html", context, 404)
    context = views.page_context(request, nav="deployments", **data)
    return views.render(request, "deployment.html", context)


def add_routes(router: APIRouter) -> None:
    """Add the pages to the UI's router (``pages.router``: its /ui prefix, its sign-in check)."""
    for path, page in (("/deployments", deployments_page), ("/deployments/{ref}", deployment_page)):
        router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)
