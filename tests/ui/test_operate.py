"""The web UI's operating pages (work pools, deployments and the run form) on a server that
requires API keys, in Chromium, with a real worker: what an admin changes in a page goes
through the JSON API and takes effect; a viewer sees no change buttons and the API refuses
its changes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.servers import running_server
from tests.waiting import wait_until

ADMIN = "admin-key-for-the-web-ui-operating-tests-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**FAST, "FLOWYARD_API_KEY": ADMIN}
    with running_server(tmp_path_factory.mktemp("ui-operate-home"), env) as process:
        yield process


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[FlowyardClient]:
    with FlowyardClient(server.url, ADMIN) as client:
        yield client


@pytest.fixture
def start_worker(server: ServerProcess, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``flowyard worker start --pool <pool> …`` with the admin key, stopped after the test."""
    started: list[WorkerProcess] = []

    def start(pool: str, *args: str) -> WorkerProcess:
        env = {**FAST, "FLOWYARD_API_KEY": ADMIN}
        started.append(WorkerProcess(server.url, pool, tmp_path, *args, env=env))
        return started[-1]

    yield start
    for worker in started:
        worker.stop(timeout=30)


def sign_in(page, server: ServerProcess, key: str, target: str) -> None:
    page.goto(f"{server.url}{target}")
    page.get_by_label("API key").fill(key)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}{target}")


def _pool(api: FlowyardClient) -> str:
    return create_process_pool(api, f"ops-{uuid.uuid4().hex[:8]}")


def _queue_order(page) -> list[str]:
    return page.locator("#queues tbody tr").evaluate_all("rows => rows.map(r => r.dataset.queue)")


def test_the_pools_list_shows_each_pools_status_limit_and_slots(
    server, api, ui_flows, page, screenshots
):
    """A paused pool shows Paused, one nobody polls Not ready, with their limits; a run
    nobody claimed in time is listed as late on its pool's page."""
    idle, paused = _pool(api), _pool(api)
    dep = deploy_flow(api, idle, ui_flows, "chatty", name=f"late-{idle}", late_after_seconds=0)
    due = datetime.now(UTC) - timedelta(minutes=5)
    late = api.run_deployment(dep.id, s.DeploymentRunRequest(scheduled_time=due))
    api.update_work_pool(paused, s.WorkPoolUpdate(paused=True, concurrency_limit=3))
    sign_in(page, server, ADMIN, "/ui/pools")
    expect(page.locator(f'tr[data-pool="{idle}"]')).to_contain_text("Not ready")
    row = page.locator(f'tr[data-pool="{paused}"]')
    expect(row).to_contain_text("Paused")
    expect(row.locator("td").nth(3)).to_have_text("3")
    page.screenshot(path=screenshots / "pools.png", full_page=True)

    wait_until(lambda: api.read_flow_run(late.id).state.name == "Late", timeout=30)
    with page.expect_navigation():
        page.get_by_role("link", name=idle).click()
    expect(page.locator("#late-runs")).to_contain_text(late.name)
    expect(page.locator('tr[data-queue="default"]')).to_contain_text(late.name)  # oldest waiting


def test_a_queue_priority_and_a_pool_limit_set_in_the_page_rule_the_next_claims(
    server, api, ui_flows, page, screenshots, start_worker
):
    """Two queues with two runs each: the page raises the second queue above the default
    and sets the pool's limit to 1; a real worker then claims the raised queue's runs first,
    one at a time. The worker appears on the open page when it comes online."""
    pool = _pool(api)
    api.create_work_queue(pool, s.WorkQueueCreate(name="urgent", priority=5))
    normal = deploy_flow(api, pool, ui_flows, "chatty", name=f"normal-{pool}")
    urgent = deploy_flow(api, pool, ui_flows, "chatty", name=f"urgent-{pool}", queue_name="urgent")
    run_ids = [
        api.run_deployment(dep.id, s.DeploymentRunRequest()).id
        for dep in (normal, normal, urgent, urgent)
    ]
    sign_in(page, server, ADMIN, f"/ui/pools/{pool}")
    assert _queue_order(page) == ["default", "urgent"]
    expect(page.locator('tr[data-queue="urgent"] .waiting')).to_have_text("2")

    priority = page.get_by_label("Priority of queue urgent", exact=True)
    priority.fill("0")
    with page.expect_navigation():
        page.get_by_role("button", name="Save the priority of queue urgent").click()
    assert _queue_order(page) == ["urgent", "default"]
    assert api.read_work_queue(pool, "urgent").priority == 0

    page.get_by_label("Pool limit").fill("1")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#pool-running")).to_have_text("0 of 1")
    assert api.read_work_pool(pool).concurrency_limit == 1
    page.screenshot(path=screenshots / "pool.png", full_page=True)

    page.evaluate("window.sameDocument = true")
    start_worker(pool, "--limit", "4")
    expect(page.locator("#workers")).to_contain_text("Online")
    assert page.evaluate("window.sameDocument") is True

    def finished() -> list[s.FlowRun]:
        found = [api.read_flow_run(run_id) for run_id in run_ids]
        return found if all(r.state.type is StateType.COMPLETED for r in found) else []

    done = wait_until(finished, timeout=90, message="the four runs did not complete")
    ordered = sorted(done, key=lambda r: r.start_time or r.created)
    assert [r.queue_name for r in ordered] == ["urgent", "urgent", "default", "default"]
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        assert earlier.end_time is not None and later.start_time is not None
        assert earlier.end_time <= later.start_time, "the pool's limit of 1 was not held"


def test_pausing_a_queue_in_the_page_and_clearing_a_limit(server, api, page):
    """Pause and resume a queue and clear its limit from the page; a change made elsewhere
    (the API) shows in the open page without a reload; a refused value says why."""
    pool = _pool(api)
    api.update_work_queue(pool, "default", s.WorkQueueUpdate(concurrency_limit=4))
    sign_in(page, server, ADMIN, f"/ui/pools/{pool}")
    row = page.locator('tr[data-queue="default"]')
    with page.expect_navigation():
        page.get_by_role("button", name="Pause queue default").click()
    expect(row).to_contain_text("Paused")
    assert api.read_work_queue(pool, "default").paused is True

    limit = page.get_by_label("Concurrency limit of queue default", exact=True)
    expect(limit).to_have_value("4")
    limit.fill("")
    with page.expect_navigation():
        page.get_by_role("button", name="Save the limit of queue default").click()
    assert api.read_work_queue(pool, "default").concurrency_limit is None

    page.get_by_label("Fair mode for queue default").check()
    wait_until(lambda: api.read_work_queue(pool, "default").fair, timeout=15)

    page.get_by_label("Priority of queue default", exact=True).fill("2000000")
    page.get_by_role("button", name="Save the priority of queue default").click()
    expect(row.locator(".field-error").first).to_contain_text("less than or equal")

    page.evaluate("window.sameDocument = true")
    api.update_work_queue(pool, "default", s.WorkQueueUpdate(paused=False))
    expect(row.get_by_role("button", name="Pause queue default")).to_be_visible()
    assert page.evaluate("window.sameDocument") is True


def test_a_viewer_sees_no_change_buttons_and_the_api_refuses_its_changes(server, api, page):
    """Signed in with a viewer key, the pool's page has no form or button that changes
    anything, and a PATCH sent anyway with the session's CSRF token is 403."""
    pool = _pool(api)
    viewer = api.create_api_key(s.ApiKeyCreate(name=f"v-{pool}", role="viewer")).key
    sign_in(page, server, viewer, f"/ui/pools/{pool}")
    expect(page.locator("#queues")).to_contain_text("default")
    expect(page.locator("[data-api]")).to_have_count(0)
    refused = page.evaluate(
        """async (pool) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const answer = await fetch(`/api/work_pools/${pool}`, {method: "PATCH",
                headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
                body: JSON.stringify({paused: true})});
            return answer.status;
        }""",
        pool,
    )
    assert refused == 403 and api.read_work_pool(pool).paused is False
    assert re.search(r"viewer", page.locator(".who").inner_text())
