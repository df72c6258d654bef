"""Pages of flow runs for the API and the UI: filters and keyset (cursor) pages.

Runs are ordered by ``(created, id)``, newest first unless asked oldest first; a cursor
encodes the last row's pair, so the next page is ``WHERE (created, id) < cursor`` (``>``
oldest first) on the ``(created, id)`` index — no ``OFFSET`` scan, no count, and no run
repeated or skipped while new runs arrive. A time range bounds ``created`` on that index.

By start or end time (``order=started`` …, see ``ORDERS``) the same holds on the
``(start_time, id)`` and ``(end_time, id)`` indexes; such a list holds only the runs that
have that time (a run not started has no place among runs by start time).

A name or tag filter that few runs match is read another way on SQLite: those runs by id,
then sorted (``run_search``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, literal, select, tuple_
from sqlalchemy.orm import Session

from flowyard.errors import InvalidInput
from flowyard.orchestrator import run_search, runs
from flowyard.states import StateType
from flowyard.store import models as m

R = m.FlowRun
PAGE = 50
MAX_PAGE = 200
MAX_FILTER_CHARS = 200
ORDERS = {
    "newest": ("created", True),
    "oldest": ("created", False),
    "started": ("start_time", True),
    "started-earliest": ("start_time", False),
    "ended": ("end_time", True),
    "ended-earliest": ("end_time", False),
}
"""``order=``: the time runs are sorted by and whether the latest comes first."""


@dataclass(frozen=True)
class RunFilter:
    """What the list shows; every field narrows (an empty one does not)."""

    state: tuple[StateType, ...] = ()
    flow: str = ""
    deployment: str = ""
    pool: str = ""
    tag: str = ""
    name: str = ""
    since: str = ""
    """Created at or after this instant (ISO 8601; a naive one is UTC)."""
    until: str = ""
    """Created before this instant."""
    order: str = ""
    """One of ``ORDERS``; ``newest`` (the default) is left empty."""

    @classmethod
    def from_query(cls, query: Mapping[str, str], states: Sequence[str]) -> RunFilter:
        """From a query string: ``state`` may repeat or hold a comma-separated list (as in
        ``GET /api/flow_runs``); an unknown state, instant or order is a 422 naming it."""
        texts = {}
        for f in fields(cls)[1:]:
            value = query.get(f.name, "").strip()
            if len(value) > MAX_FILTER_CHARS:
                raise InvalidInput(f"{f.name}: at most {MAX_FILTER_CHARS} characters")
            texts[f.name] = value
        for bound in ("since", "until"):
            if texts[bound]:
                texts[bound] = parse_instant(bound, texts[bound]).isoformat()
        if texts["order"] not in ("", *ORDERS):
            raise InvalidInput(f"order: {texts['order']!r} is not one of {', '.join(ORDERS)}")
        texts["order"] = "" if texts["order"] == "newest" else texts["order"]
        return cls(state=parse_states(states), **texts)

    @property
    def sort_field(self) -> str:
        """The run's time the list is sorted by: ``created``, ``start_time``, ``end_time``."""
        return ORDERS[self.order or "newest"][0]

    @property
    def latest_first(self) -> bool:
        return ORDERS[self.order or "newest"][1]

    @property
    def sort_column(self) -> Any:
        return getattr(R, self.sort_field)

    def where(self, session: Session) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.state:
            clauses.append(R.state_type.in_(self.state))
        if self.flow:
            clauses.append(R.flow_id.in_(select(m.Flow.id).where(m.Flow.name == self.flow)))
        deployment_id = run_search.in_order(session, R.deployment_id)
        queue_id = run_search.in_order(session, R.queue_id)
        if self.deployment:
            named = select(m.Deployment.id).where(m.Deployment.name == self.deployment)
            clauses.append(deployment_id.in_(named))
        if self.pool:
            queues = select(m.WorkQueue.id).join(m.WorkPool).where(m.WorkPool.name == self.pool)
            clauses.append(queue_id.in_(queues))
        if self.tag:
            clauses.append(run_search.tagged(session, self.tag))
        if self.name:
            clauses.append(run_search.name_matches(session, self.name))
        if self.since:
            clauses.append(R.created >= datetime.fromisoformat(self.since))
        if self.until:
            clauses.append(R.created < datetime.fromisoformat(self.until))
        if self.sort_field != "created":
            clauses.append(self.sort_column.is_not(None))
        return clauses

    def params(self) -> dict[str, str]:
        """The filter as query parameters (empty ones left out), for links and the stream."""
        out = {f.name: getattr(self, f.name) for f in fields(self)[1:] if getattr(self, f.name)}
        if self.state:
            out = {"state": ",".join(s.value for s in self.state), **out}
        return out

    def query_string(self, **extra: str) -> str:
        return urlencode({**self.params(), **{k: v for k, v in extra.items() if v}})


def parse_states(values: Sequence[str]) -> tuple[StateType, ...]:
    found: list[StateType] = []
    for raw in values:
        for part in raw.split(","):
            if not part.strip():
                continue
            try:
                state = StateType(part.strip().upper())
            except ValueError:
                valid = ", ".join(t.value for t in StateType)
                raise InvalidInput(f"state: unknown state {part!r}; use one of {valid}") from None
            if state not in found:
                found.append(state)
    return tuple(found)


def parse_instant(name: str, text: str) -> datetime:
    """An ISO 8601 instant from a query string, in UTC; a naive one is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.replace(" ", "+") if "T" in text else text)
    except ValueError:
        raise InvalidInput(f"{name}: {text!r} is not an ISO 8601 date or time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def encode_cursor(run: m.FlowRun, field: str = "created") -> str:
    """The run's sort time and id; by another time than ``created``, its name too, so that
    a cursor is never read in another order than the one it was made for."""
    pair = [getattr(run, field).isoformat(), run.id]
    raw = json.dumps(pair if field == "created" else [*pair, field]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "created") -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, ident, *made_for = json.loads(raw)
        at = datetime.fromisoformat(value)
        if at.tzinfo is None:  # every cursor given out carries its offset
            raise ValueError("a naive time")
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor: not one this page gave out") from exc
    if (made_for or ["created"]) != [field]:
        raise InvalidInput("cursor: made for another order; start again from the first page")
    return at, str(ident)


def page(
    session: Session,
    where: RunFilter,
    *,
    limit: int,
    cursor: str | None,
    extra: Sequence[ColumnElement[bool]] = (),
) -> tuple[list[m.FlowRun], str | None]:
    """One page of matching runs in the filter's order, and the next page's cursor (None:
    the last page)."""
    clauses = [*where.where(session), *extra]
    column, field = where.sort_column, where.sort_field
    if cursor:
        value, ident = decode_cursor(cursor, field)
        # a row-value comparison: PostgreSQL reads it as a range of the (time, id) index;
        # the equivalent OR of two conditions made it filter every newer run (1M runs: a
        # page half-way down read 500,000 index entries)
        pair, at = tuple_(column, R.id), tuple_(literal(value, column.type), ident)
        clauses.append(pair < at if where.latest_first else pair > at)
    few = run_search.narrowest(session, name=where.name, tag=where.tag)
    if few is not None:  # SQLite: read those runs by id, not the whole sort index
        clauses = [few, *map(run_search.unindexed, clauses)]
    query = select(R).options(*runs.load_options()).where(*clauses)
    if where.latest_first:
        query = query.order_by(column.desc(), R.id.desc())
    else:
        query = query.order_by(column.asc(), R.id.asc())
    query = query.limit(limit + 1)
    found = list(session.scalars(query).unique().all())
    more = len(found) > limit
    found = found[:limit]
    return found, encode_cursor(found[-1], field) if more and found else None


def matching(session: Session, where: RunFilter, ids: Sequence[str]) -> dict[str, m.FlowRun]:
    """Which of the runs ``ids`` the filter shows, by id (for the live list)."""
    if not ids:
        return {}
    query = select(R).options(*runs.load_options()).where(R.id.in_(ids), *where.where(session))
    return {run.id: run for run in session.scalars(query).unique().all()}
