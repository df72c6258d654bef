"""The context automation actions' templates render with, and rendering of action values.

Templates are sandboxed Jinja (``blocks.notify.messages``: the same sandbox as
notification texts). The context::

    event:      the triggering event's JSON (None for a firing without one)
    automation: id, name, description
    labels:     the firing's labels (its ``for_each`` values)
    firing:     id, fired, state
    flow_run, flow, deployment, url:
                when the event is about a flow run (``messages.run_context``)

``render_value`` renders a run-deployment's ``parameters`` and ``job_variables``: every
string is a template, and a string that is exactly one ``{{ expression }}`` keeps the
expression's own type (a number, a list, a dict), so ``"{{ event.payload.count }}"``
passes ``3``, not ``"3"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from flowyard.blocks.notify import messages
from flowyard.errors import InvalidInput, NotFound
from flowyard.orchestrator import documents, runs
from flowyard.orchestrator.automations import targets
from flowyard.settings import Settings
from flowyard.store import models as m

_ONE_EXPRESSION = re.compile(r"^\s*\{\{((?:(?!\{\{|\}\}|\{%|\{#).)*)\}\}\s*$", re.DOTALL)


def context(
    session: Session,
    automation: m.Automation,
    firing: m.AutomationFiring,
    settings: Settings,
) -> dict[str, Any]:
    """The context of ``firing``'s templates (the module docstring lists it)."""
    event = firing.triggering_event
    found: dict[str, Any] = {
        "event": event,
        "automation": {
            "id": automation.id,
            "name": automation.name,
            "description": automation.description,
        },
        "labels": dict(firing.labels or {}),
        "firing": {"id": firing.id, "fired": firing.fired.isoformat(), "state": firing.state},
    }
    run_id = targets.resource_of(event, "flow-run")
    if run_id is not None:
        try:
            run = runs.get_run(session, run_id)
        except NotFound:  # deleted since: the event still says what it was about
            return found
        deployment = documents.deployment(run.deployment) if run.deployment else None
        found.update(messages.run_context(documents.flow_run(run), deployment, settings))
    return found


def render_text(template: str, values: Mapping[str, Any]) -> str:
    """``template`` rendered as text; a bad template is InvalidInput."""
    return messages.render(template, values)


def render_value(value: Any, values: Mapping[str, Any], where: str = "") -> Any:
    """``value`` with every string in it rendered; ``{{ expression }}`` alone keeps its type.

    InvalidInput names where (``parameters.x``) a template failed or gave no JSON value."""
    if isinstance(value, dict):
        return {
            key: render_value(item, values, f"{where}.{key}" if where else key)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [render_value(v, values, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "{" not in value:
        return value
    try:
        single = _ONE_EXPRESSION.match(value)
        if single is None:
            return messages.render(value, values)
        return _json_value(_expression(single.group(1), values))
    except InvalidInput as exc:
        raise InvalidInput(f"{where or 'value'}: {exc}") from None


def _expression(source: str, values: Mapping[str, Any]) -> Any:
    """The value of one Jinja expression, evaluated in the notifications' sandbox."""
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    try:
        compiled = messages._environment().compile_expression(source, undefined_to_none=True)
        return compiled(**values)
    except SecurityError as exc:
        raise InvalidInput(f"template refused by the sandbox: {exc}") from exc
    except TemplateError as exc:
        raise InvalidInput(f"template error: {exc}") from exc
    except Exception as exc:  # a user's expression failing: 1/0, a huge range…
        raise InvalidInput(f"template error: {type(exc).__name__}: {exc}") from exc


def _json_value(value: Any) -> Any:
    """``value`` as JSON data (tuples become lists); InvalidInput if it is none."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the template's value is not JSON ({type(value).__name__})") from exc
