"""Events from user code: ``emit_event``, Prefect-compatible.

Inside a flow run recorded by a server (a deployed run, or a direct call with
``FLOWYARD_API_URL`` set) the event is sent through the API with the run's credential, and
the current flow run and task run are added to its related resources. Without a server,
``emit_event`` does nothing and returns None, as Prefect's does without one. Network
failures are logged and give None (an event is never worth failing a flow for); an event
over the size limit raises ``EventTooLarge``, and a name in the server's ``flowyard.``
namespace raises ``ValueError``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from flowyard.errors import EventTooLarge
from flowyard.events.schemas import (
    DEFAULT_MAX_BYTES,
    RESOURCE_ID,
    RESOURCE_ROLE,
    SYSTEM_PREFIX,
    Event,
)
from flowyard.sdk.context import get_flow_run_context, get_task_run_context

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

__all__ = ["Event", "EventTooLarge", "emit_event"]

log = structlog.get_logger()

TIGHT_TIMING = timedelta(minutes=5)
"""``follows`` is kept only for an event this close in time (as Prefect does)."""


def emit_event(
    event: str,
    resource: dict[str, str],
    occurred: datetime | None = None,
    related: list[dict[str, str]] | None = None,
    payload: dict[str, Any] | None = None,
    id: uuid.UUID | None = None,  # noqa: A002 - Prefect's signature
    follows: Event | None = None,
    **kwargs: Any,
) -> Event | None:
    """Send an event to the server; the event sent, or None when none was."""
    client = _client()
    if client is None:
        return None
    if event.startswith(SYSTEM_PREFIX):
        raise ValueError(f"event names starting {SYSTEM_PREFIX!r} are reserved for the server")
    occurred = occurred or datetime.now(UTC)
    fields: dict[str, Any] = {
        "event": event,
        "resource": resource,
        "occurred": occurred,
        "related": _with_run(related or []),
        "payload": payload or {},
    }
    if id is not None:
        fields["id"] = id
    if follows is not None and -TIGHT_TIMING < occurred - follows.occurred < TIGHT_TIMING:
        fields["follows"] = follows.id
    sent = Event.model_validate(fields)
    if (size := sent.size_bytes()) > DEFAULT_MAX_BYTES:
        raise EventTooLarge(size, DEFAULT_MAX_BYTES)
    try:
        client.emit_events([sent])
    except Exception:
        log.exception("event_not_sent", event=event)
        return None
    return sent


def _with_run(related: list[dict[str, str]]) -> list[dict[str, str]]:
    """``related``, plus the current flow run and task run when they are not named."""
    named = {r.get(RESOURCE_ID) for r in related}
    found = [dict(r) for r in related]
    flow_run, task_run = get_flow_run_context(), get_task_run_context()
    for kind, context in (("flow-run", flow_run), ("task-run", task_run)):
        if context is None or context.id is None:
            continue
        ident = f"flowyard.{kind}.{context.id}"
        if ident not in named:
            found.append({RESOURCE_ID: ident, RESOURCE_ROLE: kind})
    return found


def _client() -> FlowyardClient | None:
    """The current run's client, else the direct-call client (None without a server)."""
    context = get_flow_run_context()
    if context is not None and context.client is not None:
        return context.client
    from flowyard.sdk.api import direct_run_client

    return direct_run_client()
