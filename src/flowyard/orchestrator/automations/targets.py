"""What an action acts on: the target it names (``source: selected``), or the resource of
that kind the triggering event is about (``inferred``): the event's own resource when it
is of that kind, else its first related resource in the role of that kind (a flow run's
events relate its ``deployment``, ``work-pool`` and ``work-queue``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowyard.errors import InvalidInput, NotFound
from flowyard.events.schemas import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from flowyard.store import Database
from flowyard.store import models as m

Event = Mapping[str, Any] | None


def resource_labels(event: Event, kind: str) -> Mapping[str, Any] | None:
    """The labels of the ``kind`` (``flow-run``, ``deployment``…) ``event`` is about."""
    if not event:
        return None
    prefix = f"flowyard.{kind}."
    resource = event.get("resource") or {}
    if str(resource.get(RESOURCE_ID, "")).startswith(prefix):
        return dict(resource)
    for related in event.get("related") or []:
        ident = str(related.get(RESOURCE_ID, ""))
        if related.get(RESOURCE_ROLE) == kind and ident.startswith(prefix):
            return dict(related)
    return None


def resource_of(event: Event, kind: str) -> str | None:
    """The id of the ``kind`` ``event`` is about, if any."""
    labels = resource_labels(event, kind)
    return None if labels is None else str(labels[RESOURCE_ID]).removeprefix(f"flowyard.{kind}.")


def target(action: Any, event: Event, kind: str, selected: str | None) -> str:
    """The ``selected`` reference, or the id of the ``kind`` the event is about."""
    if action.source == "selected":
        if not selected:
            raise InvalidInput(f"the action names no {kind.replace('-', ' ')}")
        return selected
    return inferred(event, kind)


def inferred(event: Event, kind: str) -> str:
    found = resource_of(event, kind)
    if found is None:
        raise InvalidInput(f"the triggering event is not about a {kind.replace('-', ' ')}")
    return found


def pool_name(action: Any, event: Event, db: Database) -> str:
    """The work pool's name (the API's reference to a pool)."""
    if action.source == "selected":
        return target(action, event, "work-pool", action.work_pool)
    labels = resource_labels(event, "work-pool")
    if labels is not None and labels.get(RESOURCE_NAME):
        return str(labels[RESOURCE_NAME])
    pool_id = inferred(event, "work-pool")
    with db.read() as session:
        pool = session.get(m.WorkPool, pool_id)
        if pool is None:
            raise NotFound(f"work pool {pool_id!r} not found")
        return pool.name


def queue(action: Any, event: Event, db: Database) -> tuple[str, str]:
    """(pool name, queue name) of ``POOL/QUEUE``, or of a queue's id."""
    ref = target(action, event, "work-queue", action.work_queue)
    if "/" in ref:
        pool, _, name = ref.partition("/")
        return pool, name
    with db.read() as session:
        row = session.get(m.WorkQueue, ref)
        if row is None:
            raise NotFound(f"work queue {ref!r} not found")
        return row.pool.name, row.name
