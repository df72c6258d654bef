"""The events page: the event feed, newest first, filtered by the query string as
``GET /api/events`` is (the same parameter names: ``event``, ``resource_id``,
``related_id``, ``since``, ``until``, ``cursor``, ``limit``), in the API's keyset pages
(``event_queries.page``); the first page kept live by the stream's ``view=events``
(``EventsFeed``), which applies the same filter on the server. Each event opens to
its JSON (escaped, as all text is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import and_
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from flowyard.errors import InvalidInput
from flowyard.events.schemas import Event
from flowyard.orchestrator import event_queries as queries
from flowyard.orchestrator.events import document
from flowyard.orchestrator.runtime import Orch
from flowyard.store import models as m
from flowyard.ui import feeds, views

E = m.Event
PAGE = 50
MAX_PAGE = 500
PATTERNS = ("event", "resource_id", "related_id")
MAX_PATTERNS = 20
LINKS = {"flowyard.flow-run.": "/ui/runs/", "flowyard.automation.": "/ui/automations/"}


def filter_from_query(query: Any) -> queries.EventFilter:
    """The filter the query string names; 422 (``InvalidInput``) naming a bad field."""
    lists: dict[str, list[str]] = {}
    for name in PATTERNS:
        values = [v.strip() for v in query.getlist(name) if v.strip()]
        if len(values) > MAX_PATTERNS or any(len(v) > 1024 for v in values):
            raise InvalidInput(f"{name}: at most {MAX_PATTERNS} patterns of 1024 characters")
        lists[name] = values
    return queries.EventFilter(
        event=lists["event"],
        resource_id=lists["resource_id"],
        related_id=lists["related_id"],
        since=_time(query, "since"),
        until=_time(query, "until"),
    )


def _time(query: Any, name: str) -> datetime | None:
    raw = query.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name}: {raw[:40]!r} is not a time (2026-12-07T05:30)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def params(where: queries.EventFilter) -> list[tuple[str, str]]:
    """The filter as query-string pairs (what a shared URL holds)."""
    pairs = [(name, value) for name in PATTERNS for value in getattr(where, name)]
    pairs += [(n, t.isoformat()) for n, t in (("since", where.since), ("until", where.until)) if t]
    return pairs


def local_input(value: datetime | None) -> str:
    """A time as a ``datetime-local`` input shows it (UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if value else ""


def resource_link(resource_id: str) -> str:
    """The UI page of a resource the UI has one for (else "")."""
    for prefix, page in LINKS.items():
        if resource_id.startswith(prefix) and "." not in resource_id[len(prefix) :]:
            return page + resource_id[len(prefix) :]
    return ""


def _limit(raw: str | None) -> int:
    if not raw:
        return PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidInput(f"limit: a whole number from 1 to {MAX_PAGE}")
    return int(raw)


async def events_page(request: Request, orch: Orch) -> Response:
    """Matching events, newest first, a keyset page at a time; new ones appear live."""
    query = request.query_params
    cursor = query.get("cursor") or None
    try:
        where = filter_from_query(query)
        limit = _limit(query.get("limit"))

        def read() -> tuple[list[Event], str | None, int]:
            with orch.db.read() as session:
                after = queries.latest(session)  # first: what follows comes live
                found, next_cursor = queries.page(
                    session, where, order="desc", limit=limit, cursor=cursor
                )
                return found, next_cursor, after

        found, next_cursor, after = await orch.in_thread(read)
    except InvalidInput as exc:
        context = views.page_context(request, nav="events", error=str(exc))
        context.update(filter=queries.EventFilter(), events=[], next_cursor=None, after=0)
        context.update(first_page=True, filter_qs="", first_qs="", next_qs="")
        return views.render(request, "events.html", context, 422)
    pairs = params(where) + ([("limit", str(limit))] if query.get("limit") else [])
    context = views.page_context(
        request,
        nav="events",
        error=None,
        filter=where,
        events=found,
        next_cursor=next_cursor,
        after=after,
        first_page=cursor is None,
        filter_qs=urlencode(params(where)),
        first_qs=urlencode(pairs),
        next_qs=urlencode([*pairs, ("cursor", next_cursor or "")]),
    )
    return views.render(request, "events.html", context)


# -- live --------------------------------------------------------------------------------


@dataclass
class EventsFeed:
    """New events that the events page's filter matches, in the order they were stored:
    an ``event`` message each (its list item), whose id is its position."""

    where: queries.EventFilter
    wait_seconds: float = 15.0

    def read(
        self, session: Session, at: feeds.Position, settled_by: datetime | None
    ) -> feeds.Batch:
        found, full = feeds.events_after(
            session, and_(True, *self.where.where()), at, settled_by, columns=(E.seq, E)
        )
        out = feeds.Batch(full=full)
        for seq, row in found:
            html = views.fragment("_event_row.html", event=document(row))
            out.messages.append(feeds.message("event", at.mark(seq), {"html": html}))
        return out


def events_feed(query: QueryParams, can_change: bool, beat: float) -> EventsFeed:
    """``view=events&<the page's filter>``."""
    return EventsFeed(filter_from_query(query))


def add_routes(router: APIRouter) -> None:
    """Add the pages to the UI's router (``pages.router``: its /ui prefix, its sign-in check)."""
    router.add_api_route("/events", events_page, methods=["GET"], response_class=HTMLResponse)


views.templates.env.filters.update(local_input=local_input, resource_link=resource_link)
