"""The event record, Prefect-compatible in shape, and the limits every stored event keeps.

An event names what happened (``event``, a dotted name such as
``flowyard.flow-run.Failed``), when (``occurred``), to what (``resource``: labels, at least
``flowyard.resource.id``), what else was involved (``related``: resources that also carry a
``flowyard.resource.role``), with an open ``payload``; ``follows`` is the id of an event
known to precede it. Names starting ``flowyard.`` are the server's own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

RESOURCE_ID = "flowyard.resource.id"
RESOURCE_NAME = "flowyard.resource.name"
RESOURCE_ROLE = "flowyard.resource.role"
SYSTEM_PREFIX = "flowyard."
"""Event names the server alone writes, each in the transaction of the change it records."""

MAX_EVENT_NAME = 1024
MAX_LABELS = 500
"""Labels per resource (Prefect's default too)."""
MAX_LABEL_CHARS = 1024
MAX_RELATED = 100
MAX_PAYLOAD_DEPTH = 32
NUL = "\x00"
NUL_REFUSED = "contains the character U+0000, which is not allowed"
DEFAULT_MAX_BYTES = 1_500_000
"""An event's JSON size (Prefect's default): ``FLOWYARD_EVENTS_MAX_SIZE_BYTES``."""


class Event(BaseModel):
    """One event, as sent, stored, listed and streamed."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred: datetime = Field(default_factory=lambda: datetime.now(UTC))
    event: str = Field(min_length=1)
    resource: dict[str, str]
    related: list[dict[str, str]] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    follows: uuid.UUID | None = None

    @property
    def resource_id(self) -> str:
        return self.resource.get(RESOURCE_ID, "")

    def size_bytes(self) -> int:
        return len(self.model_dump_json().encode())


class EventPage(BaseModel):
    """One page of events; ``next_cursor`` fetches the next (None: no more)."""

    events: list[Event]
    next_cursor: str | None = None


class EventFollow(BaseModel):
    """Events stored after a cursor; ``cursor`` is where to ask from next (a position, and
    on PostgreSQL the events past it read already: ``"<position>+<d>,<d>…"``)."""

    events: list[Event]
    cursor: str


def limit_violation(event: Event, max_bytes: int = DEFAULT_MAX_BYTES) -> str | None:
    """Which limit ``event`` breaks, in words naming it (None when it keeps them all)."""
    if len(event.event) > MAX_EVENT_NAME:
        return f"event name is longer than {MAX_EVENT_NAME} characters"
    if NUL in event.event:
        return f"event name {NUL_REFUSED}"
    if not event.resource.get(RESOURCE_ID):
        return f"resource must have a {RESOURCE_ID!r} label"
    if len(event.related) > MAX_RELATED:
        return f"{len(event.related)} related resources exceed the limit of {MAX_RELATED}"
    for where, labels in [("resource", event.resource)] + [
        (f"related[{i}]", r) for i, r in enumerate(event.related)
    ]:
        broken = _labels_violation(where, labels)
        if broken is not None:
            return broken
    if _depth(event.payload) > MAX_PAYLOAD_DEPTH:
        return f"payload is nested deeper than the limit of {MAX_PAYLOAD_DEPTH} levels"
    size = event.size_bytes()
    if size > max_bytes:
        return (
            f"event is {size} bytes, more than the limit of {max_bytes} bytes "
            "(FLOWYARD_EVENTS_MAX_SIZE_BYTES)"
        )
    return None


def _labels_violation(where: str, labels: dict[str, str]) -> str | None:
    """Which limit the labels of the resource ``where`` break, in words (None if none)."""
    if len(labels) > MAX_LABELS:
        return f"{where} has {len(labels)} labels, more than the limit of {MAX_LABELS}"
    long = next((k for k, v in labels.items() if max(len(k), len(v)) > MAX_LABEL_CHARS), None)
    if long is not None:
        return f"{where} label {long[:60]!r} is longer than {MAX_LABEL_CHARS} characters"
    if any(NUL in k or NUL in v for k, v in labels.items()):  # PostgreSQL keeps no NUL
        return f"{where} has a label that {NUL_REFUSED}"
    if where != "resource" and not (labels.get(RESOURCE_ID) and labels.get(RESOURCE_ROLE)):
        return f"{where} must have {RESOURCE_ID!r} and {RESOURCE_ROLE!r} labels"
    return None


def _depth(value: Any) -> int:
    """How deeply ``value`` nests (iteratively: a hostile payload cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_PAYLOAD_DEPTH:
            return level
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def dumps(event: Event) -> str:
    """``event`` as compact JSON (encoded by pydantic-core: a stream publishes thousands)."""
    return event.model_dump_json()
