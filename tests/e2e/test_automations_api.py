"""Automations over the API of a real server: stored, read, replaced, paused, deleted; bad
ones refused with a 422 naming the field; a deployment's triggers owned by it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import delete

from flowyard.errors import ApiError
from flowyard.schemas import automations as a
from flowyard.settings import Settings
from flowyard.store import Database
from flowyard.store import models as m


def _name() -> str:
    return f"auto-{uuid.uuid4().hex[:8]}"


def _doc(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"expect": ["flowyard.flow-run.Failed"], "threshold": 2, "within": 60},
        "actions": [{"type": "do-nothing"}],
        **fields,
    }


def _create(api: Any, doc: dict[str, Any]) -> Any:
    return api.create_automation(a.AutomationCreate.model_validate(doc))


def _refusal(api: Any, method: str, path: str, body: Any) -> list[dict[str, Any]]:
    """The 422 list the server answers ``body`` with."""
    response = api._http.request(method, path, json=body)
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    return detail


def _events(api: Any, automation_id: str) -> list[str]:
    page = api.list_events(resource_id=f"flowyard.automation.{automation_id}", limit=50)
    return sorted(event.event for event in page.events)


def test_round_trip_with_events(api):
    """Created, read by name and id, listed, replaced, paused, resumed and deleted; each
    change is a ``flowyard.automation.*`` event."""
    name = _name()
    created = _create(api, _doc(name, description="two failures"))
    assert created.id and created.enabled and created.trigger.threshold == 2
    assert api.read_automation(name).id == created.id == api.read_automation(created.id).id
    assert created.id in {found.id for found in api.list_automations()}
    replaced = api.replace_automation(
        name, a.AutomationCreate.model_validate(_doc(name, description="three"))
    )
    assert (replaced.id, replaced.description) == (created.id, "three")
    assert api.set_automation_enabled(name, False).enabled is False
    assert api.set_automation_enabled(name, True).enabled is True
    assert api.list_automation_firings(name) == []
    api.delete_automation(name)
    with pytest.raises(ApiError) as missing:
        api.read_automation(created.id)
    assert missing.value.status_code == 404
    assert _events(api, created.id) == [
        f"flowyard.automation.{what}"
        for what in ("created", "deleted", "paused", "resumed", "updated")
    ]


def test_replacing_forgets_open_windows(api, server):
    """A PUT deletes the evaluator's buckets of the automation (its trigger may change)."""
    created = _create(api, _doc(_name()))
    db = Database(Settings(home=server.home).resolved_database_url)
    try:
        with db.session() as session:
            session.add(
                m.AutomationBucket(
                    automation_id=created.id,
                    trigger="0",
                    key="",
                    start=created.created,
                    end=created.created,
                    count=1,
                )
            )
        api.replace_automation(created.id, a.AutomationCreate.model_validate(_doc(created.name)))
        with db.read() as session:
            assert session.get(m.AutomationBucket, (created.id, "0", "")) is None
    finally:
        db.dispose()


def test_a_name_is_taken_once(api):
    """A second automation with the same name is refused with 409."""
    name = _name()
    _create(api, _doc(name))
    with pytest.raises(ApiError) as refused:
        _create(api, _doc(name))
    assert refused.value.status_code == 409 and name in str(refused.value)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"trigger": {"type": "telepathy"}}, ["body", "trigger"]),
        (
            {"trigger": {"posture": "Proactive", "expect": ["x"], "within": 0.5}},
            ["body", "trigger", "event"],
        ),
        (
            {"trigger": {"type": "compound", "require": 3, "triggers": [{}, {}]}},
            ["body", "trigger", "compound"],
        ),
        (
            {"actions": [{"type": "do-nothing"}, {"type": "send-notification",
                          "block": "slack-webhook/x", "body": "{{ event.id "}]},
            ["body", "actions", 1, "body"],
        ),
        (
            {"actions": [{"type": "run-deployment", "deployment": "no/such-deployment"}]},
            ["body", "actions", 0, "deployment"],
        ),
        (
            {"actions": [{"type": "pause-work-queue", "work_queue": "no-pool/default"}]},
            ["body", "actions", 0, "work_queue"],
        ),
        (
            {"actions": [{"type": "send-notification", "block": "secret/x"}]},
            ["body", "actions", 0, "block"],
        ),
    ],
)  # fmt: skip
def test_malformed_automations_are_refused_naming_the_field(api, change, loc):
    """Each malformed automation gets a 422 whose first entry names the field; nothing
    is stored."""
    name = _name()
    detail = _refusal(api, "POST", "/api/automations", _doc(name, **change))
    assert detail[0]["loc"][: len(loc)] == loc, detail
    with pytest.raises(ApiError):
        api.read_automation(name)


def test_a_bad_template_names_the_action_and_field(api, deploy):
    """A run-deployment parameter that does not compile is named down to its key."""
    dep = deploy("noop")
    action = {"type": "run-deployment", "deployment": dep.id, "parameters": {"n": "{{ x }"}}
    detail = _refusal(api, "POST", "/api/automations", _doc(_name(), actions=[action]))
    assert detail[0]["loc"] == ["body", "actions", 0, "parameters", "n"]
    assert "template error" in detail[0]["msg"]


def test_selected_targets_that_exist_are_accepted(api, deploy, pool):
    """Deployment by FLOW/NAME, pool by name, queue POOL/QUEUE, another automation by name."""
    dep = deploy("noop")
    other = _create(api, _doc(_name()))
    actions = [
        {"type": "run-deployment", "deployment": f"noop/{dep.name}"},
        {"type": "pause-work-pool", "work_pool": pool},
        {"type": "resume-work-queue", "work_queue": f"{pool}/default"},
        {"type": "pause-automation", "automation": other.name},
        {"type": "pause-deployment", "source": "inferred"},
    ]
    created = _create(api, _doc(_name(), actions=actions))
    assert [action.type for action in created.actions][:2] == ["run-deployment", "pause-work-pool"]


def test_deployment_triggers_are_owned_and_go_with_the_deployment(api, server, deploy):
    """PUT triggers makes one automation per trigger running the deployment; a second PUT
    replaces them; deleting the deployment deletes them (the foreign key cascades)."""
    dep = deploy("noop", name=f"trig-{uuid.uuid4().hex[:6]}")
    upstream = {"expect": ["upstream.done"], "parameters": {"n": "{{ event.payload.n }}"}}
    named = {"type": "sequence", "name": f"{dep.name}-seq", "triggers": [{"expect": ["a"]}]}
    first = api.set_deployment_triggers(dep.id, [upstream, named])
    assert [auto.name for auto in first] == [f"noop.{dep.name}.trigger-1", f"{dep.name}-seq"]
    action = first[0].actions[0]
    assert isinstance(action, a.RunDeployment)
    assert (action.deployment, action.parameters) == (dep.id, {"n": "{{ event.payload.n }}"})
    assert {x.id for x in api.list_automations(deployment_id=dep.id)} == {x.id for x in first}
    (kept,) = api.set_deployment_triggers(dep.id, [upstream])
    assert kept.id == first[0].id  # unchanged: kept as it was
    bad = _refusal(api, "PUT", f"/api/deployments/{dep.id}/triggers", [{"parameters": {"n": "{%"}}])
    assert bad[0]["loc"] == ["body", 0, "parameters", "n"]
    db = Database(Settings(home=server.home).resolved_database_url)
    try:
        with db.session() as session:
            session.execute(delete(m.Deployment).where(m.Deployment.id == dep.id))
    finally:
        db.dispose()
    assert api.list_automations(deployment_id=dep.id) == []
    with pytest.raises(ApiError):
        api.read_automation(kept.id)
