"""Events: emitted by flows and tools, listed with filters and keyset pages, followed live.

Names starting ``flowyard.`` are the server's own: it writes them with the changes they
record, and refuses them from anyone else (422). A run token may emit events about
anything but a server resource other than its own run and its task runs (see
``scopes.events_in_body``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from flowyard import schemas as s
from flowyard.errors import InvalidInput, NotFound
from flowyard.events.schemas import SYSTEM_PREFIX, Event, EventFollow, EventPage, limit_violation
from flowyard.orchestrator import event_queries as queries
from flowyard.orchestrator import events
from flowyard.orchestrator.runtime import Orch, Orchestrator

router = APIRouter(prefix="/api/events", tags=["events"])

MAX_BATCH = 1000
MAX_PAGE = 500
Patterns = Annotated[list[str], Query()]


def _filter(
    event: Patterns = [],  # noqa: B006 - FastAPI reads the default, never mutates it
    resource_id: Patterns = [],  # noqa: B006
    resource_name: Patterns = [],  # noqa: B006
    related_id: Patterns = [],  # noqa: B006
    related_role: Patterns = [],  # noqa: B006
    since: s.Time | None = None,
    until: s.Time | None = None,
) -> queries.EventFilter:
    return queries.EventFilter(
        event, resource_id, resource_name, related_id, related_role, _utc(since), _utc(until)
    )


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def check(batch: list[Event], max_bytes: int) -> None:
    """Refuse (422) a batch with a server event name or an event over a limit."""
    if len(batch) > MAX_BATCH:
        raise InvalidInput(f"{len(batch)} events exceed the limit of {MAX_BATCH} per request")
    for i, event in enumerate(batch):
        if event.event.startswith(SYSTEM_PREFIX):
            raise InvalidInput(
                f"events[{i}]: event names starting {SYSTEM_PREFIX!r} are reserved for the "
                f"server ({event.event!r})"
            )
        if (why := limit_violation(event, max_bytes)) is not None:
            raise InvalidInput(f"events[{i}]: {why}")


@router.post("", status_code=201)
async def emit_events(batch: list[Event], orch: Orch) -> dict[str, int]:
    """Store a batch of events (an event whose id is stored already is skipped)."""
    check(batch, orch.settings.events_max_size_bytes)

    def store() -> int:
        with orch.db.session() as session:
            known = queries.known_ids(session, [str(e.id) for e in batch])
            fresh = {str(e.id): e for e in batch if str(e.id) not in known}
            for event in fresh.values():
                events.add(session, event)
            return len(fresh)

    return {"stored": await orch.in_thread(store)}


@router.get("")
async def list_events(
    orch: Orch,
    order: Literal["desc", "asc"] = "desc",
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    cursor: str | None = None,
    event: Patterns = [],  # noqa: B006
    resource_id: Patterns = [],  # noqa: B006
    resource_name: Patterns = [],  # noqa: B006
    related_id: Patterns = [],  # noqa: B006
    related_role: Patterns = [],  # noqa: B006
    since: s.Time | None = None,
    until: s.Time | None = None,
) -> EventPage:
    """Matching events, newest first (``order=asc``: oldest first), ``limit`` a page."""
    where = _filter(event, resource_id, resource_name, related_id, related_role, since, until)

    def read() -> EventPage:
        with orch.db.read() as session:
            found, next_cursor = queries.page(
                session, where, order=order, limit=limit, cursor=cursor
            )
            return EventPage(events=found, next_cursor=next_cursor)

    return await orch.in_thread(read)


@router.get("/follow")
async def follow_events(
    orch: Orch,
    after: str | None = Query(
        default=None, max_length=queries.CURSOR_CHARS, pattern=queries.CURSOR_PATTERN
    ),
    wait: float = Query(default=5.0, ge=0, le=8),
    limit: int = Query(default=200, ge=1, le=MAX_PAGE),
    event: Patterns = [],  # noqa: B006
    resource_id: Patterns = [],  # noqa: B006
    resource_name: Patterns = [],  # noqa: B006
    related_id: Patterns = [],  # noqa: B006
    related_role: Patterns = [],  # noqa: B006
) -> EventFollow:
    """Events stored after ``after`` (a cursor this API answered, or a position; none
    given: from now), oldest first; waits up to ``wait`` seconds for one to arrive. Ask
    again from the ``cursor`` answered: it says which events were read already."""
    where = _filter(event, resource_id, resource_name, related_id, related_role)
    start = queries.FollowCursor.parse(after) if after is not None else None
    news = orch.event_stream.news()  # before reading: no commit in between goes unnoticed
    found, cursor = await _after(orch, where, start, limit)
    if not found and wait > 0 and start is not None and not orch.stopping:
        # with as many early events as a cursor holds, new ones are read once they settle
        full = len(cursor.early) >= queries.CURSOR_EARLY
        await orch.event_stream.wait_for_news(min(wait, SETTLE_SECONDS) if full else wait, news)
        found, cursor = await _after(orch, where, cursor, limit)
    return EventFollow(events=found, cursor=str(cursor))


SETTLE_SECONDS = 1.0
"""On PostgreSQL, an event has settled this long after it was stored: every event with a
lower position is visible by then (SQLite has one writer at a time: its events become
visible in the order of their positions). Followers read newer ones at once too, and their
cursor remembers them (``event_queries.read_after``)."""


async def _after(
    orch: Orchestrator, where: queries.EventFilter, at: queries.FollowCursor | None, limit: int
) -> tuple[list[Event], queries.FollowCursor]:
    settled_by = None
    if not orch.db.is_sqlite:
        settled_by = datetime.now(UTC) - timedelta(seconds=SETTLE_SECONDS)

    def read() -> tuple[list[Event], queries.FollowCursor]:
        with orch.db.read() as session:
            return queries.after(session, where, at, limit, settled_by=settled_by)

    return await orch.in_thread(read)


@router.get("/{event_id}")
async def read_event(event_id: str, orch: Orch) -> Event:
    def read() -> Event | None:
        with orch.db.read() as session:
            return queries.find(session, event_id)

    found = await orch.in_thread(read)
    if found is None:
        raise NotFound(f"event {event_id!r} not found")
    return found
