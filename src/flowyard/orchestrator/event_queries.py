"""Reading events back: filters, keyset pages, following, and the retention pass.

Pages are ordered by ``(occurred, seq)``, newest first by default; a cursor is an opaque
encoding of the last event's position, so a page never repeats or skips an event while
new ones arrive (they land before the first page, or after the last when oldest first).
Following reads by ``seq`` (the order events were stored in) after a known position
(``FollowCursor``, ``read_after``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import Session

from flowyard.errors import InvalidInput
from flowyard.events.schemas import Event
from flowyard.orchestrator.events import document
from flowyard.store import models as m

E, R = m.Event, m.EventRelated


@dataclass(frozen=True)
class EventFilter:
    """What to list: each field narrows; several values of one field are alternatives.

    Names and resource ids are patterns: ``*`` matches any text, so ``flowyard.flow-run.*``
    is a prefix and ``*.Failed`` a suffix; without ``*`` the match is exact."""

    event: list[str] = field(default_factory=list)
    resource_id: list[str] = field(default_factory=list)
    resource_name: list[str] = field(default_factory=list)
    related_id: list[str] = field(default_factory=list)
    related_role: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        clauses = [_any(E.event, self.event), _any(E.resource_id, self.resource_id)]
        clauses.append(_any(E.resource_name, self.resource_name))
        if self.related_id or self.related_role:
            inner = select(R.event_id).where(
                _any(R.resource_id, self.related_id), _any(R.role, self.related_role)
            )
            clauses.append(E.id.in_(inner))
        if self.since is not None:
            clauses.append(E.occurred >= self.since)
        if self.until is not None:
            clauses.append(E.occurred <= self.until)
        return clauses


def _any(column: Any, patterns: list[str]) -> ColumnElement[bool]:
    if not patterns:
        return and_(True)
    return or_(*(_match(column, p) for p in patterns))


def _match(column: Any, pattern: str) -> ColumnElement[bool]:
    if "*" not in pattern:
        return column == pattern  # type: ignore[no-any-return]
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped.replace("*", "%"), escape="\\")  # type: ignore[no-any-return]


def encode_cursor(row: m.Event, order: str) -> str:
    raw = json.dumps([row.occurred.isoformat(), row.seq, order]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, order: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        occurred, seq, made_for = json.loads(raw)
        position = datetime.fromisoformat(occurred), int(seq)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor is not one this API gave out") from exc
    if made_for != order:
        raise InvalidInput(f"cursor was made for order={made_for}, not order={order}")
    return position


def page(
    session: Session, where: EventFilter, *, order: str, limit: int, cursor: str | None
) -> tuple[list[Event], str | None]:
    """One page of matching events and the cursor of the next (None when this is the last)."""
    newest = order == "desc"
    query = select(E).where(*where.where())
    if cursor is not None:
        occurred, seq = decode_cursor(cursor, order)
        if newest:
            after = or_(E.occurred < occurred, and_(E.occurred == occurred, E.seq < seq))
        else:
            after = or_(E.occurred > occurred, and_(E.occurred == occurred, E.seq > seq))
        query = query.where(after)
    keys = (E.occurred.desc(), E.seq.desc()) if newest else (E.occurred.asc(), E.seq.asc())
    rows = session.scalars(query.order_by(*keys).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1], order) if more else None
    return [document(r) for r in rows], next_cursor


MAX_EARLY = 1000
"""Events sent early (before they settled) that a follower remembers; beyond, new ones wait
to settle."""
CURSOR_EARLY = 200
"""Early events a follow cursor holds: its text stays short enough for a URL."""
CURSOR_CHARS = 20 * (CURSOR_EARLY + 1)
CURSOR_PATTERN = r"^[0-9]+(\.[0-9]+(,[0-9]+)*)?$"


@dataclass(frozen=True)
class FollowCursor:
    """Where a follower is: every event up to ``position`` was read (or did not match), and
    ``early`` holds those past it read before they settled (PostgreSQL).

    Written ``<position>`` or ``<position>.<d>,<d>…``, each ``d`` an early event's distance
    past the position (characters a query string carries as they are: a ``+`` would
    arrive as a space)."""

    position: int
    early: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str) -> FollowCursor:
        """A cursor this API gave out (or a bare position); 422 for anything else."""
        head, dot, tail = text.partition(".")
        try:
            position = int(head)
            gaps = [int(gap) for gap in tail.split(",")] if dot else []
        except ValueError:
            raise InvalidInput(f"after: {text[:40]!r} is not a follow cursor") from None
        early = [position + gap for gap in gaps]
        fits = position >= 0 and all(gap > 0 for gap in gaps) and len(gaps) <= CURSOR_EARLY
        if not fits or max([position, *early]) >= 2**63:  # a store's positions are int64
            raise InvalidInput(f"after: {text[:40]!r} is not a follow cursor")
        return cls(position, frozenset(early))

    def __str__(self) -> str:
        gaps = ",".join(str(seq - self.position) for seq in sorted(self.early))
        return f"{self.position}.{gaps}" if gaps else str(self.position)


def read_after(
    session: Session,
    where: ColumnElement[bool],
    at: FollowCursor,
    limit: int,
    settled_by: datetime | None,
    columns: tuple[Any, ...] = (E.seq,),
    max_early: int = MAX_EARLY,
) -> tuple[list[tuple[Any, ...]], FollowCursor, bool]:
    """``columns`` (the first is ``seq``) of the events matching ``where`` after ``at``, not
    read yet, oldest first; the cursor past them; and whether the batch was full (read on
    at once).

    ``settled_by`` (PostgreSQL): events received by then have settled. Two transactions may
    commit in the other order than they took their ``seq``; events are inserted as their
    transaction commits, so once an event has settled for a moment, every event with a
    lower ``seq`` is visible too. The cursor's position moves only over settled events
    (a late one with a lower ``seq`` is read when it commits); newer events are read at
    once too and kept in the cursor's ``early`` (at most ``max_early``: the rest wait), so
    that they are not read again."""
    settled = latest(session, settled_by)  # first: on PostgreSQL each statement has its snapshot
    room = max_early - len(at.early)
    top = latest(session) if settled_by is not None and room > 0 else settled
    query = select(*columns).where(E.seq > at.position, E.seq <= top, where)
    rows = session.execute(query.order_by(E.seq).limit(limit)).all()
    # a full batch of settled events: read on at once from its last; one that reaches past
    # the settled ones holds all of those, and the rest waits to be read (or to settle)
    full = len(rows) == limit and rows[-1][0] <= settled
    new_early = [i for i, row in enumerate(rows) if row[0] > settled and row[0] not in at.early]
    if len(new_early) > room:
        rows = rows[: new_early[room]]  # past settled: read later, when there is room
    position = rows[-1][0] if full else max(settled, at.position)
    fresh = [tuple(row) for row in rows if row[0] not in at.early]
    early = frozenset(seq for seq in at.early.union(row[0] for row in rows) if seq > position)
    return fresh, FollowCursor(position, early), full


def after(
    session: Session,
    where: EventFilter,
    at: FollowCursor | None,
    limit: int,
    *,
    settled_by: datetime | None = None,
) -> tuple[list[Event], FollowCursor]:
    """Matching events stored after ``at`` (None: from now on), oldest first, and the cursor
    to ask from next (see ``read_after``)."""
    if at is None:
        return [], FollowCursor(latest(session, settled_by))
    rows, cursor, _ = read_after(
        session, and_(True, *where.where()), at, limit, settled_by, (E.seq, E), CURSOR_EARLY
    )
    return [document(row[1]) for row in rows], cursor


def latest(session: Session, received_by: datetime | None = None) -> int:
    """The highest position stored (of events received by ``received_by``, if given)."""
    query = select(func.max(E.seq))
    if received_by is not None:
        query = query.where(E.received <= received_by)
    return int(session.scalar(query) or 0)


def find(session: Session, event_id: str) -> Event | None:
    row = session.scalars(select(E).where(E.id == event_id)).first()
    return document(row) if row is not None else None


def delete_older(session: Session, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` of the oldest events that occurred before ``before``."""
    rows = session.execute(
        select(E.seq, E.id).where(E.occurred < before).order_by(E.occurred).limit(batch)
    ).all()
    if not rows:
        return 0
    session.execute(delete(R).where(R.event_id.in_([ident for _, ident in rows])))
    session.execute(delete(E).where(E.seq.in_([seq for seq, _ in rows])))
    return len(rows)


def known_ids(session: Session, ids: list[str]) -> set[str]:
    """Which of ``ids`` are stored already (a sender's retry is not stored twice)."""
    return set(session.scalars(select(E.id).where(E.id.in_(ids)))) if ids else set()
