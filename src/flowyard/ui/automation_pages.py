"""Automations in the web UI: the list (name, enabled, trigger type, last firing), one
automation (its document as YAML, its latest firings with each action's status, attempts
and error; Pause/Resume for admins) and the form that creates or edits one
(``automation_form``), kept live by the stream's ``view=automation``
(``automation_feed``: the events about the automation, its firings and their actions'
outcomes among them).

Read as the API reads them (``api.automations``); Pause and Resume are the API's
``PATCH /api/automations/{id}``, sent by the page's script with the session's CSRF
token, so the API decides who may (a viewer's is refused whatever the page shows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from flowyard.errors import InvalidInput, NotFound
from flowyard.orchestrator import event_queries as queries
from flowyard.orchestrator.api import automations as api
from flowyard.orchestrator.runtime import Orch
from flowyard.schemas import automations as a
from flowyard.store import models as m
from flowyard.ui import feeds, views
from flowyard.ui.automation_choices import Choices, read_choices
from flowyard.ui.automation_form import form_context

PAGE = 100  # automations a page, by name
FIRINGS = 25  # the latest firings shown
RESOURCE = "flowyard.automation."  # the resource id of an automation's events, before its id


@dataclass(frozen=True)
class Listed:
    automation: a.Automation
    last_fired: datetime | None


def read_list(session: Session, after: str, limit: int) -> tuple[list[Listed], str | None]:
    """Automations by name after ``after``, each with its last firing; the next page's
    ``after`` (None on the last page)."""
    query = select(m.Automation).order_by(m.Automation.name).limit(limit + 1)
    if after:
        query = query.where(m.Automation.name > after)
    rows = list(session.scalars(query))
    more, rows = len(rows) > limit, rows[:limit]
    fired = select(m.AutomationFiring.automation_id, func.max(m.AutomationFiring.fired))
    fired = fired.where(m.AutomationFiring.automation_id.in_([r.id for r in rows]))
    grouped = session.execute(fired.group_by(m.AutomationFiring.automation_id)).tuples()
    last = {automation_id: when for automation_id, when in grouped}
    found = [Listed(api.document(row), last.get(row.id)) for row in rows]
    return found, (rows[-1].name if more else None)


def as_yaml(automation: a.Automation) -> str:
    """The automation as the document ``flowyard automation create --file`` takes."""
    body = automation.model_dump(
        mode="json", exclude={"id", "created", "updated", "deployment_id"}, exclude_none=True
    )
    body = {k: v for k, v in body.items() if v not in ([], "")}
    return str(yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100))


def read_view(session: Session, ref: str) -> dict[str, Any]:
    """What an automation's page shows: the automation, its latest firings, its deployment."""
    row = api.get_automation(session, ref)
    deployment = session.get(m.Deployment, row.deployment_id) if row.deployment_id else None
    return {
        "automation": api.document(row),
        "firings": api.firings(session, row.id, FIRINGS),
        "deployment": deployment.name if deployment is not None else None,
    }


async def automations_page(request: Request, orch: Orch) -> Response:
    """Every automation by name, a page at a time."""
    after = request.query_params.get("after", "")[:200]

    def read() -> tuple[list[Listed], str | None]:
        with orch.db.read() as session:
            return read_list(session, after, PAGE)

    found, next_after = await orch.in_thread(read)
    context = views.page_context(
        request, nav="automations", automations=found, next_after=next_after, first_page=not after
    )
    return views.render(request, "automations.html", context)


async def automation_page(request: Request, ref: str, orch: Orch) -> Response:
    """One automation: its document and its latest firings with what their actions did."""

    def read() -> dict[str, Any]:
        with orch.db.read() as session:
            after = queries.latest(session)  # first: what follows comes live
            return {**read_view(session, ref), "after": after}

    try:
        data = await orch.in_thread(read)
    except NotFound as exc:
        context = views.page_context(request, nav="automations", message=str(exc))
        return views.render(request, "not_found.html", context, 404)
    context = views.page_context(
        request, nav="automations", document=as_yaml(data["automation"]), **data
    )
    return views.render(request, "automation.html", context)


async def new_automation_page(request: Request, orch: Orch) -> Response:
    """The form that creates an automation (``POST /api/automations``)."""
    return await _form_page(request, orch, None)


async def edit_automation_page(request: Request, ref: str, orch: Orch) -> Response:
    """The form that replaces an automation (``PUT /api/automations/{id}``)."""
    return await _form_page(request, orch, ref)


async def _form_page(request: Request, orch: Orch, ref: str | None) -> Response:
    """The automation form, editing ``ref`` (None: a new one); the lists its fields suggest
    from are read for admins only (a viewer gets no form)."""
    can_change = views.page_context(request)["can_change"]

    def read() -> tuple[a.Automation | None, list[Choices]]:
        with orch.db.read() as session:
            found = api.document(api.get_automation(session, ref)) if ref else None
            return found, read_choices(session) if can_change else []

    try:
        automation, choices = await orch.in_thread(read)
    except NotFound as exc:
        context = views.page_context(request, nav="automations", message=str(exc))
        return views.render(request, "not_found.html", context, 404)
    context = views.page_context(request, nav="automations", **form_context(automation, choices))
    return views.render(request, "automation_form.html", context)


def automation_feed(query: QueryParams, can_change: bool, beat: float) -> feeds.PartsFeed:
    """``view=automation&automation=<id>``: its state and firings again when an event about
    it is stored (changed, paused or resumed, fired or resolved, an action's outcome)."""
    automation_id = query.get("automation", "")[:100]
    if not automation_id:
        raise InvalidInput("automation: the automation's id")

    def render(session: Session) -> dict[str, str]:
        try:
            view = read_view(session, automation_id)
        except NotFound:
            return {"firings": '<p class="error">This automation was deleted.</p>'}
        return {
            "automation-head": views.fragment(
                "_automation_head.html", **view, can_change=can_change
            ),
            "firings": views.fragment("_firings.html", **view),
        }

    return feeds.PartsFeed(m.Event.resource_id == RESOURCE + automation_id, render)


def add_routes(router: APIRouter) -> None:
    """Add the pages to the UI's router (``pages.router``: its /ui prefix, its sign-in check)."""
    for path, page in (
        ("/automations", automations_page),
        ("/automations/new", new_automation_page),  # before {ref}: "new" is no automation
        ("/automations/{ref}", automation_page),
        ("/automations/{ref}/edit", edit_automation_page),
    ):
        router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)
