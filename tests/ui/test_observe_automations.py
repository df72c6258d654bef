"""The automations pages on a server that requires API keys: a failing action's error is
visible, an admin pauses an automation from its page, and a viewer's pause is refused by
the API."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.events.schemas import Event
from flowyard.schemas import automations as au
from tests.e2e.conftest import create_process_pool
from tests.ui.conftest import ADMIN, sign_in

LIVE_MS = 15_000  # a change reaches an open page within this (a loaded machine's margin)
REQUIRES_KEYS = True


def _automation(api: FlowyardClient, expect_event: str, actions: list[Any]) -> au.Automation:
    body = {
        "name": f"ui-{uuid.uuid4().hex[:8]}",
        "trigger": {"expect": [expect_event]},
        "actions": actions,
    }
    return api.create_automation(au.AutomationCreate.model_validate(body))


def test_a_failing_action_shows_its_error_on_the_automations_pages(server, api, page, screenshots):
    """An automation whose action acts on a pool deleted since: its open page shows the
    firing arrive with the action failed, its attempts and its error, without a reload;
    the list shows when it fired."""
    pool = create_process_pool(api, f"doomed-{uuid.uuid4().hex[:6]}")
    name = f"shop-{uuid.uuid4().hex[:6]}.restock"
    automation = _automation(api, name, [{"type": "pause-work-pool", "work_pool": pool}])
    api.delete_work_pool(pool)
    sign_in(page, server, ADMIN, f"/ui/automations/{automation.id}")
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")
    expect(page.locator("#firings")).to_contain_text("It has not fired yet.")
    page.evaluate("window.sameDocument = true")

    api.emit_events([Event(event=name, resource={"flowyard.resource.id": "shop.item.1"})])
    firing = page.locator("#firings tbody tr").first
    expect(firing.locator(".action-failed")).to_have_text("failed", timeout=30_000)
    (recorded,) = api.list_automation_firings(automation.id)
    action = recorded.actions[0]
    assert action.status == "failed" and action.error and "not found" in action.error
    expect(firing).to_contain_text("pause-work-pool")
    expect(firing.locator(".error-text")).to_have_text(action.error)
    expect(firing.locator("td").nth(5)).to_have_text(str(action.attempts))
    expect(firing).to_contain_text(name)  # the triggering event
    expect(page.locator("#document")).to_contain_text(f"work_pool: {pool}")
    page.screenshot(path=screenshots / "automation-failed-action.png", full_page=True)
    assert page.evaluate("window.sameDocument") is True

    page.goto(f"{server.url}/ui/automations")
    row = page.locator(f'tr[data-automation-id="{automation.id}"]')
    expect(row).to_contain_text(automation.name)
    expect(row).to_contain_text("Enabled")
    expect(row).to_contain_text("event")
    expect(row.locator("td").last).to_have_text(recorded.fired.strftime("%Y-%m-%d %H:%M:%S"))
    page.screenshot(path=screenshots / "automations.png", full_page=True)


def test_an_admin_pauses_from_the_page_and_a_viewers_pause_is_refused(server, api, browser, page):
    """The admin's Pause button pauses the automation (the API reads it back disabled) and
    Resume resumes it; a viewer sees no button, and its PATCH, CSRF token and all, is 403."""
    automation = _automation(api, f"quiet-{uuid.uuid4().hex[:6]}", [{"type": "do-nothing"}])
    target = f"/ui/automations/{automation.id}"

    viewer_key = api.create_api_key(
        s.ApiKeyCreate(name=f"v-{uuid.uuid4().hex[:6]}", role="viewer")
    ).key  # type: ignore[arg-type]
    viewer = browser.new_context()
    try:
        viewer_page = viewer.new_page()
        sign_in(viewer_page, server, viewer_key, target)
        expect(viewer_page.locator("#automation-state")).to_have_text("Enabled")
        expect(viewer_page.locator("[data-automation], [data-api]")).to_have_count(0)
        expect(viewer_page.get_by_role("link", name="Edit")).to_have_count(0)
        viewer_page.goto(f"{server.url}/ui/automations/new")
        expect(viewer_page.locator("#automation-form")).to_have_count(0)
        expect(viewer_page.locator("main")).to_contain_text("created and changed by admins")
        viewer_page.goto(f"{server.url}{target}")
        refused = viewer_page.evaluate(
            """async (id) => {
                const csrf = document.querySelector('meta[name="csrf-token"]').content;
                const answer = await fetch(`/api/automations/${id}`, {method: "PATCH",
                    headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
                    body: JSON.stringify({enabled: false})});
                return [answer.status, (await answer.json()).detail];
            }""",
            automation.id,
        )
    finally:
        viewer.close()
    assert refused[0] == 403 and "viewer" in refused[1]
    assert api.read_automation(automation.id).enabled is True

    sign_in(page, server, ADMIN, target)
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")
    page.evaluate("window.sameDocument = true")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#action-result")).to_have_text("Paused.")
    expect(page.locator("#automation-state")).to_have_text("Paused", timeout=LIVE_MS)  # live
    assert api.read_automation(automation.id).enabled is False
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#automation-state")).to_have_text("Enabled", timeout=LIVE_MS)
    assert api.read_automation(automation.id).enabled is True
    assert page.evaluate("window.sameDocument") is True


def _named(api: FlowyardClient, name: str) -> list[au.Automation]:
    return [found for found in api.list_automations() if found.name == name]


def test_an_admin_creates_edits_and_deletes_an_automation_in_the_page(
    server, api, page, screenshots
):
    """The form's JSON boxes create an automation through the API (a trigger the API
    refuses, or text that is no JSON, is named next to its field and nothing is stored), the
    edit form replaces it, and Delete removes it."""
    name = f"made-{uuid.uuid4().hex[:8]}"
    sign_in(page, server, ADMIN, "/ui/automations")
    with page.expect_navigation():
        page.get_by_role("link", name="New automation").click()
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    page.get_by_role("button", name="Edit as JSON").click()
    trigger = page.get_by_label("Trigger (JSON)")
    trigger_error = page.locator('.field-error[data-for="trigger"]:visible')
    create = page.get_by_role("button", name="Create")
    trigger.fill("{")
    create.click()
    expect(trigger_error).to_have_text("Not valid JSON.")
    trigger.fill(json.dumps({"type": "event", "expect": [f"{name}.done"], "threshold": 0}))
    create.click()
    expect(trigger_error).to_contain_text("greater than or equal to 1")
    assert _named(api, name) == []

    wanted = {"type": "event", "expect": [f"{name}.done"], "threshold": 2, "within": 60}
    trigger.fill(json.dumps(wanted))
    page.get_by_label("Actions when it fires (JSON list)").fill('[{"type": "do-nothing"}]')
    page.get_by_label("Enabled").uncheck()
    page.screenshot(path=screenshots / "automation-new.png", full_page=True)
    with page.expect_navigation():
        create.click()
    (made,) = _named(api, name)
    expect(page).to_have_url(f"{server.url}/ui/automations/{made.id}")
    assert made.enabled is False and made.trigger.threshold == 2  # type: ignore[union-attr]
    assert [action.type for action in made.actions] == ["do-nothing"]

    with page.expect_navigation():
        page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("textbox", name="Name", exact=True)).to_have_value(name)
    page.get_by_label("Description").fill("edited in the page")
    page.get_by_role("button", name="Edit as JSON").click()
    trigger.fill(json.dumps({**wanted, "threshold": 3}))
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    edited = api.read_automation(made.id)
    assert edited.description == "edited in the page" and edited.trigger.threshold == 3  # type: ignore[union-attr]
    assert edited.enabled is False and edited.id == made.id

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{server.url}/ui/automations")
    assert _named(api, name) == []


def test_the_observing_pages_need_a_session(server):
    """Signed out, each page goes to the sign-in form and the streams answer 401."""
    anonymous = httpx.Client(base_url=server.url, timeout=15)
    for path in ("/ui/artifacts", "/ui/artifacts/some-key", "/ui/automations",
                 "/ui/automations/some-id", "/ui/automations/new",
                 "/ui/automations/some-id/edit", "/ui/events?event=flowyard.*"):  # fmt: skip
        answer = anonymous.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/sign-in?next=%2Fui%2F"), path
    for view in ("events", "automation&automation=some-id"):
        assert anonymous.get(f"/ui/stream?view={view}").status_code == 401
