"""``GET /ui/stream``: the one server-sent-events stream pages follow.

A page asks for what it shows (``view=runs`` with its filter, or ``view=run&run=<id>``)
and the server filters the event store for it (``feeds``). Each message's ``id:`` is a
position, so a browser that reconnects with ``Last-Event-ID`` (or ``last_event_id`` when
the page reopens the stream after a hidden spell) gets every change after it; the page
itself gives the position it was rendered at, so nothing between render and connect is
lost either. Bounded: a few streams per viewer and a few hundred per process (429
beyond), messages of at most ``feeds.MAX_MESSAGE_BYTES``, and each stream ends after
``STREAM_SECONDS`` (the browser reconnects at once, and the session is checked again
while it lasts).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.datastructures import QueryParams

from flowyard.errors import InvalidInput
from flowyard.orchestrator import event_queries, run_pages
from flowyard.orchestrator.api.events import SETTLE_SECONDS
from flowyard.orchestrator.auth import Role
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.settings import Settings
from flowyard.ui import automation_pages, event_pages, feeds, pool_pages, views
from flowyard.ui.sessions import Session, SessionStore, caller

MAX_STREAMS_PER_VIEWER = 4  # browsers open at most 6 connections per host over HTTP/1.1
MAX_STREAMS = 256
STREAM_SECONDS = 300.0
KEEPALIVE_SECONDS = 15.0
SESSION_CHECK_SECONDS = 5.0


class StreamSlots:
    """How many streams each viewer (a session, or a client address with keys off) holds."""

    def __init__(self, per_viewer: int, total: int) -> None:
        self.per_viewer, self.total = per_viewer, total
        self.held: Counter[str] = Counter()

    def take(self, viewer: str) -> bool:
        if self.held[viewer] >= self.per_viewer or self.held.total() >= self.total:
            return False
        self.held[viewer] += 1
        return True

    def give_back(self, viewer: str) -> None:
        self.held[viewer] -= 1
        if self.held[viewer] <= 0:
            del self.held[viewer]


class Hold:
    """One stream's slot, given back once: when its messages end, or after the response
    if they never started (a browser gone before the first byte)."""

    def __init__(self, slots: StreamSlots, viewer: str) -> None:
        self.slots, self.viewer, self.held = slots, viewer, True

    async def release(self) -> None:
        if self.held:
            self.held = False
            self.slots.give_back(self.viewer)


slots = StreamSlots(MAX_STREAMS_PER_VIEWER, MAX_STREAMS)


PAGE_FEEDS: dict[str, Callable[[QueryParams, bool, float], feeds.Feed]] = {
    "events": event_pages.events_feed,
    "automation": automation_pages.automation_feed,
    "pools": pool_pages.pools_feed,
    "pool": pool_pages.pool_feed,
}
"""Other pages' feeds: ``(query, viewer is an admin, worker heartbeat seconds) -> feed``."""


def feed_for(request: Request) -> tuple[feeds.Feed, feeds.Position]:
    """The feed the query string asks for, and where to start (422 when malformed)."""
    query = request.query_params
    view = query.get("view", "runs")
    resume = request.headers.get("last-event-id") or query.get("last_event_id")
    at = feeds.Position.parse(resume) if resume else feeds.Position()
    feed: feeds.Feed
    if view == "runs":
        feed = feeds.RunsFeed(run_pages.RunFilter.from_query(query, query.getlist("state")))
    elif view == "run" and query.get("run"):
        level = views.LEVELS.get(query.get("level", "INFO").upper())
        if level is None:
            raise InvalidInput(f"level: use one of {', '.join(views.LEVELS)}")
        can_change = views.viewer(request).role is Role.ADMIN
        tail = query.get("tail", "1") != "0"
        feed = feeds.RunFeed(query["run"][:100], level if tail else None, can_change)
        if not resume and query.get("logs_after", "").isdigit():
            at.logs = int(query["logs_after"])
    elif view in PAGE_FEEDS:
        is_admin = views.viewer(request).role is Role.ADMIN
        beat = request.app.state.orchestrator.settings.worker_heartbeat_seconds
        feed = PAGE_FEEDS[view](query, is_admin, beat)
    else:
        raise InvalidInput(f"view: one of 'runs', 'run' (with run=<id>), {', '.join(PAGE_FEEDS)}")
    return feed, at


async def stream(request: Request) -> StreamingResponse:
    """Server-sent events of what changed on the page that asked (see the module)."""
    orch: Orchestrator = request.app.state.orchestrator
    feed, at = feed_for(request)
    session: Session | None = getattr(request.state, "ui_session", None)
    viewer = request.client.host if request.client else "?"  # keys off: loopback only
    if session is not None:
        viewer = request.state.ui_session_id
    if not slots.take(viewer):
        raise HTTPException(429, "too many live streams open; close a tab or try again soon")
    hold = Hold(slots, viewer)
    check = _session_check(request, orch) if session is not None else None
    body = _messages(orch, feed, at, check, hold)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers=headers,
        background=BackgroundTask(hold.release),
    )


def _session_check(request: Request, orch: Orchestrator) -> _SessionCheck:
    settings: Settings = orch.settings
    store = SessionStore(request.app.state.redis, settings.ui_session_seconds)
    return _SessionCheck(store, request.state.ui_session_id, orch, settings.api_key or "")


class _SessionCheck:
    """Whether the stream's session is still signed in (asked of Redis now and then)."""

    def __init__(self, store: SessionStore, session_id: str, orch: Orchestrator, key: str):
        self.store, self.session_id, self.orch, self.key = store, session_id, orch, key
        self.next_check = time.monotonic() + SESSION_CHECK_SECONDS

    async def signed_in(self) -> bool:
        if time.monotonic() < self.next_check:
            return True
        self.next_check = time.monotonic() + SESSION_CHECK_SECONDS
        found = await self.store.find(self.session_id)
        return found is not None and await caller(self.orch, found, self.key) is not None


async def _messages(
    orch: Orchestrator,
    feed: feeds.Feed,
    at: feeds.Position,
    check: _SessionCheck | None,
    hold: Hold,
) -> AsyncIterator[str]:
    try:
        yield "retry: 2000\n\n"
        ends = time.monotonic() + STREAM_SECONDS
        quiet_since = time.monotonic()
        while time.monotonic() < ends and not orch.stopping:
            if check is not None and not await check.signed_in():
                yield "event: signed-out\ndata: {}\n\n"
                return
            news = orch.event_stream.news()
            batch, settling = await _read(orch, feed, at)
            for text in batch.messages:
                yield text
            if batch.messages:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                quiet_since = time.monotonic()
            if batch.full:
                continue
            if settling:
                await asyncio.sleep(SETTLE_SECONDS / 4)
            else:
                await orch.event_stream.wait_for_news(feed.wait_seconds, since=news)
    finally:
        await hold.release()


async def _read(
    orch: Orchestrator, feed: feeds.Feed, at: feeds.Position
) -> tuple[feeds.Batch, bool]:
    """The feed's next batch, and whether newer events are still settling (PostgreSQL:
    see ``event_queries.after``)."""
    settled_by = None
    if not orch.db.is_sqlite:
        settled_by = datetime.now(UTC) - timedelta(seconds=SETTLE_SECONDS)

    def read() -> tuple[feeds.Batch, bool]:
        with orch.db.read() as session:
            batch = feed.read(session, at, settled_by)
            newest = event_queries.latest(session)
            return batch, settled_by is not None and newest > (at.events or 0)

    return await orch.in_thread(read)
