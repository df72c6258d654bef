"""The web UI on a server without API keys: the flow-runs list and a flow run's page, in
Chromium, with runs from a real worker, kept live by the server's stream."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.states import StateType
from tests.e2e.conftest import create_process_pool, deploy_flow
from tests.ui.conftest import events
from tests.waiting import wait_until


def _deployment(api: FlowyardClient, flows: Path) -> tuple[str, s.Deployment]:
    pool = create_process_pool(api, f"ui-{uuid.uuid4().hex[:8]}")
    return pool, deploy_flow(api, pool, flows, "chatty", name=f"chatty-{pool}")


def _now() -> datetime:
    return datetime.now(UTC)


def _row_ids(page) -> list[str]:
    return page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.runId)")


def test_the_runs_page_lists_what_the_api_lists_and_pages_by_cursor(
    server, api, ui_flows, page, screenshots
):
    """Filtered by pool and state, page after page by cursor, the list holds exactly the
    API's runs in the API's order, and nothing of another pool."""
    pool, deployment = _deployment(api, ui_flows)
    _, elsewhere = _deployment(api, ui_flows)
    for _ in range(5):
        api.run_deployment(deployment.id, s.DeploymentRunRequest())
    api.run_deployment(elsewhere.id, s.DeploymentRunRequest())
    expected = [r.id for r in api.list_flow_runs(pool=pool, state="SCHEDULED")]
    assert len(expected) == 5

    page.goto(f"{server.url}/ui/runs?pool={pool}&state=SCHEDULED&limit=2")
    page.screenshot(path=screenshots / "runs-list.png", full_page=True)
    seen, pages = _row_ids(page), 1
    while page.locator("a[rel=next]").count():
        assert "OFFSET" not in page.url
        with page.expect_navigation():
            page.locator("a[rel=next]").click()
        assert "cursor=" in page.url
        seen += _row_ids(page)
        pages += 1
    assert seen == expected and pages == 3


def test_a_new_run_and_its_state_change_appear_live_in_the_open_list(
    server, api, ui_flows, page, screenshots
):
    """A run created while the list is open appears, and its cancellation shows, without
    the page being reloaded."""
    pool, deployment = _deployment(api, ui_flows)
    page.goto(f"{server.url}/ui/runs?pool={pool}")
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")
    page.evaluate("window.sameDocument = true")

    run = api.run_deployment(deployment.id, s.DeploymentRunRequest())
    row = page.locator(f'tr[data-run-id="{run.id}"]')
    expect(row).to_contain_text("Scheduled")
    api.cancel_flow_run(run.id)
    expect(row).to_contain_text("Cancelled")
    page.screenshot(path=screenshots / "runs-list-live.png", full_page=True)
    assert page.evaluate("window.sameDocument") is True


COUNT_STREAMS = """
window.streams = {opened: 0, closed: 0};
window.EventSource = class extends EventSource {
    constructor(...args) { super(...args); window.streams.opened += 1; }
    close() { window.streams.closed += 1; super.close(); }
};
"""


def _set_visibility(page, state: str) -> None:
    page.evaluate(
        """(state) => {
            Object.defineProperty(document, "visibilityState", {value: state, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def test_a_hidden_list_stops_listening_and_catches_up_when_shown(server, api, ui_flows, page):
    """While its tab is hidden the page holds no stream; shown again, it resumes from its
    last position and shows what changed meanwhile, without a reload."""
    pool, deployment = _deployment(api, ui_flows)
    page.add_init_script(COUNT_STREAMS)
    page.goto(f"{server.url}/ui/runs?pool={pool}")
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")
    page.evaluate("window.sameDocument = true")
    _set_visibility(page, "hidden")
    expect(page.locator("#live-status")).to_contain_text("Paused")
    assert page.evaluate("window.streams") == {"opened": 1, "closed": 1}
    missed = api.run_deployment(deployment.id, s.DeploymentRunRequest())
    api.cancel_flow_run(missed.id)
    _set_visibility(page, "visible")
    expect(page.locator(f'tr[data-run-id="{missed.id}"]')).to_contain_text("Cancelled")
    assert page.evaluate("window.streams") == {"opened": 2, "closed": 1}
    assert page.evaluate("window.sameDocument") is True


def test_an_admin_cancels_a_run_from_its_page(server, api, ui_flows, page):
    """The Cancel button asks the API; the run's new state replaces the button live."""
    _, deployment = _deployment(api, ui_flows)
    run = api.run_deployment(deployment.id, s.DeploymentRunRequest())
    page.goto(f"{server.url}/ui/runs/{run.id}")
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#action-result")).to_have_text("Cancellation requested.")
    expect(page.locator("#run-state")).to_have_text("Cancelled")
    expect(page.locator("[data-cancel]")).to_have_count(0)
    assert api.read_flow_run(run.id).state.type is StateType.CANCELLED


def test_a_run_page_shows_the_timeline_and_logs_of_a_real_run(
    server, api, ui_flows, page, screenshots, start_worker
):
    """A run a real worker executed: every transition, its task run, its logs (filtered by
    level), its worker, pool and infrastructure."""
    pool, deployment = _deployment(api, ui_flows)
    start_worker(pool)
    run = api.run_deployment(deployment.id, s.DeploymentRunRequest(parameters={"n": 3}))
    wait_until(
        lambda: api.read_flow_run(run.id).state.type is StateType.COMPLETED,
        timeout=90,
        message="the run did not complete",
    )
    wait_until(lambda: len(api.read_logs(run.id)) >= 2, message="the run's logs did not arrive")
    done = api.read_flow_run(run.id)
    history = [state.name for state in api.read_flow_run_history(run.id).states]
    assert history[0] == "Scheduled" and history[-1] == "Completed"

    page.goto(f"{server.url}/ui/runs/{run.id}")
    page.screenshot(path=screenshots / "run-page.png", full_page=True)
    timeline = page.locator("#timeline .state").all_inner_texts()
    assert timeline == history
    summary = page.locator("#run-summary")
    for shown in (done.worker_name, done.infrastructure_id, pool, done.queue_name):
        expect(summary).to_contain_text(shown or "(missing)")
    expect(page.locator("#task-runs")).to_contain_text("add")
    expect(page.locator("pre.json")).to_contain_text('"n": 3')
    logs = page.locator("#logs")
    expect(logs).to_contain_text("starting with n=3")
    expect(logs).to_contain_text("careful: the total is 6")
    expect(page.locator("[data-cancel]")).to_have_count(0)  # final: nothing to cancel

    page.select_option("select[name=level]", "WARNING")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    expect(logs).to_contain_text("careful: the total is 6")
    expect(logs).not_to_contain_text("starting with n=3")


def test_new_logs_and_states_reach_an_open_run_page_live(server, api, page, screenshots):
    """Log lines shipped and a state change made while the page is open appear in it, once
    each (the lines it was rendered with are not sent again)."""
    run = api.create_flow_run(s.FlowRunCreate(flow_name="by-hand", name="watched-live"))
    api.create_logs([s.LogCreate(flow_run_id=run.id, message="before", timestamp=_now())])
    page.goto(f"{server.url}/ui/runs/{run.id}")
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")
    page.evaluate("window.sameDocument = true")
    api.create_logs([s.LogCreate(flow_run_id=run.id, message="<b>live</b>", timestamp=_now())])
    expect(page.locator("#logs")).to_contain_text("<b>live</b>")  # shown as text, not markup
    assert page.locator("#logs li .text").all_inner_texts() == ["before", "<b>live</b>"]
    api.set_flow_run_state(run.id, s.StateChange(type=StateType.COMPLETED))
    expect(page.locator("#run-state")).to_have_text("Completed")
    expect(page.locator("#timeline")).to_contain_text("Completed")
    page.screenshot(path=screenshots / "run-page-live.png", full_page=True)
    assert page.evaluate("window.sameDocument") is True


def test_a_reconnecting_stream_resumes_after_its_last_event_id(server, api, ui_flows):
    """The stream sends only the page's pool, each message with its position; reconnecting
    with the first message's id gets what followed it and nothing before."""
    pool, deployment = _deployment(api, ui_flows)
    _, elsewhere = _deployment(api, ui_flows)
    html = httpx.get(f"{server.url}/ui/runs?pool={pool}").text
    start = re.search(r'data-after="(\d+)"', html)
    assert start is not None
    first = api.run_deployment(deployment.id, s.DeploymentRunRequest())
    api.run_deployment(elsewhere.id, s.DeploymentRunRequest())
    second = api.run_deployment(deployment.id, s.DeploymentRunRequest())

    url = f"{server.url}/ui/stream?view=runs&pool={pool}"
    with httpx.stream("GET", f"{url}&last_event_id={start[1]}", timeout=15) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        got = events(answer, 2)
    assert [json.loads(m["data"])["id"] for m in got] == [first.id, second.id]
    assert all(m["event"] == "row" and int(m["id"]) > int(start[1]) for m in got)

    with httpx.stream("GET", url, headers={"Last-Event-ID": got[0]["id"]}, timeout=15) as again:
        resumed = events(again, 1)
    assert json.loads(resumed[0]["data"])["id"] == second.id


def test_bad_filters_and_unknown_runs_are_answered_clearly(server):
    """An unknown state is a 422 naming it, an unknown run a 404 page, a bad cursor a 422."""
    bad_state = httpx.get(f"{server.url}/ui/runs?state=SLEEPY")
    assert bad_state.status_code == 422 and "SLEEPY" in bad_state.text
    assert httpx.get(f"{server.url}/ui/runs?cursor=nonsense").status_code == 422
    missing = httpx.get(f"{server.url}/ui/runs/no-such-run")
    assert missing.status_code == 404 and "no-such-run" in missing.text
    assert httpx.get(f"{server.url}/ui/stream?view=elsewhere").status_code == 422


def _api_pages(server: ServerProcess, query: str) -> tuple[list[str], int]:
    """Every run ``GET /api/flow_runs?QUERY`` gives, following its next-page cursors."""
    seen: list[str] = []
    cursor, pages = "", 0
    while True:
        answer = httpx.get(f"{server.url}/api/flow_runs?{query}{cursor}")
        assert answer.status_code == 200, answer.text
        seen += [run["id"] for run in answer.json()]
        pages += 1
        after = answer.headers.get("Flowyard-Next-Cursor")
        if not after:
            return seen, pages
        cursor = f"&cursor={after}"


def test_the_api_pages_runs_by_cursor_in_either_order_and_within_a_time_range(
    server, api, ui_flows
):
    """``GET /api/flow_runs`` pages by keyset: page after page gives each run once, oldest
    first is the reverse of newest first, and ``since``/``until`` cut by creation time."""
    pool, deployment = _deployment(api, ui_flows)
    made = [api.run_deployment(deployment.id, s.DeploymentRunRequest()) for _ in range(5)]
    newest, pages = _api_pages(server, f"pool={pool}&limit=2")
    assert sorted(newest) == sorted(r.id for r in made) and pages == 3
    oldest, _ = _api_pages(server, f"pool={pool}&limit=2&order=oldest")
    assert oldest == newest[::-1]

    runs = {r.id: r for r in api.list_flow_runs(pool=pool)}
    middle = runs[oldest[2]].created.isoformat()
    later, _ = _api_pages(server, f"pool={pool}&since={middle.replace('+', '%2B')}")
    earlier, _ = _api_pages(server, f"pool={pool}&until={middle.replace('+', '%2B')}")
    assert set(later) == set(oldest[2:]) and set(earlier) == set(oldest[:2])


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("since=yesterday", "since"),
        ("until=2026-13-40", "until"),
        ("order=sideways", "order"),
        ("cursor=bm90IGEgY3Vyc29y", "cursor"),
        ("cursor=WyIyMDI2LTAxLTAxIiwieCJd", "cursor"),  # ["2026-01-01","x"]: a naive time
        ("state=sleepy", "state"),
    ],
)
def test_a_bad_list_query_is_a_422_naming_the_field(server, query, named):
    """In the API and in the page alike, a bad filter is refused with its name."""
    answer = httpx.get(f"{server.url}/api/flow_runs?{query}")
    assert answer.status_code == 422 and named in answer.text
    page = httpx.get(f"{server.url}/ui/runs?{query}")
    assert page.status_code == 422 and named in page.text


def test_oldest_first_a_new_run_appears_live_at_the_end_of_the_last_page(
    server, api, ui_flows, page
):
    """Oldest first, the page lists runs in creation order and a new run is added at the
    end, live, without a reload; the time range fields keep what was asked."""
    pool, deployment = _deployment(api, ui_flows)
    made = [api.run_deployment(deployment.id, s.DeploymentRunRequest()) for _ in range(2)]
    page.goto(f"{server.url}/ui/runs?pool={pool}&order=oldest&since=2020-01-01T00:00:00")
    assert _row_ids(page) == [r.id for r in made]
    expect(page.locator("input[name=since]")).to_have_value("2020-01-01T00:00")
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")

    late = api.run_deployment(deployment.id, s.DeploymentRunRequest())
    expect(page.locator(f'tr[data-run-id="{late.id}"]')).to_have_count(1)
    assert _row_ids(page) == [*(r.id for r in made), late.id]


def test_runs_sorted_by_start_or_end_time_page_by_cursor_and_a_started_run_joins_live(
    server, api, ui_flows, page, screenshots, start_worker
):
    """By start or end time, in the API and the page alike, page after page gives the runs
    that have that time in its order (a run not started is not among them), a cursor is
    refused in another order, and on the first page by latest start a run that starts
    appears at the top, live."""
    pool, deployment = _deployment(api, ui_flows)
    later = _now().replace(year=_now().year + 1)
    waiting = api.run_deployment(deployment.id, s.DeploymentRunRequest(scheduled_time=later))
    start_worker(pool)
    made = [api.run_deployment(deployment.id, s.DeploymentRunRequest()) for _ in range(4)]

    def all_done() -> bool:
        return all(api.read_flow_run(r.id).state.type is StateType.COMPLETED for r in made)

    wait_until(all_done, timeout=120, message="the runs did not complete")
    runs = [api.read_flow_run(r.id) for r in made]
    by_start = [r.id for r in sorted(runs, key=lambda r: (r.start_time, r.id), reverse=True)]
    by_end = [r.id for r in sorted(runs, key=lambda r: (r.end_time, r.id))]
    assert _api_pages(server, f"pool={pool}&limit=3&order=started") == (by_start, 2)
    assert _api_pages(server, f"pool={pool}&limit=3&order=ended-earliest") == (by_end, 2)
    assert waiting.id not in _api_pages(server, f"pool={pool}&order=started")[0]

    first = httpx.get(f"{server.url}/api/flow_runs?pool={pool}&limit=1&order=started")
    cursor = first.headers["Flowyard-Next-Cursor"]
    for other in ("ended", "newest"):
        refused = httpx.get(f"{server.url}/api/flow_runs?order={other}&cursor={cursor}")
        assert refused.status_code == 422 and "another order" in refused.text

    page.goto(f"{server.url}/ui/runs?pool={pool}&order=started&limit=3")
    expect(page.locator("select[name=order]")).to_have_value("started")
    seen = _row_ids(page)
    with page.expect_navigation():
        page.locator("a[rel=next]").click()
    assert seen + _row_ids(page) == by_start
    page.goto(f"{server.url}/ui/runs?pool={pool}&order=started")
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")
    fresh = api.run_deployment(deployment.id, s.DeploymentRunRequest())
    expect(page.locator(f'tr[data-run-id="{fresh.id}"]')).to_have_count(1, timeout=60_000)
    assert _row_ids(page)[0] == fresh.id
    assert waiting.id not in _row_ids(page)
    page.screenshot(path=screenshots / "runs-by-start.png", full_page=True)
