"""The operator's console: work pools (``/ui/pools``) and one pool (``/ui/pools/{name}``).

Pages show what ``pool_view`` reads; what an operator changes (pause, limits, a queue's
priority, fair mode) the page's script sends to the pools API (``PATCH
/api/work_pools/...``), so ``authority.guard`` decides it. Pages follow the stream for
pool, queue and worker events (``view=pools``, ``view=pool&pool=<name>``); a pool's page
also gets its queue depths when its runs change and its workers' heartbeats as they beat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
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
POOL_EVENTS = (
    "flowyard.work-pool.",
    "flowyard.work-queue.",
    "flowyard.worker.",
    "flowyard.deployment.",
)
DEPTH_SECONDS = 1.0  # a pool page's depths are sent at most this often
IDLE_SECONDS = 15.0


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


def pool_feed(query: QueryParams, can_change: bool, beat: float) -> PoolFeed:
    """``view=pool&pool=<name>``: the pool's parts again when it, one of its queues,
    deployments or workers changes; its depths (``depth_parts``) when one of its runs does."""
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

    def depths(session: Session) -> dict[str, str]:
        try:
            return depth_parts(pool_view.read_pool(session, name, beat))
        except NotFound:
            return render(session)

    def workers(session: Session) -> dict[str, str]:
        try:
            found = pool_view.read_workers(session, name, beat)
        except NotFound:
            return render(session)
        cells = views.templates.get_template("_pool_cells.html").module
        return {"pool-workers": str(cells.workers(found))}  # type: ignore[attr-defined]

    pool_ids = select(m.WorkPool.id).where(m.WorkPool.name == name).scalar_subquery()
    resource = literal("flowyard.work-pool.") + pool_ids
    # correlated: checked only for the events after the stream's position (not a list of
    # every event ever related to the pool)
    related = exists().where(R.event_id == E.id, R.resource_id == resource, R.role == "work-pool")
    runs = E.event.like(feeds.RUN_PREFIX + "%") & related
    about = (_pool_events() & or_(E.resource_id == resource, related)) | runs
    return PoolFeed(about, render, depths, workers, workers_seconds=max(beat, 1.0))


def depth_parts(view: pool_view.PoolView) -> dict[str, str]:
    """The cells that follow the pool's runs, by element id: slots in use, each queue's
    waiting runs, oldest waiting run and running runs, each deployment's running runs, and
    the late runs (no form among them: an operator's half-typed limit stays)."""
    cells = views.templates.get_template("_pool_cells.html").module
    parts = {
        "pool-running": str(cells.pool_running(view.pool)),  # type: ignore[attr-defined]
        "pool-late": str(cells.late_runs(view.late)),  # type: ignore[attr-defined]
    }
    for q in view.queues:
        parts[f"waiting-{q.id}"] = q.waiting_text
        parts[f"oldest-{q.id}"] = str(cells.oldest(q))  # type: ignore[attr-defined]
        parts[f"running-{q.id}"] = str(q.running)
    for d in view.deployments:
        parts[f"dep-running-{d.id}"] = str(d.running)
    return parts


@dataclass
class PoolFeed:
    """A pool's page: its parts again at a change of its configuration or workers, and its
    depths at its runs' state changes, at most once every ``DEPTH_SECONDS`` (a busy pool's
    runs change many times a second; each render counts its queues again). Heartbeats are
    not events: the workers' list is read again every ``workers_seconds`` (the heartbeat
    interval) and sent when a heartbeat or a status changed."""

    about: ColumnElement[bool]
    render: Callable[[Session], dict[str, str]]
    depths: Callable[[Session], dict[str, str]]
    workers: Callable[[Session], dict[str, str]]
    workers_seconds: float = IDLE_SECONDS
    due: float | None = None  # when the depths owed for runs seen meanwhile are sent
    last_depths: float = -DEPTH_SECONDS
    workers_due: float = field(default_factory=time.monotonic)
    workers_shown: dict[str, str] | None = None  # as last sent (None: as the page was drawn)

    @property
    def wait_seconds(self) -> float:
        due = self.workers_due if self.due is None else min(self.due, self.workers_due)
        return max(due - time.monotonic(), 0.01)

    def read(
        self, session: Session, at: feeds.Position, settled_by: datetime | None
    ) -> feeds.Batch:
        found, full = feeds.events_after(session, self.about, at, settled_by)
        now = time.monotonic()
        if any(not rid.startswith(feeds.RUN_PREFIX) for _, rid in found):
            self.due = None  # the whole parts hold the depths and the workers too
            self.workers_shown = None
            return feeds.Batch(
                [feeds.message("swap", at.mark(found[-1][0]), self.render(session))], full
            )
        out = feeds.Batch(full=full)
        if now >= self.workers_due:
            out.messages += self._workers(session, feeds.Position(at.events))
        if found and self.due is None:
            self.due = max(now, self.last_depths + DEPTH_SECONDS)
        if self.due is None or now < self.due:
            return out
        self.due, self.last_depths = None, now
        position = feeds.Position(at.events)
        out.messages.append(feeds.message("swap", position, self.depths(session)))
        return out

    def _workers(self, session: Session, position: feeds.Position) -> list[str]:
        """The workers' list when it changed since the page last got it."""
        self.workers_due = time.monotonic() + self.workers_seconds
        parts = self.workers(session)
        if parts == self.workers_shown:
            return []
        self.workers_shown = parts
        return [feeds.message("swap", position, parts)]
