"""The web UI's operating pages (work pools, deployments and the run form) on a server that
requires API keys, in Chromium, with a real worker: what an admin changes in a page goes
through the JSON API and takes effect; a viewer sees no change buttons and the API refuses
its changes."""

from __future__ import annotations

import html
import re
import textwrap
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.states import StateType
from tests.e2e.conftest import create_process_pool, deploy_flow
from tests.ui.conftest import ADMIN, sign_in
from tests.waiting import wait_until

REQUIRES_KEYS = True
FLOWS = textwrap.dedent(
    """
    from enum import Enum
    from typing import Annotated, Literal

    from pydantic import BaseModel, Field

    from flowyard import flow, get_run_logger


    class Color(str, Enum):
        red = "red"
        green = "green"


    class Target(BaseModel):
        host: str
        port: int = 5432


    @flow(name="configured")
    def configured(
        target: Target,
        count: Annotated[int, Field(ge=1)],
        mode: Literal["fast", "slow"] = "fast",
        color: Color = Color.green,
        dry_run: bool = False,
    ) -> str:
        get_run_logger().info("to %s:%s, %s times", target.host, target.port, count)
        return f"{target.host}:{target.port} x{count} {mode} {color.value} {dry_run}"


    @flow(name="broken")
    def broken() -> None:
        raise ValueError("the data is wrong")
    """
)


@pytest.fixture(scope="module")
def operate_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("operate-flows")
    (folder / "flows.py").write_text(FLOWS)
    return folder


def _pool(api: FlowyardClient) -> str:
    return create_process_pool(api, f"ops-{uuid.uuid4().hex[:8]}")


def _queue_order(page) -> list[str]:
    return page.locator("#queues tbody tr").evaluate_all("rows => rows.map(r => r.dataset.queue)")


def test_the_pools_list_shows_each_pools_status_limit_and_slots(
    server, api, ui_flows, page, screenshots
):
    """A pool nobody polls shows Not ready, with its limit; one paused while the list is
    open shows Paused without a reload; a run nobody claimed in time is listed as late on
    its pool's page."""
    idle, paused = _pool(api), _pool(api)
    dep = deploy_flow(api, idle, ui_flows, "chatty", name=f"late-{idle}", late_after_seconds=0)
    due = datetime.now(UTC) - timedelta(minutes=5)
    late = api.run_deployment(dep.id, s.DeploymentRunRequest(scheduled_time=due))
    api.update_work_pool(paused, s.WorkPoolUpdate(concurrency_limit=3))
    sign_in(page, server, ADMIN, "/ui/pools")
    expect(page.locator(f'tr[data-pool="{idle}"] .state')).to_have_text("Not ready")
    row = page.locator(f'tr[data-pool="{paused}"]')
    expect(row.locator("td").nth(3)).to_have_text("3")
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")
    page.evaluate("window.sameDocument = true")
    api.update_work_pool(paused, s.WorkPoolUpdate(paused=True))
    expect(row.locator(".state")).to_have_text("Paused")  # live: no reload
    assert page.evaluate("window.sameDocument") is True
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
    # the worker process starts slowly on a loaded machine: the page's part starts here
    wait_until(lambda: api.list_workers(pool), timeout=90, message="the worker never beat")
    expect(page.locator("#workers")).to_contain_text("Online")
    beat = page.locator("#workers td.heartbeat").first
    expect(beat).not_to_have_text(beat.inner_text())  # its next heartbeat, shown live
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

    with page.expect_navigation():  # a saved checkbox reloads the page
        page.get_by_label("Fair mode for queue default").check()
    assert api.read_work_queue(pool, "default").fair is True

    page.get_by_label("Priority of queue default", exact=True).fill("2000000")
    page.get_by_role("button", name="Save the priority of queue default").click()
    expect(row.locator(".field-error").first).to_contain_text("less than or equal")

    page.evaluate("window.sameDocument = true")
    api.update_work_queue(pool, "default", s.WorkQueueUpdate(paused=False))
    expect(row.get_by_role("button", name="Pause queue default")).to_be_visible()
    assert page.evaluate("window.sameDocument") is True


def test_a_deployment_limit_edited_on_the_pool_page_holds_at_the_next_claims(
    server, api, ui_flows, page, screenshots
):
    """The pool's console lists its deployments: a limit of 1 set there is the API's, and of
    two due runs a claim takes one while the other waits; a bound the API refuses says why,
    and clearing the field removes the limit."""
    pool = _pool(api)
    dep = deploy_flow(api, pool, ui_flows, "chatty", name=f"limited-{pool}")
    sign_in(page, server, ADMIN, f"/ui/pools/{pool}")
    label = f"chatty/{dep.name}"
    row = page.locator(f'#deployments tr[data-deployment="{label}"]')
    limit = page.get_by_label(f"Concurrency limit of deployment {label}", exact=True)
    expect(limit).to_have_value("")
    limit.fill("1")
    with page.expect_navigation():
        row.get_by_role("button", name=f"Save the limit of deployment {label}").click()
    expect(limit).to_have_value("1")
    assert api.read_deployment(dep.id).concurrency_limit == 1
    page.screenshot(path=screenshots / "pool-deployments.png", full_page=True)

    runs = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(2)]
    claim = s.ClaimRequest(worker_name="console", max_runs=10)
    claimed = [c.run.id for c in api.claim(pool, claim)]
    assert len(claimed) == 1 and claimed[0] in runs
    assert api.claim(pool, claim) == []
    expect(row.locator(".running")).to_have_text("1")  # live: the claimed run is Pending

    limit.fill("2000000")
    row.get_by_role("button", name=f"Save the limit of deployment {label}").click()
    expect(row.locator(".field-error")).to_contain_text("less than or equal")
    limit.fill("")
    with page.expect_navigation():
        row.get_by_role("button", name=f"Save the limit of deployment {label}").click()
    assert api.read_deployment(dep.id).concurrency_limit is None


def test_a_deployment_limit_is_set_refused_and_cleared_on_the_deployments_page(
    server, api, ui_flows, page
):
    """The deployment's own page edits its limit through the API: set, refused with the
    API's reason next to the field (the stored limit kept), and cleared."""
    dep = deploy_flow(api, _pool(api), ui_flows, "chatty", name=f"own-limit-{uuid.uuid4().hex[:6]}")
    sign_in(page, server, ADMIN, f"/ui/deployments/{dep.id}")
    limit = page.get_by_label("Concurrency limit of this deployment", exact=True)
    save = page.get_by_role("button", name="Set limit")
    limit.fill("3")
    with page.expect_navigation():
        save.click()
    expect(limit).to_have_value("3")
    assert api.read_deployment(dep.id).concurrency_limit == 3
    limit.fill("2000000")
    save.click()
    expect(page.locator("#deployment-limit .field-error")).to_contain_text("less than or equal")
    assert api.read_deployment(dep.id).concurrency_limit == 3
    limit.fill("")
    with page.expect_navigation():
        save.click()
    assert api.read_deployment(dep.id).concurrency_limit is None
    expect(limit).to_have_value("")


def test_a_new_run_changes_the_queue_depth_on_an_open_pool_page(server, api, ui_flows, page):
    """A run scheduled while the pool's page is open raises its queue's waiting count and
    becomes its oldest waiting run, without a reload."""
    pool = _pool(api)
    dep = deploy_flow(api, pool, ui_flows, "chatty", name=f"depth-{pool}")
    sign_in(page, server, ADMIN, f"/ui/pools/{pool}")
    row = page.locator('tr[data-queue="default"]')
    expect(row.locator(".waiting")).to_have_text("0")
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")
    page.evaluate("window.sameDocument = true")
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    expect(row.locator(".waiting")).to_have_text("1")
    expect(row.locator(".oldest")).to_contain_text(run.name)
    assert page.evaluate("window.sameDocument") is True


def test_a_viewer_sees_no_change_buttons_and_the_api_refuses_its_changes(
    server, api, ui_flows, page
):
    """Signed in with a viewer key, a pool's page and a deployment's have no form or button
    that changes anything, and changes sent anyway with the session's CSRF token are 403."""
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

    dep = deploy_flow(api, pool, ui_flows, "chatty", name=f"viewed-{pool}")
    page.goto(f"{server.url}/ui/deployments/{dep.id}")
    expect(page.locator("h1")).to_have_text(f"chatty/{dep.name}")
    expect(page.locator("#run-form")).to_have_count(0)
    expect(page.locator("[data-api]")).to_have_count(0)
    expect(page.locator("#deployment-limit")).to_have_text("none")  # shown, not editable
    status = page.evaluate(
        """async (id) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const answer = await fetch(`/api/deployments/${id}/runs`, {method: "POST",
                headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
                body: "{}"});
            return answer.status;
        }""",
        dep.id,
    )
    assert status == 403 and api.list_flow_runs(deployment_id=dep.id) == []
    status = page.evaluate(
        """async (id) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const answer = await fetch(`/api/deployments/${id}`, {method: "PATCH",
                headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
                body: JSON.stringify({concurrency_limit: 1})});
            return answer.status;
        }""",
        dep.id,
    )
    assert status == 403 and api.read_deployment(dep.id).concurrency_limit is None

    block = f"viewed-{uuid.uuid4().hex[:6]}"
    api.save_block("secret", block, {"value": SECRET})
    answer = page.goto(f"{server.url}/ui/blocks/secret/{block}")
    assert answer is not None and SECRET not in answer.text()
    expect(page.locator("#block-fields .secret")).to_have_text("set (hidden)")
    expect(page.locator("[data-api]")).to_have_count(0)
    page.goto(f"{server.url}/ui/concurrency-limits")
    expect(page.locator("h1")).to_have_text("Concurrency limits")
    expect(page.locator("[data-api]")).to_have_count(0)


def test_the_run_form_follows_the_flows_schema_and_its_run_completes_live(
    server, api, operate_flows, page, screenshots, start_worker
):
    """The form has a fieldset for the nested model, selects for the enums, the defaults
    filled in and the required fields marked; the API's refusals show next to the field
    they name; a good submission opens the new run's page, where a real worker's run shows
    Completed without a reload, with the parameters the form sent."""
    pool = _pool(api)
    dep = deploy_flow(api, pool, operate_flows, "configured", name=f"form-{pool}")
    sign_in(page, server, ADMIN, f"/ui/deployments/{dep.id}")
    form = page.locator("#run-form")
    expect(form.locator("fieldset#f-parameters-target legend")).to_contain_text("(required)")
    expect(page.get_by_label("port")).to_have_value("5432")
    expect(page.get_by_label("mode")).to_have_value('"fast"')
    expect(page.get_by_label("color")).to_have_value('"green"')
    expect(page.locator("select#f-parameters-color option")).to_have_text(["red", "green"])
    expect(page.get_by_label("dry_run")).to_have_value("false")
    expect(form.locator("label[for=f-parameters-count]")).to_contain_text("(required)")

    page.get_by_label("host").fill("db.internal")
    page.get_by_label("count").fill("0")
    page.get_by_label("Job variables (JSON object)").fill('{"no_such_variable": 1}')
    page.get_by_role("button", name="Run", exact=True).click()
    count_error = page.locator('.field-error[data-for="parameters.count"]')
    expect(count_error).to_contain_text("minimum of 1")
    expect(page.get_by_label("count")).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=screenshots / "deployment-run-form-error.png", full_page=True)

    page.get_by_label("count").fill("2")
    page.get_by_role("button", name="Run", exact=True).click()
    job_error = page.locator('.field-error[data-for="job_variables"]')
    expect(job_error).to_contain_text("unknown job variable 'no_such_variable'")
    expect(count_error).to_be_empty()
    assert api.list_flow_runs(deployment_id=dep.id) == []

    page.get_by_label("Job variables (JSON object)").fill("")
    page.get_by_label("mode").select_option(label="slow")
    with page.expect_navigation():
        page.get_by_role("button", name="Run", exact=True).click()
    expect(page).to_have_url(re.compile(r"/ui/runs/[0-9a-f-]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#run-state")).to_have_text("Scheduled")
    page.evaluate("window.sameDocument = true")
    start_worker(pool)
    expect(page.locator("#run-state")).to_have_text("Completed", timeout=60_000)
    assert page.evaluate("window.sameDocument") is True
    page.screenshot(path=screenshots / "deployment-run-completed.png", full_page=True)
    run = api.read_flow_run(run_id)
    assert run.deployment_id == dep.id
    assert run.parameters == {
        "target": {"host": "db.internal", "port": 5432},
        "count": 2,
        "mode": "slow",
        "color": "green",
        "dry_run": False,
    }


def test_a_deployments_schedules_show_their_next_runs_in_their_time_zone(
    server, api, operate_flows, page, screenshots
):
    """A 09:00 New York cron shows its next runs at 09:00 EST; the page pauses a schedule
    and the deployment, and the list shows it paused."""
    pool = _pool(api)
    schedule = s.ScheduleCreate(kind="cron", expression="0 9 * * *", timezone="America/New_York")
    dep = deploy_flow(
        api, pool, operate_flows, "configured", name=f"sched-{pool}", schedules=[schedule],
        parameters={"target": {"host": "h"}, "count": 1},
    )  # fmt: skip
    sign_in(page, server, ADMIN, "/ui/deployments")
    with page.expect_navigation():
        page.get_by_role("link", name=dep.name).click()
    times = page.locator("#schedules .next-runs time")
    expect(times).to_have_count(3)
    for text in times.all_inner_texts():
        assert text.endswith("09:00 EST"), text
    expect(page.get_by_label("host")).to_have_value("h")  # the deployment's own parameters
    page.screenshot(path=screenshots / "deployment.png", full_page=True)

    with page.expect_navigation():
        page.get_by_role("button", name="Pause schedule 0 9 * * *").click()
    expect(page.locator("#schedules")).to_contain_text("Paused")
    (stored,) = api.list_schedules(dep.id)
    assert stored.active is False
    with page.expect_navigation():
        page.get_by_role("button", name="Pause deployment").click()
    expect(page.locator("#deployment-status")).to_have_text("Paused")
    assert api.read_deployment(dep.id).paused is True
    page.goto(f"{server.url}/ui/deployments")
    row = page.locator(f'tr[data-deployment="configured/{dep.name}"]')
    expect(row).to_contain_text("Paused")
    page.screenshot(path=screenshots / "deployments.png", full_page=True)


def test_the_dashboard_counts_runs_by_state_and_shows_failures_pools_and_busy_queues(
    server, api, operate_flows, page, screenshots, start_worker
):
    """``/`` opens the dashboard: its counts by state, in its tiles and its chart's bars,
    are the API's; a failed run is among the latest failures, and a paused queue's three
    waiting runs make it a busy queue."""
    pool = _pool(api)
    api.create_work_queue(pool, s.WorkQueueCreate(name="held", paused=True))
    failing = deploy_flow(api, pool, operate_flows, "broken", name=f"broken-{pool}")
    held = deploy_flow(api, pool, operate_flows, "broken", name=f"held-{pool}", queue_name="held")
    failed = api.run_deployment(failing.id, s.DeploymentRunRequest())
    for _ in range(3):
        api.run_deployment(held.id, s.DeploymentRunRequest())
    start_worker(pool)
    wait_until(
        lambda: api.read_flow_run(failed.id).state.type is StateType.FAILED,
        timeout=60,
        message="the broken flow's run did not fail",
    )
    sign_in(page, server, ADMIN, "/ui/")
    page.goto(server.url + "/")
    expect(page).to_have_url(f"{server.url}/ui/")
    now = datetime.now(UTC)
    since = now - timedelta(hours=24)
    expected = Counter(
        r.state.type.value
        for r in api.list_flow_runs(limit=10_000)
        if since <= r.scheduled_time <= now
    )
    for state in StateType:
        tile = page.locator(f'#runs-by-state li[data-state="{state.value}"] .count')
        expect(tile).to_have_text(str(expected.get(state.value, 0)))
        drawn = page.locator(f'#runs-chart rect[data-state="{state.value}"]').evaluate_all(
            "rects => rects.reduce((sum, r) => sum + Number(r.dataset.count), 0)"
        )
        assert drawn == expected.get(state.value, 0), state
    expect(page.locator("#failures")).to_contain_text(failed.name)
    expect(page.locator(f'tr[data-pool="{pool}"] .state')).to_have_text("Ready")
    busy = page.locator(f'#busiest tr[data-queue="{pool}/held"]')
    expect(busy.locator(".waiting")).to_have_text("3")
    page.screenshot(path=screenshots / "dashboard.png", full_page=True)


def test_a_tag_limit_set_in_the_page_holds_and_is_deleted_from_it(server, api, page, screenshots):
    """The page creates a tag limit of 1: the API reads it back, a slot taken shows as in
    use, a second holder is refused a slot; the page deletes it."""
    tag = f"ui-tag-{uuid.uuid4().hex[:6]}"
    sign_in(page, server, ADMIN, "/ui/concurrency-limits")
    form = page.locator("#limit-form")
    form.get_by_label("Tag").fill(tag)
    form.get_by_label("Limit", exact=True).fill("1")
    with page.expect_navigation():
        form.get_by_role("button", name="Save limit").click()
    row = page.locator(f'tr[data-tag="{tag}"]')
    expect(row.locator(".limit")).to_have_text("1")
    expect(row.locator(".slots")).to_have_text("0")
    assert api.read_concurrency_limit(tag).limit == 1

    first = api.task_slots("acquire", s.SlotsRequest(tags=[tag], holder="first"))
    second = api.task_slots("acquire", s.SlotsRequest(tags=[tag], holder="second"))
    assert first.acquired and not second.acquired and second.full_tag == tag
    page.reload()
    expect(row.locator(".slots")).to_have_text("1")
    page.screenshot(path=screenshots / "concurrency-limits.png", full_page=True)

    page.on("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        row.get_by_role("button", name=f"Delete the limit of {tag}").click()
    expect(row).to_have_count(0)
    assert tag not in [limit.tag for limit in api.list_concurrency_limits()]


SECRET = "hunter2-never-in-a-browser-7f3a"


def test_a_blocks_secret_never_reaches_the_browser(server, api, page, screenshots):
    """A block created from its type's form with a password, then edited without retyping
    it, keeps its password (the API reveals it to an admin who asks); no response the
    pages received, HTML or JSON, holds it."""
    name = f"registry-{uuid.uuid4().hex[:6]}"
    bodies: list[bytes] = []

    def keep(response) -> None:
        try:
            bodies.append(response.body())
        except Exception:  # a redirect has no body to read
            bodies.append(b"")

    page.on("response", keep)
    sign_in(page, server, ADMIN, "/ui/blocks/new?type=docker-registry-credentials")
    form = page.locator("#block-form")
    form.get_by_role("textbox", name="Name (required)", exact=True).fill(name)
    form.get_by_label("Registry Url (required)").fill("registry.example.com:5000")
    form.get_by_label("Username (required)").fill("robot")
    form.get_by_label("Password (required)").fill(SECRET)
    expect(form.get_by_label("Reauth")).to_have_value("true")
    with page.expect_navigation():
        form.get_by_role("button", name="Create block").click()
    expect(page).to_have_url(f"{server.url}/ui/blocks/docker-registry-credentials/{name}")
    expect(page.locator("#block-fields .secret")).to_have_text("set (hidden)")
    password = page.locator("#block-form").get_by_label("Password", exact=True)
    expect(password).to_have_value("")

    page.locator("#block-form").get_by_label("Username (required)").fill("robot-2")
    with page.expect_navigation():
        page.get_by_role("button", name="Save block").click()
    expect(page.locator("#block-fields")).to_contain_text("robot-2")
    page.screenshot(path=screenshots / "block.png", full_page=True)
    page.goto(f"{server.url}/ui/blocks")
    expect(page.locator(f'tr[data-block="docker-registry-credentials/{name}"]')).to_be_visible()
    page.screenshot(path=screenshots / "blocks.png", full_page=True)

    stored = api.read_block("docker-registry-credentials", name, include_secrets=True)
    assert stored.data["password"] == SECRET and stored.data["username"] == "robot-2"
    assert len(bodies) >= 6
    assert not [body for body in bodies if SECRET.encode() in body]


def test_an_optional_secret_is_removed_from_the_page_and_the_others_kept(server, api, page):
    """A stored secret the type does not require has a Remove box: ticked, the save leaves
    it out and the block no longer has it; the untouched secret keeps its value."""
    name = f"aws-{uuid.uuid4().hex[:6]}"
    data = {"aws_secret_access_key": SECRET, "aws_session_token": "session-" + SECRET}
    api.save_block("aws-credentials", name, {**data, "region_name": "eu-west-1"})
    sign_in(page, server, ADMIN, f"/ui/blocks/aws-credentials/{name}")
    form = page.locator("#block-form")
    expect(form.get_by_label("Remove the stored aws secret access key")).not_to_be_checked()
    form.get_by_label("Remove the stored aws session token").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Save block").click()
    stored = api.read_block("aws-credentials", name, include_secrets=True).data
    assert stored.get("aws_session_token") is None
    assert stored["aws_secret_access_key"] == SECRET and stored["region_name"] == "eu-west-1"
    expect(page.locator("#block-form")).not_to_contain_text("Remove the stored aws session token")


def test_unknown_pools_deployments_and_blocks_are_404_and_bad_streams_422(server, api):
    """A page about nothing that exists says so (404); a pool stream without its pool, or
    of an unknown kind, is refused (422)."""
    client = httpx.Client(base_url=server.url, timeout=15)
    assert client.post("/ui/sign-in", data={"key": ADMIN}).status_code == 303
    for path, says in (
        ("/ui/pools/no-such-pool", "work pool 'no-such-pool' not found"),
        ("/ui/deployments/no-such-deployment", "deployment 'no-such-deployment' not found"),
        ("/ui/blocks/secret/no-such-block", "block secret/no-such-block not found"),
        ("/ui/blocks/new?type=no-such-type", "unknown block type"),
    ):
        answer = client.get(path)
        assert answer.status_code == 404 and says in html.unescape(answer.text), path
    for query in ("view=pool", "view=nothing"):
        assert client.get(f"/ui/stream?{query}").status_code == 422, query
