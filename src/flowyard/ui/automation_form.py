"""The automation form's fields: a group of fields for each trigger type and for each action
type, generated from the API's pydantic models (their JSON schemas, through
``param_form``), so that a field added to a model appears in the form.

The page shows the group of the type chosen in its select and disables the others (their
fields are not sent); ``automation_form.js`` fills the groups from the automation's JSON
document (editing), adds and removes actions, and switches to JSON boxes for what the fields
cannot show. A few fields read better than their schema's generic JSON: event names and
labels are one a line (``lines``), resource labels are ``label = pattern`` lines
(``labels``), templates are text areas (``text``), a compound trigger's ``require`` is
a choice, and the fields that name a deployment, pool, queue, automation or block suggest
the ones that exist (``automation_choices``). A compound or sequence trigger's ``triggers``
are a list of child triggers (``triggers``), each with a type select and the same groups
of fields as the trigger itself, nested as deep as the API allows. The API checks the
document whatever the form sent.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from flowyard.schemas import automations as a
from flowyard.ui import param_form
from flowyard.ui.automation_choices import LIMIT, Choices, list_for
from flowyard.ui.param_form import FormField

TRIGGERS: tuple[type[BaseModel], ...] = (
    a.EventTrigger,
    a.MetricTrigger,
    a.CompoundTrigger,
    a.SequenceTrigger,
)
ACTIONS: tuple[type[BaseModel], ...] = typing.get_args(typing.get_args(a.Action)[0])
ACTION_LISTS = (
    ("actions", "Actions when it fires"),
    ("actions_on_trigger", "Also when it fires"),
    ("actions_on_resolve", "When it resolves"),
)
ITEM = "__list__.__i__"
"""Where a new action's fields are: the script puts the list's name and a number in."""

LINES = {"after", "expect", "for_each"}
LABELS = {"match"}
HINTS = {
    "expect": "event names, one a line: a trailing * matches any rest, a leading ! negates",
    "after": "events that open a proactive window, one a line",
    "match": "the event's resource: one 'label = pattern' a line",
    "match_related": "JSON: a related resource's labels (an object, or a list of them)",
    "for_each": "one window per distinct value of these labels, one a line",
    "threshold": "how many matching events",
    "metric.threshold": "the value the metric is compared with",
    "within": "seconds",
    "range": "seconds",
    "firing_for": "seconds",
    "window": "seconds",
    "deployment": "FLOW/NAME or a deployment's id",
    "work_pool": "a pool's name or id",
    "automation": "an automation's name or id",
    "require": "how many of the triggers must fire",
    "parameters": "JSON object; its strings may be templates",
    "job_variables": "JSON object",
    "work_queue": "POOL/QUEUE or a queue's id",
}
NOTES = {
    "event": "Reactive: fires when the threshold of matching events arrive within the window. "
    "Proactive: fires when fewer than the threshold of expected events arrive within it.",
    "metric": "Fires when a measure of deployments, pools or queues crosses the threshold.",
    "compound": "Fires when enough of its triggers fire within the window.",
    "sequence": "Fires when its triggers fire in order within the window.",
}


@dataclass(frozen=True)
class Group:
    kind: str  # the type's tag: "event", "run-deployment"
    note: str  # what the type does (its model's docstring)
    fields: list[FormField]


def type_of(model: type[BaseModel]) -> str:
    return str(model.model_fields["type"].default)


def trigger_groups() -> list[Group]:
    """A group of fields for each trigger type, named ``trigger.<field>``."""
    return [_group(model, "trigger") for model in TRIGGERS]


def trigger_item_groups() -> list[Group]:
    """A group of fields for each type of a child trigger (of a compound or sequence
    trigger), named ``__list__.__i__.<field>`` as actions are."""
    return [_group(model, ITEM) for model in TRIGGERS]


def action_groups() -> list[Group]:
    """A group of fields for each action type, named ``__list__.__i__.<field>``."""
    return [_group(model, ITEM) for model in ACTIONS]


def dedupe_fields() -> list[FormField]:
    return _fields(_schema(a.Dedupe), "dedupe", "dedupe")


def _group(model: type[BaseModel], prefix: str) -> Group:
    schema, kind = _schema(model), type_of(model)
    note = NOTES.get(kind) or str(schema.get("description", ""))
    return Group(kind, note, _fields(schema, prefix, kind))


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, without ``type`` (the group's select says it); a recursive
    model's (a compound trigger's) is a ``$ref`` to its definition."""
    schema = model.model_json_schema()
    if "$ref" in schema:
        schema = {**schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]], "$defs": schema["$defs"]}
    schema["properties"].pop("type", None)
    return schema


def _fields(schema: dict[str, Any], prefix: str, scope: str) -> list[FormField]:
    made = param_form.fields(schema, {}, prefix, values_are_defaults=False)
    for field in _all(made):
        name = field.path.removeprefix(prefix + ".")
        _adjust(field, name, schema["properties"].get(name, {}), scope)
    return made


def _all(fields: list[FormField]) -> list[FormField]:
    return [found for field in fields for found in (field, *_all(field.children))]


def _adjust(field: FormField, name: str, spec: dict[str, Any], scope: str) -> None:
    """``name``: the field's path in its model (``metric.threshold``)."""
    field.scope = scope
    field.description = (field.description or HINTS.get(name, "")).replace("``", "")
    field.suggest = list_for(name, scope)
    if name == "triggers":
        field.kind = "triggers"  # a list of child triggers (automation_form.html)
    elif name in LINES:
        field.kind = "lines"
    elif name in LABELS:
        field.kind = "labels"
    elif name == "require":
        choices = ["all", "any", *range(1, a.MAX_CHILD_TRIGGERS + 1)]
        field.kind = "enum"
        field.choices = [(json.dumps(choice), str(choice)) for choice in choices]
        field.value = json.dumps(spec.get("default", "all"))
    elif field.kind == "string" and _longest(spec) == a.MAX_TEMPLATE:
        field.kind = "text"


def _longest(spec: dict[str, Any]) -> int | None:
    """A string field's ``maxLength`` (an optional one's too)."""
    for branch in (spec, *spec.get("anyOf", ())):
        if "maxLength" in branch:
            return int(branch["maxLength"])
    return None


EXAMPLE = {
    "trigger": {
        "type": "event",
        "posture": "Reactive",
        "match": {"flowyard.resource.id": "flowyard.flow-run.*"},
        "expect": ["flowyard.flow-run.Failed"],
        "threshold": 1,
        "within": 0,
    },
    "actions": [{"type": "do-nothing"}],
}
"""What a new automation's form starts from."""


@dataclass(frozen=True)
class JsonField:
    name: str
    label: str
    rows: int = 6
    required: bool = False


JSON_FIELDS = [
    JsonField("trigger", "Trigger (JSON)", 10, True),
    JsonField("actions", "Actions when it fires (JSON list)"),
    JsonField("actions_on_trigger", "Also when it fires (JSON list)", 3),
    JsonField("actions_on_resolve", "When it resolves (JSON list)", 3),
    JsonField("dedupe", "Dedupe (JSON object, optional)", 3),
]
"""The boxes of "Edit as JSON": the automation's parts as the API takes them."""


def form_context(automation: a.Automation | None, choices: list[Choices]) -> dict[str, Any]:
    """The form: its fields for each trigger and action type, the document the page's
    script fills them from (the automation's, or an example to start from), and the lists
    its reference fields suggest from."""
    if automation is None:
        document: dict[str, Any] = EXAMPLE
        form = {"name": "", "description": "", "enabled": True}
    else:
        document = automation.model_dump(mode="json", exclude_none=True)
        form = {k: document[k] for k in ("name", "description", "enabled")}
    return {
        "automation": automation,
        "form": form,
        "document": {
            part.name: document[part.name] for part in JSON_FIELDS if part.name in document
        },
        "json_fields": JSON_FIELDS,
        "triggers": trigger_groups(),
        "trigger_items": trigger_item_groups(),
        "max_triggers": a.MAX_CHILD_TRIGGERS,
        "deepest_trigger": a.MAX_TRIGGER_DEPTH - 1,  # the top trigger is depth 0
        "actions": action_groups(),
        "choices": choices,
        "choices_cut": [found.what for found in choices if found.more],
        "choice_limit": LIMIT,
        "action_lists": ACTION_LISTS,
        "max_actions": a.MAX_ACTIONS,
        "dedupe": dedupe_fields(),
    }
