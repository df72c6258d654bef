"""Tag concurrency limits (``/ui/concurrency-limits``): each limit with its slots in use,
and for admins a form to create or change one and a button to delete it (both sent to
``/api/concurrency_limits`` by the page's script, so ``authority.guard`` decides)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from flowyard import schemas as s
from flowyard.errors import QueueUnavailable
from flowyard.orchestrator.runtime import Orch
from flowyard.store import models as m
from flowyard.ui import views

LISTED = 1000  # limits on the page at most


async def limits_page(request: Request, orch: Orch) -> Response:
    def read() -> list[m.ConcurrencyLimit]:
        with orch.db.read() as session:
            query = select(m.ConcurrencyLimit).order_by(m.ConcurrencyLimit.tag).limit(LISTED)
            return list(session.scalars(query))

    rows = await orch.in_thread(read)
    now = time.time()
    slots: dict[str, int | None] = {}
    for row in rows:
        try:
            slots[row.tag] = await orch.tag_slots.active(row.tag, now)
        except QueueUnavailable:
            slots[row.tag] = None  # shown as unknown
    limits = [
        s.ConcurrencyLimit(
            tag=row.tag, limit=row.limit, slot_decay_per_second=row.slot_decay_per_second,
            active=row.active, active_slots=slots[row.tag] or 0, created=row.created,
            updated=row.updated,
        )
        for row in rows
    ]  # fmt: skip
    context = views.page_context(request, nav="limits", limits=limits, slots=slots, listed=LISTED)
    return views.render(request, "concurrency_limits.html", context)


def add_routes(router: APIRouter) -> None:
    """Add the page to the UI's router (``pages.router``: its /ui prefix, its sign-in check)."""
    router.add_api_route(
        "/concurrency-limits", limits_page, methods=["GET"], response_class=HTMLResponse
    )
