"""Parts of a page the live stream swaps, in Chromium against a server that requires keys:
a run's input form comes and goes as the run pauses and resumes, its background task runs
follow their own events, and a swap keeps what a person is typing."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.states import StateType
from tests.e2e.conftest import create_process_pool
from tests.ui.conftest import ADMIN, sign_in

REQUIRES_KEYS = True
SCHEMA = {
    "type": "object",
    "properties": {"note": {"type": "string", "title": "Note"}},
    "required": ["note"],
}


def _live(page: Any) -> None:
    expect(page.locator("#live-status")).to_contain_text("Live")


def test_the_input_form_and_background_runs_follow_the_run_without_a_reload(server, api, page):
    """The input form appears when the run pauses for input; a background task run the run
    made appears, and its claim (an event about the task run, naming no flow run) shows it
    Pending; the note typed meanwhile stays, focused; the form goes when the run resumes."""
    run = api.create_flow_run(s.FlowRunCreate(flow_name="by-hand", name="live-input"))
    api.set_flow_run_state(run.id, s.StateChange(type=StateType.RUNNING))
    sign_in(page, server, ADMIN, f"/ui/runs/{run.id}")
    _live(page)
    expect(page.locator("#run-input-form")).to_have_count(0)
    expect(page.locator("#background-runs")).to_contain_text("No background task runs.")
    page.evaluate("window.sameDocument = true")

    pause = s.PauseRequest(key="ask", input_schema=SCHEMA)
    api.set_flow_run_state(run.id, s.StateChange(type=StateType.PAUSED, pause=pause))
    note = page.get_by_label("Note")
    expect(note).to_be_visible()
    note.click()
    page.keyboard.type("half-typ")

    key = f"shout-{uuid.uuid4().hex[:6]}"
    made = s.BackgroundTaskRunCreate(task_key=key, name="shout-0", caller_flow_run_id=run.id)
    api.create_background_task_run(made)
    rows = page.locator("#background-runs tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.locator(".state")).to_have_text("Scheduled")
    (claimed,) = api.claim_background_task_runs(s.TaskWorkerClaim(task_keys=[key], worker_name="w"))
    expect(rows.locator(".state")).to_have_text("Pending")
    expect(note).to_be_focused()
    page.keyboard.type("ed")
    expect(note).to_have_value("half-typed")

    api.resume_flow_run(run.id, run_input={"note": "from elsewhere"})
    expect(page.locator("#run-input-form")).to_have_count(0)
    expect(page.locator("#run-state")).to_have_text("Running")
    assert page.evaluate("window.sameDocument") is True  # no reload did any of it
    assert claimed.run.caller_flow_run_id == run.id


def test_a_swap_keeps_the_value_a_person_is_typing_and_their_focus(server, api, page):
    """While a person types a queue's priority (not saved), changes made elsewhere swap the
    pool's parts: another queue's new limit and a new queue show, and the typed priority
    keeps its value and focus, then saves with Enter."""
    pool = create_process_pool(api, f"typing-{uuid.uuid4().hex[:6]}")
    api.create_work_queue(pool, s.WorkQueueCreate(name="second", concurrency_limit=3))
    sign_in(page, server, ADMIN, f"/ui/pools/{pool}")
    _live(page)
    priority = page.get_by_label("Priority of queue default", exact=True)
    expect(priority).to_have_value("1")
    priority.focus()
    page.keyboard.press("Control+a")
    page.keyboard.type("7")

    api.update_work_queue(pool, "second", s.WorkQueueUpdate(concurrency_limit=5))
    other = page.get_by_label("Concurrency limit of queue second", exact=True)
    expect(other).to_have_value("5")  # swapped: the server's new value
    api.create_work_queue(pool, s.WorkQueueCreate(name="third"))
    expect(page.locator('tr[data-queue="third"]')).to_be_visible()
    expect(priority).to_have_value("7")
    expect(priority).to_be_focused()

    with page.expect_navigation():  # a saved change reloads the page
        page.keyboard.press("Enter")
    assert api.read_work_queue(pool, "default").priority == 7


def test_a_viewer_gets_the_pause_live_and_no_form(server, api, browser):
    """A viewer's page of a run that pauses for input shows the pause and its schema live,
    with no form nor any control that changes something."""
    run = api.create_flow_run(s.FlowRunCreate(flow_name="by-hand", name="live-viewer"))
    api.set_flow_run_state(run.id, s.StateChange(type=StateType.RUNNING))
    key = api.create_api_key(s.ApiKeyCreate(name=f"v-{run.id[:8]}", role="viewer")).key
    viewer = browser.new_context()
    try:
        page = viewer.new_page()
        sign_in(page, server, key, f"/ui/runs/{run.id}")  # type: ignore[arg-type]
        _live(page)
        pause = s.PauseRequest(key="ask", input_schema=SCHEMA)
        api.set_flow_run_state(run.id, s.StateChange(type=StateType.PAUSED, pause=pause))
        expect(page.locator("#run-input")).to_contain_text("Input wanted")
        expect(page.locator("#input-schema")).to_contain_text('"note"')
        expect(page.locator("#run-input-form")).to_have_count(0)
        expect(page.locator("main form[data-api], main [data-api]")).to_have_count(0)
    finally:
        viewer.close()
