"""The automations pages on a server that requires API keys: a failing action's error is
visible, an admin pauses an automation from its page, and a viewer's pause is refused by
the API."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.events.schemas import Event
from flowyard.schemas import automations as au
from tests.e2e.conftest import FAST, create_process_pool
from tests.servers import running_server

LIVE_MS = 15_000  # a change reaches an open page within this (a loaded machine's margin)
ADMIN = "admin-key-for-the-web-ui-automation-tests-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**FAST, "FLOWYARD_API_KEY": ADMIN}
    with running_server(tmp_path_factory.mktemp("ui-automations-home"), env) as process:
        yield process


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[FlowyardClient]:
    with FlowyardClient(server.url, ADMIN) as client:
        yield client


def _sign_in(page: Any, server: ServerProcess, key: str, target: str) -> None:
    page.goto(f"{server.url}{target}")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next="))
    page.get_by_label("API key").fill(key)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}{target}")


def _automation(admin: FlowyardClient, expect_event: str, actions: list[Any]) -> au.Automation:
    body = {
        "name": f"ui-{uuid.uuid4().hex[:8]}",
        "trigger": {"expect": [expect_event]},
        "actions": actions,
    }
    return admin.create_automation(au.AutomationCreate.model_validate(body))


def test_a_failing_action_shows_its_error_on_the_automations_pages(
    server, admin, page, screenshots
):
    """An automation whose action acts on a pool deleted since: its open page shows the
    firing arrive with the action failed, its attempts and its error, without a reload;
    the list shows when it fired."""
    pool = create_process_pool(admin, f"doomed-{uuid.uuid4().hex[:6]}")
    name = f"shop-{uuid.uuid4().hex[:6]}.restock"
    automation = _automation(admin, name, [{"type": "pause-work-pool", "work_pool": pool}])
    admin.delete_work_pool(pool)
    _sign_in(page, server, ADMIN, f"/ui/automations/{automation.id}")
    expect(page.locator("#live-status")).to_contain_text("Live")
    expect(page.locator("#firings")).to_contain_text("It has not fired yet.")
    page.evaluate("window.sameDocument = true")

    admin.emit_events([Event(event=name, resource={"flowyard.resource.id": "shop.item.1"})])
    firing = page.locator("#firings tbody tr").first
    expect(firing.locator(".action-failed")).to_have_text("failed", timeout=30_000)
    (recorded,) = admin.list_automation_firings(automation.id)
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


def test_an_admin_pauses_from_the_page_and_a_viewers_pause_is_refused(server, admin, browser, page):
    """The admin's Pause button pauses the automation (the API reads it back disabled) and
    Resume resumes it; a viewer sees no button, and its PATCH, CSRF token and all, is 403."""
    automation = _automation(admin, f"quiet-{uuid.uuid4().hex[:6]}", [{"type": "do-nothing"}])
    target = f"/ui/automations/{automation.id}"

    viewer_key = admin.create_api_key(
        s.ApiKeyCreate(name=f"v-{uuid.uuid4().hex[:6]}", role="viewer")
    ).key  # type: ignore[arg-type]
    viewer = browser.new_context()
    try:
        viewer_page = viewer.new_page()
        _sign_in(viewer_page, server, viewer_key, target)
        expect(viewer_page.locator("#automation-state")).to_have_text("Enabled")
        expect(viewer_page.locator("[data-automation]")).to_have_count(0)
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
    assert admin.read_automation(automation.id).enabled is True

    _sign_in(page, server, ADMIN, target)
    expect(page.locator("#live-status")).to_contain_text("Live")
    page.evaluate("window.sameDocument = true")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#action-result")).to_have_text("Paused.")
    expect(page.locator("#automation-state")).to_have_text("Paused", timeout=LIVE_MS)  # live
    assert admin.read_automation(automation.id).enabled is False
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#automation-state")).to_have_text("Enabled", timeout=LIVE_MS)
    assert admin.read_automation(automation.id).enabled is True
    assert page.evaluate("window.sameDocument") is True


def test_the_observing_pages_need_a_session(server):
    """Signed out, each page goes to the sign-in form and the streams answer 401."""
    anonymous = httpx.Client(base_url=server.url, timeout=15)
    for path in ("/ui/artifacts", "/ui/artifacts/some-key", "/ui/automations",
                 "/ui/automations/some-id", "/ui/events?event=flowyard.*"):  # fmt: skip
        answer = anonymous.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/sign-in?next=%2Fui%2F"), path
    for view in ("events", "automation&automation=some-id"):
        assert anonymous.get(f"/ui/stream?view={view}").status_code == 401
