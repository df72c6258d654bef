"""What a page follows live, read from the event store after a position.

A feed turns the events stored after a position (``seq``, the order they were stored in)
into the page's messages: server-rendered HTML for the rows and parts that changed. It
reads the store as ``GET /api/events/follow`` does (``event_queries``), with each event's
position, so every message can carry the position a reconnecting browser resumes from.

- ``RunsFeed``: flow-run state events of the runs the page's filter may show; a changed
  run's row when the filter shows it, its removal when its new state leaves the filter.
- ``RunFeed``: one run's events (its states, its task runs' by their related run, and
  its background task runs' by their ids) and its new logs at the page's level; its
  positions read ``<event seq>-<log id>``.
- ``PartsFeed``: parts of a page (by element id) rendered again when an event it follows
  is stored (the work-pool pages).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, literal, or_, select
from sqlalchemy.orm import Session

from flowyard.errors import InvalidInput, NotFound
from flowyard.orchestrator import documents, run_pages
from flowyard.orchestrator import event_queries as queries
from flowyard.store import models as m
from flowyard.ui import run_view, views

E, R = m.Event, m.EventRelated
BATCH = 200  # events read at a time
LIVE_LOGS = 50  # log lines per message (each cut to views.MAX_LOG_CHARS)
MAX_MESSAGE_BYTES = 256 * 1024  # a bigger message is replaced by "reload"
RUN_PREFIX = "flowyard.flow-run."
TASK_RUN_PREFIX = "flowyard.task-run."


@dataclass
class Position:
    """Where a stream is: the last event sent (None: from now on) and the last log line.

    ``early``: events past ``events`` already sent before they settled (PostgreSQL, see
    ``events_after``); kept by the stream, not in a message's id."""

    events: int | None = None
    logs: int = 0
    early: set[int] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Position:
        """``"<seq>"`` or ``"<seq>-<log id>"`` (a message's id); 422 for anything else."""
        events, _, logs = text.strip().partition("-")
        try:
            seq, log_id = int(events), int(logs or 0)
        except ValueError:
            raise InvalidInput(f"Last-Event-ID: {text[:40]!r} is not a position") from None
        if min(seq, log_id) < 0:
            raise InvalidInput("Last-Event-ID: positions are not negative")
        return cls(seq, log_id)

    def __str__(self) -> str:
        return f"{self.events}-{self.logs}" if self.logs else str(self.events)

    def mark(self, seq: int) -> Position:
        """The id of a message about event ``seq``: ``seq`` itself once settled; for an
        event sent early, the settled position, so a browser that resumes from it misses
        no event that commits late (it may get the early ones again: messages are idempotent)."""
        events = seq if self.events is None else min(seq, self.events)
        return Position(events, self.logs)


def message(event: str, position: Position, data: Mapping[str, object]) -> str:
    """One server-sent event; too big a message asks the page to reload instead."""
    body = json.dumps(data, separators=(",", ":"))
    if len(body) > MAX_MESSAGE_BYTES:
        event, body = "reload", "{}"
    return f"id: {position}\nevent: {event}\ndata: {body}\n\n"


@dataclass
class Batch:
    messages: list[str] = field(default_factory=list)
    full: bool = False  # more may follow at once: read again before waiting


class Feed(Protocol):
    @property
    def wait_seconds(self) -> float:
        """The longest wait for news between reads (logs are not events)."""
        ...

    def read(self, session: Session, at: Position, settled_by: datetime | None) -> Batch: ...


def events_after(
    session: Session,
    where: ColumnElement[bool],
    at: Position,
    settled_by: datetime | None,
    columns: tuple[Any, ...] = (E.seq, E.resource_id),
) -> tuple[list[tuple[Any, ...]], bool]:
    """``columns`` (the first is ``seq``) of matching events after ``at.events`` not sent
    yet, and whether the batch was full; ``at`` is advanced past what did not match.

    With ``settled_by`` (PostgreSQL), events stored since are read too and sent at once,
    though an event with a lower ``seq`` may still commit: they go in ``at.early`` and are
    not sent again when they settle (``event_queries.read_after``)."""
    if at.events is None:
        at.events = queries.latest(session, settled_by)
        return [], False
    cursor = queries.FollowCursor(at.events, frozenset(at.early))
    rows, cursor, full = queries.read_after(session, where, cursor, BATCH, settled_by, columns)
    at.events, at.early = cursor.position, set(cursor.early)
    return rows, full


@dataclass
class RunsFeed:
    """Rows of the flow-runs list that changed."""

    where: run_pages.RunFilter
    wait_seconds: float = 15.0

    def read(self, session: Session, at: Position, settled_by: datetime | None) -> Batch:
        found, full = events_after(session, E.event.like(RUN_PREFIX + "%"), at, settled_by)
        last: dict[str, int] = {}  # each run once, at its latest event
        for seq, rid in found:
            run_id = rid.removeprefix(RUN_PREFIX)
            last.pop(run_id, None)
            last[run_id] = seq
        # only a run's state changes, so only a state filter can lose a run it showed
        unstated = replace(self.where, state=())
        candidates = run_pages.matching(session, unstated, list(last))
        out = Batch(full=full)
        for run_id, seq in last.items():
            run = candidates.get(run_id)
            if run is None:
                continue  # outside the filter whatever its state: the page never shows it
            field = self.where.sort_field
            shown = not self.where.state or run.state_type in self.where.state
            shown = shown and getattr(run, field) is not None  # by start: once it started
            doc = documents.flow_run(run)
            html = views.fragment("_run_row.html", run=doc, sort_field=field) if shown else ""
            out.messages.append(message("row", at.mark(seq), {"id": run_id, "html": html}))
        return out


@dataclass
class RunFeed:
    """One run's summary, timeline, task runs, background task runs and the input it waits
    for (shown while it is paused for input) when they change; its new logs."""

    run_id: str
    level: int | None  # None: the page shows an earlier page of logs, no tail
    can_change: bool  # the viewer may cancel (the button is shown; the API decides anyway)
    wait_seconds: float = 1.0  # new logs are looked for this often

    def read(self, session: Session, at: Position, settled_by: datetime | None) -> Batch:
        resource = RUN_PREFIX + self.run_id
        related = select(R.event_id).where(R.resource_id == resource, R.role == "flow-run")
        background = select(literal(TASK_RUN_PREFIX) + m.TaskRun.id).where(
            m.TaskRun.caller_flow_run_id == self.run_id
        )  # its background task runs' events name no flow run: they are about these ids
        about = or_(E.resource_id == resource, E.id.in_(related), E.resource_id.in_(background))
        found, full = events_after(session, about, at, settled_by)
        out = Batch(full=full)
        view = None
        if found:
            try:
                view = run_view.read_run(session, self.run_id)
            except NotFound:  # deleted meanwhile: nothing more to show
                return Batch()
        if view is not None:
            parts = {
                "run-summary": views.fragment(
                    "_run_summary.html", view=view, can_change=self.can_change
                ),
                "timeline": views.fragment("_timeline.html", view=view),
                "task-runs": views.fragment("_task_runs.html", view=view),
                "background-runs": views.fragment("_background_runs.html", view=view),
                "run-input-part": views.fragment(
                    "_run_input.html", view=view, can_change=self.can_change
                ),
            }
            out.messages.append(message("swap", at.mark(found[-1][0]), parts))
        if self.level is None:
            return out
        logs, more = run_view.read_logs(
            session, self.run_id, after=at.logs, level=self.level, limit=LIVE_LOGS
        )
        if logs:
            at.logs = logs[-1].id
            html = views.fragment("_log_lines.html", logs=logs)
            out.messages.append(message("logs", Position(at.events, at.logs), {"html": html}))
        out.full = out.full or more
        return out


@dataclass
class PartsFeed:
    """A page's parts rendered again (one ``swap`` message a batch) when an event matching
    ``about`` is stored."""

    about: ColumnElement[bool]
    render: Callable[[Session], dict[str, str]]
    wait_seconds: float = 15.0

    def read(self, session: Session, at: Position, settled_by: datetime | None) -> Batch:
        found, full = events_after(session, self.about, at, settled_by)
        if not found:
            return Batch(full=full)
        return Batch([message("swap", at.mark(found[-1][0]), self.render(session))], full)
