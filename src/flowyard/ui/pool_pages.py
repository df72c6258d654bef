"""The operator's console: work pools (``/ui/pools``) and one pool (``/ui/pools/{name}``).

Pages show what ``pool_view`` reads; what an operator changes (pause, limits, a queue's
priority, fair mode) the page's script sends to the pools API (``PATCH
/api/work_pools/...``), so ``authority.guard`` decides it. Pages follow the stream for
pool, queue and worker events (``view=pools``, ``view=pool&pool=<name>``); queue depths and
heartbeats in between are shown as of the page's rendering (a Refresh link).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import ColumnElement, exists, literal, or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from flowyard.errors import InvalidInput, NotFound
from flowyard.orchestrator import event_queries as queries
from flowyard.orchestrator.runtime import Orch
from flowyard.store import models as m
from flowyard.ui import feeds, pool_view, views

E, R = m.Event, m.EventRelated
POOL_EVENTS = ("flowyard.work-pool.", "flowyard.work-queue.", "flowyard.worker.")


async def pools_page(request: Request, orch: Orch) -> Response:
    """Every work pool: status, paused, limit and slots in use."""
    beat = orch.settings.worker_heartbeat_seconds

    def read() -> dict[str, Any]:
        with orch.db.read() as session:
            after = queries.latest(session)
            return {"pools": pool_view.read_pools(session, beat), "after": after}

    context = views.page_context(request, nav="pools", **await orch.in_thread(read))
    return views.render(request, "pools.html", context)


async def pool_page(request: Request, name: str, orch: Orch) -> Response:
    """One pool: queues in claim order, limits, workers, late runs."""
    beat = orch.settings.worker_heartbeat_seconds

    def read() -> dict[str, Any]:
        with orch.db.read() as session:
            after = queries.latest(session)
            return {"view": pool_view.read_pool(session, name, beat), "after": after}

    try:
        data = await orch.in_thread(read)
    except NotFound as exc:
        context = views.page_context(request, nav="pools", message=str(exc))
        return views.render(request, "not_found.html", context, 404)
    context = views.page_context(request, nav="pools", **data)
    return views.render(request, "pool.html", context)


def add_routes(router: APIRouter) -> None:
    """Add the pages to the UI's router (``pages.router``: its /ui prefix, its sign-in check)."""
    for path, page in (("/pools", pools_page), ("/pools/{name}", pool_page)):
        router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)


# -- live --------------------------------------------------------------------------------


def _pool_events() -> ColumnElement[bool]:
    return or_(*(E.event.like(prefix + "%") for prefix in POOL_EVENTS))


def pools_feed(query: QueryParams, can_change: bool, beat: float) -> feeds.PartsFeed:
    """``view=pools``: the table again when a pool, queue or worker changes."""

    def render(session: Session) -> dict[str, str]:
        found = pool_view.read_pools(session, beat)
        return {"pools-table": views.fragment("_pools_table.html", pools=found)}

    return feeds.PartsFeed(_pool_events(), render)


def pool_feed(query: QueryParams, can_change: bool, beat: float) -> feeds.PartsFeed:
    """``view=pool&pool=<name>``: the pool's parts again when it, one of its queues or one
    of its workers changes (not at every run's state change: a busy pool would flicker)."""
    name = query.get("pool", "")[:100]
    if not name:
        raise InvalidInput("pool: the work pool's name")

    def render(session: Session) -> dict[str, str]:
        try:
            view = pool_view.read_pool(session, name, beat)
        except NotFound:
            return {"pool-parts": '<p class="error">This work pool was deleted.</p>'}
        html = views.fragment("_pool_parts.html", view=view, can_change=can_change)
        return {"pool-parts": html}

    pool_ids = select(m.WorkPool.id).where(m.WorkPool.name == name).scalar_subquery()
    resource = literal("flowyard.work-pool.") + pool_ids
    # correlated: checked only for the few pool, queue and worker events after the
    # stream's position (not a list of every event ever related to the pool: its runs')
    related = exists().where(R.event_id == E.id, R.resource_id == resource, R.role == "work-pool")
    about = _pool_events() & or_(E.resource_id == resource, related)
    return feeds.PartsFeed(about, render)
