"""The pure checks of an automation: every template compiles, named down to its field."""

from __future__ import annotations

from flowyard.cli.automations import field_path
from flowyard.orchestrator.automations.checks import template_errors, templates
from flowyard.schemas import automations as a


def _doc(**fields: object) -> a.AutomationCreate:
    base: dict[str, object] = {"name": "t", "trigger": {}, "actions": [{"type": "do-nothing"}]}
    return a.AutomationCreate.model_validate({**base, **fields})


def test_every_template_is_found_with_its_place():
    """Strings nested in parameters and job variables, texts of notifications and
    webhooks, and the dedupe key."""
    doc = _doc(
        actions=[
            {"type": "run-deployment", "deployment": "f/d", "parameters": {"a": ["x", {"b": "y"}]}},
            {"type": "send-notification", "block": "slack-webhook/ops", "body": "z"},
        ],
        actions_on_resolve=[{"type": "call-webhook", "block": "webhook/w", "payload": "p"}],
        dedupe={"window": 60, "key": "k"},
    )
    assert sorted(templates(doc)) == sorted(
        [
            (("actions", 0, "parameters", "a", 0), "x"),
            (("actions", 0, "parameters", "a", 1, "b"), "y"),
            (("actions", 1, "body"), "z"),
            (("actions_on_resolve", 0, "payload"), "p"),
            (("dedupe", "key"), "k"),
        ]
    )


def test_only_templates_that_do_not_compile_are_errors():
    """A good template and plain text pass; an unclosed tag is named by its field."""
    doc = _doc(
        actions=[
            {"type": "change-flow-run-state", "state": "FAILED", "message": "{{ event.id }}"},
            {"type": "change-flow-run-state", "state": "FAILED", "message": "{% if x %}"},
        ]
    )
    (error,) = template_errors(doc)
    assert error["loc"] == ["body", "actions", 1, "message"]
    assert error["msg"].startswith("template error:")


def test_field_paths_drop_the_unions_tags():
    """pydantic's ``trigger.event.within`` reads ``trigger.within``; list indexes stay."""
    assert field_path(("trigger", "event", "within")) == "trigger.within"
    assert field_path(("trigger", "compound", "triggers", 1, "sequence", "within")) == (
        "trigger.triggers[1].within"
    )
    assert field_path(("actions", 0, "run-deployment", "parameters")) == "actions[0].parameters"
