"""The automation form's fields, in Chromium against a server that requires API keys: each
trigger and action type has its own fields, the API's refusals show next to the field they
name, editing fills the fields from the automation, "Edit as JSON" takes what the fields
cannot show, and a viewer gets no form."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.schemas import automations as au
from tests.e2e.conftest import create_process_pool, deploy_flow
from tests.ui.conftest import ADMIN, AXE_RULES, sign_in

REQUIRES_KEYS = True


@pytest.fixture
def admin_page(page: Any) -> Iterator[Any]:
    """The test's page, failing the test if its script throws."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert errors == []


def _error(page: Any, field: str) -> Any:
    """Where the form shows a refusal of ``field`` (the shown copy: each type has its own)."""
    return page.locator(f'.field-error[data-for="{field}"]:visible')


def _item(page: Any, listed: str, index: int) -> Any:
    """The ``index``th item of a list (not of a list nested in its items)."""
    return page.locator(f'[data-list="{listed}"] > .items > .item').nth(index)


def _trigger_type(page: Any, at: str) -> Any:
    """The type select of the child trigger at ``at`` ("trigger.triggers.1")."""
    return page.locator(f"#t-{at.replace('.', '-')}-type")


def _group(scope: Any, kind: str) -> Any:
    return scope.locator(f'fieldset.kind[data-kind="{kind}"]')


def test_an_admin_creates_an_automation_through_the_fields(server, api, admin_page, screenshots):
    """Fields per trigger and action type make the automation the API reads back (events
    and labels one a line, a multi-line template, dedupe); a threshold of 0 and an unknown
    deployment are refused next to their fields with the API's words, storing nothing; the
    list shows the new automation."""
    page, name = admin_page, f"fields-{uuid.uuid4().hex[:8]}"
    pool = create_process_pool(api, f"af-{uuid.uuid4().hex[:6]}")
    sign_in(page, server, ADMIN, "/ui/automations")
    with page.expect_navigation():
        page.get_by_role("link", name="New automation").click()
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    expect(page.get_by_label("Type", exact=True)).to_have_value("event")
    event = _group(page, "event")
    expect(event.get_by_label("Expect")).to_have_value("flowyard.flow-run.Failed")  # the example
    event.get_by_label("Expect").fill(f"{name}.done\n\n  {name}.failed  ")
    event.get_by_label("Match", exact=True).fill(
        "flowyard.resource.id = shop.item.*\nflowyard.resource.name = a\nflowyard.resource.name=b"
    )
    event.get_by_label("Threshold").fill("0")
    event.get_by_label("Within").fill("60")

    first = _item(page, "actions", 0)
    expect(first.get_by_label("Action")).to_have_value("do-nothing")  # the example's
    first.get_by_label("Action").select_option("pause-work-pool")
    _group(first, "pause-work-pool").get_by_label("Work Pool").fill(pool)
    page.locator('[data-list="actions"]').get_by_role("button", name="Add an action").click()
    second = _item(page, "actions", 1)
    expect(second.get_by_label("Action")).to_be_focused()
    expect(second.get_by_label("Action")).to_have_value("run-deployment")
    _group(second, "run-deployment").get_by_label("Deployment").fill("no-such/deployment")
    resolve = page.locator('[data-list="actions_on_resolve"]')
    resolve.get_by_role("button", name="Add an action").click()
    on_resolve = _item(page, "actions_on_resolve", 0)
    on_resolve.get_by_label("Action").select_option("change-flow-run-state")
    changes = _group(on_resolve, "change-flow-run-state")
    changes.get_by_label("State").select_option("FAILED")
    changes.get_by_label("Message").fill("resolved:\n{{ event.event }}")
    page.get_by_label("At most one firing acts per key in a window").check()
    page.locator("#dedupe-fields").get_by_label("Window").fill("30")

    create = page.get_by_role("button", name="Create")
    create.click()
    expect(_error(page, "trigger.threshold")).to_contain_text("greater than or equal to 1")
    expect(event.get_by_label("Threshold")).to_have_attribute("aria-invalid", "true")
    event.get_by_label("Threshold").fill("2")
    create.click()
    expect(_error(page, "actions.1.deployment")).to_contain_text("no-such/deployment")
    assert [found for found in api.list_automations() if found.name == name] == []

    second.get_by_role("button", name="Remove this action").click()
    expect(page.locator('[data-list="actions"] .item')).to_have_count(1)
    page.screenshot(path=screenshots / "automation-fields.png", full_page=True)
    with page.expect_navigation():
        create.click()
    (made,) = [found for found in api.list_automations() if found.name == name]
    expect(page).to_have_url(f"{server.url}/ui/automations/{made.id}")
    assert made.trigger == au.EventTrigger(
        expect=[f"{name}.done", f"{name}.failed"],
        match={"flowyard.resource.id": "shop.item.*", "flowyard.resource.name": ["a", "b"]},
        threshold=2,
        within=60,
    )
    assert made.actions == [au.PauseWorkPool(work_pool=pool)]
    assert made.actions_on_trigger == []
    assert made.actions_on_resolve == [
        au.ChangeFlowRunState(state="FAILED", message="resolved:\n{{ event.event }}")
    ]
    assert made.dedupe is not None and made.dedupe.window == 30 and made.enabled is True

    page.goto(f"{server.url}/ui/automations")
    row = page.locator(f'tr[data-automation-id="{made.id}"]')
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("event · Reactive")
    expect(row).to_contain_text("pause-work-pool, change-flow-run-state")


def _metric_automation(api: FlowyardClient) -> au.Automation:
    body = {
        "name": f"metric-{uuid.uuid4().hex[:8]}",
        "description": "late runs",
        "trigger": {
            "type": "metric",
            "match": {"flowyard.resource.name": ["nightly", "hourly"]},
            "metric": {"name": "late_runs", "operator": ">", "threshold": 5, "range": 600},
        },
        "actions": [{"type": "do-nothing"}],
        "actions_on_resolve": [{"type": "change-flow-run-state", "state": "CANCELLED"}],
        "dedupe": {"window": 15},
    }
    return api.create_automation(au.AutomationCreate.model_validate(body))


def test_the_edit_form_shows_the_automation_in_its_fields_and_saves_changes(
    server, api, admin_page
):
    """Editing a metric-triggered automation shows its type, metric, labels, actions and
    dedupe in their fields; changed there, it is replaced (same id) with the changes and
    nothing else changed."""
    page, before = admin_page, _metric_automation(api)
    sign_in(page, server, ADMIN, f"/ui/automations/{before.id}/edit")
    expect(page.get_by_label("Type", exact=True)).to_have_value("metric")
    metric = _group(page, "metric")
    expect(metric).to_be_visible()
    expect(_group(page, "event")).to_be_hidden()
    expect(metric.get_by_label("Match", exact=True)).to_have_value(
        "flowyard.resource.name = nightly\nflowyard.resource.name = hourly"
    )
    expect(metric.get_by_label("Name")).to_have_value(json.dumps("late_runs"))
    expect(metric.get_by_label("Operator")).to_have_value(json.dumps(">"))
    expect(metric.get_by_label("Threshold")).to_have_value("5")
    expect(metric.get_by_label("Range")).to_have_value("600")
    expect(_item(page, "actions", 0).get_by_label("Action")).to_have_value("do-nothing")
    on_resolve = _item(page, "actions_on_resolve", 0)
    expect(on_resolve.get_by_label("Action")).to_have_value("change-flow-run-state")
    expect(_group(on_resolve, "change-flow-run-state").get_by_label("State")).to_have_value(
        json.dumps("CANCELLED")
    )
    expect(page.get_by_label("At most one firing acts per key in a window")).to_be_checked()
    expect(page.locator("#dedupe-fields").get_by_label("Window")).to_have_value("15")

    metric.get_by_label("Threshold").fill("7")
    _item(page, "actions", 0).get_by_label("Action").select_option("cancel-flow-run")
    on_resolve.get_by_role("button", name="Remove this action").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    after = api.read_automation(before.id)
    assert isinstance(after.trigger, au.MetricTrigger) and after.trigger.metric.threshold == 7
    assert [action.type for action in after.actions] == ["cancel-flow-run"]
    assert after.actions_on_resolve == []
    unchanged = {"trigger", "actions", "actions_on_resolve", "updated"}
    assert after.model_dump(exclude=unchanged) == before.model_dump(exclude=unchanged)
    assert after.trigger.match == before.trigger.match  # type: ignore[union-attr]


def test_edit_as_json_takes_what_the_fields_cannot_show(server, api, admin_page):
    """ "Edit as JSON" shows the fields' automation as JSON; JSON the fields can show goes
    back to them; a label with "=" in it cannot, so the page stays in JSON and saves it as
    written; a JSON box that is no JSON is named next to it."""
    page, automation = admin_page, _metric_automation(api)
    sign_in(page, server, ADMIN, f"/ui/automations/{automation.id}/edit")
    _group(page, "metric").get_by_label("Threshold").fill("8")
    page.get_by_role("button", name="Edit as JSON").click()
    trigger_box = page.get_by_label("Trigger (JSON)")
    shown = json.loads(trigger_box.input_value())
    assert shown["type"] == "metric" and shown["metric"]["threshold"] == 8
    assert json.loads(page.get_by_label("Actions when it fires (JSON list)").input_value()) == [
        {"type": "do-nothing"}
    ]
    expect(_group(page, "metric")).to_be_hidden()

    shown["metric"]["threshold"] = 9
    trigger_box.fill(json.dumps(shown))
    page.get_by_role("button", name="Edit with fields").click()
    expect(_group(page, "metric").get_by_label("Threshold")).to_have_value("9")

    page.get_by_role("button", name="Edit as JSON").click()
    trigger_box.fill("{")
    page.get_by_role("button", name="Edit with fields").click()
    expect(_error(page, "trigger")).to_have_text("Not valid JSON.")
    odd = {**shown, "match": {"team=ops": "yes"}}
    trigger_box.fill(json.dumps(odd))
    page.get_by_role("button", name="Edit with fields").click()
    expect(page.locator("#automation-form")).to_contain_text("cannot show all of this")
    expect(trigger_box).to_be_visible()
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    saved = api.read_automation(automation.id)
    assert saved.trigger.match == {"team=ops": "yes"}  # type: ignore[union-attr]
    assert saved.trigger.metric.threshold == 9  # type: ignore[union-attr]

    page.goto(f"{server.url}/ui/automations/{automation.id}/edit")  # opens in JSON: no fields
    expect(trigger_box).to_be_visible()
    assert json.loads(trigger_box.input_value())["match"] == {"team=ops": "yes"}
    expect(page.get_by_role("button", name="Edit with fields")).to_be_visible()


def test_a_viewer_gets_no_form(server, api, browser):
    """A viewer's automations pages have no New link, and the new and edit pages no form,
    field or button that would change an automation, nor the lists a form suggests from."""
    automation = _metric_automation(api)
    key = api.create_api_key(s.ApiKeyCreate(name=f"v-{uuid.uuid4().hex[:6]}", role="viewer")).key
    viewer = browser.new_context()
    try:
        page = viewer.new_page()
        sign_in(page, server, key, "/ui/automations")  # type: ignore[arg-type]
        expect(page.locator(f'tr[data-automation-id="{automation.id}"]')).to_be_visible()
        expect(page.get_by_role("link", name="New automation")).to_have_count(0)
        for path in ("/ui/automations/new", f"/ui/automations/{automation.id}/edit"):
            page.goto(f"{server.url}{path}")
            expect(page.locator("main")).to_contain_text("created and changed by admins")
            controls = "main form, main input, main select, main textarea, main button"
            expect(page.locator(controls)).to_have_count(0)
            expect(page.locator("datalist")).to_have_count(0)  # no lists are read for it
    finally:
        viewer.close()


def _suggested(page: Any, datalist: str) -> list[str]:
    return page.locator(f"datalist#{datalist} option").evaluate_all(
        "options => options.map(o => o.value)"
    )


def test_reference_fields_suggest_what_exists_and_take_what_is_typed(
    server, api, admin_page, ui_flows
):
    """The fields that name a deployment, queue or block are comboboxes named by their
    labels, suggesting the deployments (FLOW/NAME), queues (POOL/QUEUE) and blocks of the
    action's kind that exist; typed from the keyboard, a suggestion and a value not
    suggested (a deployment's id) are both saved."""
    page, name = admin_page, f"picks-{uuid.uuid4().hex[:8]}"
    pool = create_process_pool(api, f"pk-{uuid.uuid4().hex[:6]}")
    deployment = deploy_flow(api, pool, ui_flows, "chatty", name=f"d-{pool}")
    api.save_block("slack-webhook", f"n-{pool}", {"url": "https://hooks.example.com/a"})
    api.save_block("webhook", f"w-{pool}", {"url": "https://example.com/hook"})
    sign_in(page, server, ADMIN, "/ui/automations/new")
    assert f"chatty/d-{pool}" in _suggested(page, "choices-deployments")
    assert f"{pool}/default" in _suggested(page, "choices-queues")
    assert {f"slack-webhook/n-{pool}", f"webhook/w-{pool}"} <= set(
        _suggested(page, "choices-notifications")
    )
    assert f"slack-webhook/n-{pool}" not in _suggested(page, "choices-webhooks")
    page.get_by_role("textbox", name="Name", exact=True).fill(name)

    picks = [
        ("run-deployment", "Deployment", "choices-deployments", deployment.id),  # not suggested
        ("pause-work-queue", "Work Queue", "choices-queues", f"{pool}/default"),
        ("send-notification", "Block", "choices-notifications", f"slack-webhook/n-{pool}"),
    ]
    add = page.locator('[data-list="actions"]').get_by_role("button", name="Add an action")
    for index, (kind, label, datalist, typed) in enumerate(picks):
        if index:
            add.click()
        item = _item(page, "actions", index)
        item.get_by_label("Action").select_option(kind)
        picker = _group(item, kind).get_by_role("combobox", name=label)
        expect(picker).to_have_attribute("list", datalist)
        picker.focus()
        page.keyboard.type(typed)
    with page.expect_navigation():
        page.get_by_role("button", name="Create").click()
    (made,) = [found for found in api.list_automations() if found.name == name]
    assert made.actions == [
        au.RunDeployment(deployment=deployment.id),
        au.PauseWorkQueue(work_queue=f"{pool}/default"),
        au.SendNotification(block=f"slack-webhook/n-{pool}"),
    ]


def test_a_compound_triggers_children_have_the_fields_of_a_trigger(
    server, api, admin_page, screenshots
):
    """A compound trigger's child triggers are items with a type and that type's fields,
    nested (a sequence inside the compound); a refusal of a child's field shows next to it;
    saved, the API reads back the tree; editing shows each child in its fields, and a
    removed child is gone once saved."""
    page, name = admin_page, f"tree-{uuid.uuid4().hex[:8]}"
    sign_in(page, server, ADMIN, "/ui/automations/new")
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    page.get_by_label("Type", exact=True).select_option("compound")
    compound = _group(page, "compound")
    children = compound.locator('[data-list="trigger.triggers"]')
    compound.get_by_label("Require").select_option('"any"')
    children.get_by_role("button", name="Add a trigger").click()
    first = _item(page, "trigger.triggers", 0)
    expect(_trigger_type(page, "trigger.triggers.0")).to_be_focused()
    expect(_trigger_type(page, "trigger.triggers.0")).to_have_value("event")
    _group(first, "event").get_by_label("Expect").fill(f"{name}.a")
    _group(first, "event").get_by_label("Threshold").fill("0")
    children.locator(":scope > p > [data-add-item]").click()  # not a child's own list's
    second = _item(page, "trigger.triggers", 1)
    _trigger_type(page, "trigger.triggers.1").select_option("sequence")
    nested = _group(second, "sequence").locator('[data-list="trigger.triggers.1.triggers"]')
    nested.get_by_role("button", name="Add a trigger").click()
    inner = _item(page, "trigger.triggers.1.triggers", 0)
    _group(inner, "event").get_by_label("Expect").fill(f"{name}.b\n{name}.c")
    page.screenshot(path=screenshots / "automation-child-triggers.png", full_page=True)

    create = page.get_by_role("button", name="Create")
    create.click()
    expect(_error(page, "trigger.triggers.0.threshold")).to_contain_text("greater than or equal")
    _group(first, "event").get_by_label("Threshold").fill("2")
    with page.expect_navigation():
        create.click()
    (made,) = [found for found in api.list_automations() if found.name == name]
    assert made.trigger == au.CompoundTrigger(
        require="any",
        triggers=[
            au.EventTrigger(expect=[f"{name}.a"], threshold=2),
            au.SequenceTrigger(triggers=[au.EventTrigger(expect=[f"{name}.b", f"{name}.c"])]),
        ],
    )

    page.goto(f"{server.url}/ui/automations/{made.id}/edit")
    expect(page.get_by_label("Type", exact=True)).to_have_value("compound")
    expect(_trigger_type(page, "trigger.triggers.1")).to_have_value("sequence")
    inner = _item(page, "trigger.triggers.1.triggers", 0)
    expect(_group(inner, "event").get_by_label("Expect")).to_have_value(f"{name}.b\n{name}.c")
    _item(page, "trigger.triggers", 0).get_by_role("button", name="Remove this trigger").click()
    expect(_trigger_type(page, "trigger.triggers.0")).to_have_value("sequence")
    moved = _item(page, "trigger.triggers.0.triggers", 0)  # the sequence, renumbered
    expect(_group(moved, "event").get_by_label("Expect")).to_have_value(f"{name}.b\n{name}.c")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    saved = api.read_automation(made.id)
    sequence = au.SequenceTrigger(triggers=[au.EventTrigger(expect=[f"{name}.b", f"{name}.c"])])
    assert saved.trigger == au.CompoundTrigger(require="any", triggers=[sequence])


def test_child_triggers_nest_as_deep_as_the_api_takes_and_pass_axe(server, api, axe_page):
    """Child triggers nest a sequence in a sequence down to the API's depth, where a child
    can no longer be a compound or sequence trigger; the form showing them and a reference
    field breaks no WCAG A or AA rule."""
    page = axe_page
    sign_in(page, server, ADMIN, "/ui/automations/new")
    page.get_by_label("Type", exact=True).select_option("compound")
    scope, at = _group(page, "compound"), "trigger"
    for depth in range(1, au.MAX_TRIGGER_DEPTH):
        scope.locator(f'[data-list="{at}.triggers"] > p > [data-add-item]').click()
        at = f"{at}.triggers.0"
        sequence = _trigger_type(page, at).locator('option[value="sequence"]')
        if depth == au.MAX_TRIGGER_DEPTH - 1:
            break
        expect(sequence).to_be_enabled()
        _trigger_type(page, at).select_option("sequence")
        scope = _group(_item(page, at.rsplit(".", 1)[0], 0), "sequence")
    expect(sequence).to_be_disabled()
    expect(_trigger_type(page, at).locator('option[value="compound"]')).to_be_disabled()
    expect(_trigger_type(page, at).locator('option[value="metric"]')).to_be_enabled()
    expect(_trigger_type(page, at)).to_have_value("event")
    _item(page, "actions", 0).get_by_label("Action").select_option("run-deployment")
    results = page.axe.run(page, options=AXE_RULES).response["violations"]
    assert results == [], [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in results]
