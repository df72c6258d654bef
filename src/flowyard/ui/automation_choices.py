"""What the automation form suggests for the fields that name something: deployments
(``FLOW/NAME``), work pools, work queues (``POOL/QUEUE``), automations and blocks
(``TYPE/NAME``), read from the store when an admin opens the form.

Each list is a ``<datalist>``: the field stays a text input, so a value not suggested (an
id, a name past the first ``LIMIT``, one made later) is still taken, and the API checks the
reference whatever was typed (``automations.checks.reference_errors``). Each list is the
first ``LIMIT`` by name, read through the tables' unique name indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from flowyard.blocks.notify import NotificationBlock
from flowyard.blocks.registry import block_types
from flowyard.orchestrator.automations.checks import WEBHOOK_BLOCK_TYPE
from flowyard.store import models as m

LIMIT = 200


@dataclass(frozen=True)
class Choices:
    ident: str  # the datalist's id, which the fields name in their list attribute
    what: str  # what they are, plural ("deployments")
    values: list[str]
    more: bool  # more exist than the first LIMIT shown


SUGGESTS = {
    "deployment": "choices-deployments",
    "work_pool": "choices-pools",
    "work_queue": "choices-queues",
    "automation": "choices-automations",
}
"""A field's name → the list it suggests from (a block field's list depends on its action)."""


def list_for(name: str, kind: str) -> str:
    """The id of the list a field ``name`` of an action of type ``kind`` suggests from
    ("" for none)."""
    if name == "block":
        return "choices-webhooks" if kind == "call-webhook" else "choices-notifications"
    return SUGGESTS.get(name, "")


def _notification_types() -> list[str]:
    return sorted(
        slug for slug, model in block_types().items() if issubclass(model, NotificationBlock)
    )


def _queries() -> list[tuple[str, str, Select[*tuple[Any, ...]]]]:
    flows, pools = m.Flow.name, m.WorkPool.name
    found: list[tuple[str, str, Select[*tuple[Any, ...]]]] = [
        (
            "choices-deployments",
            "deployments",
            select(flows, m.Deployment.name).join(m.Flow).order_by(flows, m.Deployment.name),
        ),
        ("choices-pools", "work pools", select(pools).order_by(pools)),
        (
            "choices-queues",
            "work queues",
            select(pools, m.WorkQueue.name).join(m.WorkPool).order_by(pools, m.WorkQueue.name),
        ),
        ("choices-automations", "automations", select(m.Automation.name).order_by("name")),
        (
            "choices-notifications",
            "notification blocks",
            select(m.Block.type, m.Block.name)
            .where(m.Block.type.in_(_notification_types()))
            .order_by(m.Block.type, m.Block.name),
        ),
        (
            "choices-webhooks",
            "webhook blocks",
            select(m.Block.type, m.Block.name)
            .where(m.Block.type == WEBHOOK_BLOCK_TYPE)
            .order_by(m.Block.name),
        ),
    ]
    return found


def read_choices(session: Session, limit: int = LIMIT) -> list[Choices]:
    """Every list, each the first ``limit`` by name (``FLOW/NAME``, ``POOL/QUEUE``,
    ``TYPE/NAME`` for the two-part references)."""
    found = []
    for ident, what, query in _queries():
        rows = session.execute(query.limit(limit + 1)).all()
        values = ["/".join(row) for row in rows[:limit]]
        found.append(Choices(ident, what, values, len(rows) > limit))
    return found
