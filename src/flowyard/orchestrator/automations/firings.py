"""Recording a firing: the firing row, one row per action to run, and its event.

Written in the evaluator's transaction (with the position it read up to, and the windows it
changed), so a firing is recorded exactly once; its actions are queued as RQ jobs after
that transaction commits (``action_queue``), and re-queued by a sweep if the process died
in between. A ``dedupe`` on the automation suppresses a firing whose key acted within the
window: it is recorded (``suppressed``) with no actions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from flowyard.blocks.notify.messages import render
from flowyard.errors import InvalidInput
from flowyard.events.schemas import RESOURCE_ID, RESOURCE_ROLE
from flowyard.orchestrator import events
from flowyard.store import models as m

State = Literal["triggered", "resolved"]


def record(
    session: Session,
    automation: m.Automation,
    state: State,
    event: dict[str, Any] | None,
    labels: dict[str, str],
    *,
    now: datetime,
) -> list[str]:
    """Record that ``automation`` fired (or resolved) because of ``event`` (the triggering
    event's JSON; None for a proactive or metric firing without one); returns the ids of
    the action rows to queue once the transaction commits."""
    suppressed = state == "triggered" and _deduplicated(session, automation, event, labels, now)
    firing = m.AutomationFiring(
        automation_id=automation.id,
        fired=now,
        state=state,
        suppressed=suppressed,
        triggering_event=event,
        labels=labels,
    )
    session.add(firing)
    session.flush()
    todo: list[tuple[str, list[dict[str, Any]]]] = []
    if not suppressed and state == "triggered":
        todo = [("trigger", automation.actions + automation.actions_on_trigger)]
    elif state == "resolved":
        todo = [("resolve", automation.actions_on_resolve)]
    rows = [
        m.AutomationAction(
            firing_id=firing.id,
            automation_id=automation.id,
            index=index,
            when=when,
            action=action,
            status="pending",
            attempts=0,
        )
        for when, actions in todo
        for index, action in enumerate(actions)
    ]
    session.add_all(rows)
    session.flush()
    about = events.resource("automation", automation.id, automation.name)
    related = []
    if event is not None and isinstance(event.get("resource"), dict):
        resource_id = event["resource"].get(RESOURCE_ID)
        if resource_id:
            related.append({RESOURCE_ID: resource_id, RESOURCE_ROLE: "triggering"})
    payload = {
        "firing_id": firing.id,
        "suppressed": suppressed,
        "labels": labels,
        "triggering_event": {"id": event.get("id"), "event": event.get("event")} if event else None,
        "actions": len(rows),
    }
    events.record(session, f"flowyard.automation.{state}", about, related, payload, occurred=now)
    return [row.id for row in rows]


def _deduplicated(
    session: Session,
    automation: m.Automation,
    event: dict[str, Any] | None,
    labels: dict[str, str],
    now: datetime,
) -> bool:
    """True when the automation's dedupe key already acted within its window; else the key
    is taken for the window from ``now``."""
    if not automation.dedupe:
        return False
    context = {"event": event, "labels": labels, "automation": {"id": automation.id}}
    try:
        key = render(automation.dedupe["key"], context)[:1024]
    except InvalidInput:
        key = ""  # a key that cannot render dedupes as one key: never pages twice
    held = session.get(m.AutomationDedupe, (automation.id, key))
    if held is not None and held.until > now:
        return True
    until = now + timedelta(seconds=float(automation.dedupe["window"]))
    if held is None:
        session.add(m.AutomationDedupe(automation_id=automation.id, key=key, until=until))
    else:
        held.until = until
    return False
