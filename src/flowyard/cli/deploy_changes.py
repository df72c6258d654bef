"""What ``flowyard deploy`` did to each deployment: created, updated (which fields), or left
unchanged, told apart by reading the deployment before it is written."""

from __future__ import annotations

from typing import Any

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError

DEFAULT_QUEUE = "default"  # the queue the server picks for a deployment that names none


def read_before(api: FlowyardClient, body: s.DeploymentCreate) -> s.Deployment | None:
    """The deployment ``body`` will replace, or None when it is new."""
    try:
        return api.read_deployment(f"{body.flow_name}/{body.name}")
    except ApiError as exc:
        if exc.status_code == 404:
            return None
        raise


def changed_fields(api: FlowyardClient, old: s.Deployment, body: s.DeploymentCreate) -> list[str]:
    """The fields ``body`` gives values other than ``old``'s (schedules only when given)."""
    new = _comparable(body.model_dump(mode="json", exclude={"schedules"}))
    was = _comparable(old.model_dump(mode="json"))
    changed = sorted(field for field in new if new[field] != was.get(field))
    if body.schedules is not None:
        kept = [(x.kind, x.expression, x.timezone) for x in api.list_schedules(old.id)]
        given = [(x.kind, x.expression, x.timezone) for x in body.schedules]
        if sorted(kept) != sorted(given):
            changed.append("schedules")
    return changed


def verdict(old: s.Deployment | None, fields: list[str]) -> str:
    """``created``, ``updated (a, b)`` or ``unchanged``."""
    if old is None:
        return "created"
    return f"updated ({', '.join(fields)})" if fields else "unchanged"


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    doc["queue_name"] = doc.get("queue_name") or DEFAULT_QUEUE
    doc["pull_steps"] = [
        {k: v for k, v in step.items() if v is not None} for step in doc.get("pull_steps") or []
    ]
    return doc
