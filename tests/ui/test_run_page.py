"""The flow-run page's task graph and Gantt timeline, log search and download, subflow
links and Re-run, in Chromium against a real server, with runs a real worker executed
and a run of 2,000 task-run records sent through the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.states import StateType
from flowyard.ui import task_graph
from tests.e2e.conftest import create_process_pool, deploy_flow
from tests.helpers.task_runs import task_run_records
from tests.waiting import wait_until

FLOWS = textwrap.dedent(
    """
    from flowyard import flow, get_run_logger, task


    @task
    def double(x: int) -> int:
        return 2 * x


    @task
    def total(a: int, b: int) -> int:
        return a + b


    @task
    def announce() -> None:
        get_run_logger().info("announced")


    @flow(name="child")
    def child() -> int:
        return 1


    @flow(name="diamond")
    def diamond(n: int = 500) -> int:
        log = get_run_logger()
        for i in range(3):
            log.info("line %s of n=%s", i, n)
        log.warning("needle in the haystack")
        a = double(n)
        b = double(n + 1)
        t = total(a, b)
        announce(wait_for=[t])
        child()
        return t
    """
)


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ui-run-flows")
    (folder / "flows.py").write_text(FLOWS)
    return folder


def _completed(api: FlowyardClient, run_id: str) -> None:
    wait_until(
        lambda: api.read_flow_run(run_id).state.type is StateType.COMPLETED,
        timeout=90,
        message=f"run {run_id} did not complete",
    )


def test_a_real_runs_graph_logs_subflow_and_rerun(
    server, api, flows, page, screenshots, start_worker
):
    """A run a worker executed: a bar and a node per task run, an edge per recorded input
    (and wait_for), its subflow linked both ways, log search and download, and Re-run
    creating a run of the same deployment and parameters that completes."""
    pool = create_process_pool(api, f"ui-run-{uuid.uuid4().hex[:8]}")
    deployment = deploy_flow(api, pool, flows, "diamond", name=f"diamond-{pool}")
    start_worker(pool)
    run = api.run_deployment(deployment.id, s.DeploymentRunRequest(parameters={"n": 500}))
    _completed(api, run.id)
    wait_until(lambda: len(api.read_logs(run.id)) >= 4, message="the logs did not arrive")
    task_runs = api.list_task_runs(run.id)
    assert len(task_runs) == 5  # double ×2, total, announce, and the subflow's call

    page.goto(f"{server.url}/ui/runs/{run.id}")
    page.screenshot(path=screenshots / "run-graph.png", full_page=True)
    assert page.locator("#gantt").get_attribute("data-grouped") == "false"
    expect(page.locator("#gantt g.bar")).to_have_count(5)
    expect(page.locator("#dag g.node")).to_have_count(5)
    # double→total twice, total→announce (wait_for); results are linked by identity,
    # so the flow passes large ints (small ones are shared objects, never linked)
    expect(page.locator("#dag path.edge")).to_have_count(3)
    expect(page.locator("#dag")).to_contain_text("total")
    child = page.locator("#child-runs a")
    expect(child).to_have_count(1)

    with page.expect_navigation():
        child.click()
    expect(page.locator("#parent-run")).to_have_attribute("href", f"/ui/runs/{run.id}")

    page.goto(f"{server.url}/ui/runs/{run.id}")
    page.fill("input[name=q]", "needle")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    assert page.locator("#logs li .text").all_inner_texts() == ["needle in the haystack"]

    download = httpx.get(f"{server.url}/ui/runs/{run.id}/logs.txt", timeout=15)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/plain")
    assert download.headers["content-disposition"].startswith("attachment;")
    lines = download.text.splitlines()
    assert [line.split(" ", 3)[3] for line in lines] == [
        log.message for log in api.read_logs(run.id)
    ]

    page.on("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.locator("#rerun").click()
    again = page.url.rsplit("/", 1)[1]
    assert again != run.id
    copy = api.read_flow_run(again)
    assert copy.deployment_id == deployment.id and copy.parameters == run.parameters
    _completed(api, again)


def test_two_thousand_task_runs_are_drawn_grouped_by_task(server, api, page, screenshots):
    """Beyond the detail bound the page draws one bar and one node per task, with counts
    that add up to every task run, and the bad state shows on its group."""
    name = f"bulk-{uuid.uuid4().hex[:6]}"
    run = api.create_flow_run(s.FlowRunCreate(flow_name="bulk", name=name))
    records = task_run_records(run.id, 2_000)
    for chunk in range(0, len(records), 1_000):
        assert api.upsert_task_runs(records[chunk : chunk + 1_000]).upserted == 1_000

    html = httpx.get(f"{server.url}/ui/runs/{run.id}", timeout=30)
    assert html.status_code == 200 and html.text.count('class="bar ') == 5
    page.goto(f"{server.url}/ui/runs/{run.id}")
    page.locator("#task-graph").screenshot(path=screenshots / "run-graph-grouped.png")
    gantt = page.locator("#gantt")
    assert gantt.get_attribute("data-grouped") == "true"
    counts = gantt.locator("g.bar").evaluate_all("bars => bars.map(b => +b.dataset.count)")
    assert sorted(counts) == [400] * 5
    expect(page.locator("#graph-note")).to_contain_text("2000 task runs")
    nodes = page.locator("#dag g.node")
    expect(nodes).to_have_count(5)
    failed = page.locator('#dag g.node[data-key="step2"]').get_attribute("class") or ""
    assert "state-failed" in failed
    assert page.locator("#dag path.edge").count() == 5  # each task fed by the one before, in a ring
    assert task_graph.MAX_DETAIL < 2_000


def test_log_search_and_download_are_bounded_and_answer_clearly(server, api):
    """Search finds only matching lines (a % or _ is text, not a pattern); a too-long
    search is a 422 naming q; an unknown run's download is a 404."""
    run = api.create_flow_run(s.FlowRunCreate(flow_name="by-hand", name="searched"))
    now = datetime.now(UTC)
    messages = ["100% done", "1000 done", "half_way", "halfway"]
    api.create_logs([s.LogCreate(flow_run_id=run.id, message=m, timestamp=now) for m in messages])
    url = f"{server.url}/ui/runs/{run.id}"
    found = httpx.get(url, params={"q": "0%"}).text
    assert "100% done" in found and "1000 done" not in found
    found = httpx.get(url, params={"q": "f_w"}).text
    assert "half_way" in found and "halfway" not in found
    too_long = httpx.get(url, params={"q": "x" * 201})
    assert too_long.status_code == 422 and "q:" in too_long.text
    assert httpx.get(f"{server.url}/ui/runs/no-such-run/logs.txt").status_code == 404
    text = httpx.get(f"{url}/logs.txt").text
    assert [line.split(" ", 3)[3] for line in text.splitlines()] == messages


def test_beyond_sixty_tasks_the_smallest_are_drawn_as_one_group(server, api):
    """300 task runs of 70 tasks: the 59 largest tasks get a bar each and the other 11
    share one, so every task run is still counted once."""
    run = api.create_flow_run(s.FlowRunCreate(flow_name="bulk", name="many-tasks"))
    assert api.upsert_task_runs(task_run_records(run.id, 300, tasks=70)).upserted == 300
    html = httpx.get(f"{server.url}/ui/runs/{run.id}", timeout=30).text
    gantt = html[html.index('id="gantt"') : html.index("</svg>")]
    counts = [int(n) for n in re.findall(r'class="bar [^"]*" data-count="(\d+)"', gantt)]
    assert len(counts) == task_graph.MAX_GROUPS and sum(counts) == 300
    assert "(other tasks) ×44" in gantt  # 70 tasks of 4 or 5 runs: 59 kept hold 256


def test_an_admin_resumes_a_paused_run_from_its_page(server, api, page):
    """Resume shows on a Paused run only and moves it to Running through the API; a run
    without a deployment has no Re-run."""
    run = api.create_flow_run(s.FlowRunCreate(flow_name="by-hand", name="paused"))
    page.goto(f"{server.url}/ui/runs/{run.id}")
    expect(page.locator("#resume-run")).to_have_count(0)
    expect(page.locator("#rerun")).to_have_count(0)
    api.set_flow_run_state(run.id, s.StateChange(type=StateType.PAUSED))
    page.reload()
    with page.expect_navigation():
        page.locator("#resume-run").click()
    expect(page.locator("#run-state")).to_have_text("Running")
    assert api.read_flow_run(run.id).state.type is StateType.RUNNING


PERSISTING = textwrap.dedent(
    """
    from flowyard import flow, task
    from flowyard.runtime import flow_run


    @task(persist_result=True, result_serializer="pickle")
    def pickled() -> set[int]:
        return {1, 2}


    @flow(name="persisting", persist_result=True, result_serializer="json")
    def persisting() -> dict:
        pickled()
        print(flow_run.id)
        return {"answer": 42, "note": "<script>alert(1)</script>"}


    if __name__ == "__main__":
        persisting()
    """
)


def _run_script(server, folder: Path, name: str, text: str) -> str:
    """Run a flow script against the server in its own process; the run id it prints."""
    (folder / name).write_text(text)
    env = {**os.environ, "FLOWYARD_API_URL": server.url, "FLOWYARD_HOME": str(folder)}
    done = subprocess.run(
        [sys.executable, name],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def test_persisted_results_show_their_reference_and_a_small_json_value(server, api, page, tmp_path):
    """A real run whose flow persists a JSON result and whose task pickles one: the page
    shows both references (serializer, location), the JSON value as escaped text, and of
    the pickled one nothing but its reference."""
    run_id = _run_script(server, tmp_path, "persisting.py", PERSISTING)
    run = api.read_flow_run(run_id)
    assert run.result is not None and run.result.serializer == "json"
    (task_run,) = api.list_task_runs(run_id)
    assert task_run.result is not None and task_run.result.value_json is None

    page.goto(f"{server.url}/ui/runs/{run_id}")
    shown = page.locator("#run-result")
    expect(shown.locator(".serializer")).to_have_text("json")
    expect(shown.locator(".location")).to_have_text(run.result.location)
    value = shown.locator(".result-value")
    assert json.loads(value.inner_text()) == {"answer": 42, "note": "<script>alert(1)</script>"}
    assert value.locator("script").count() == 0  # text, not markup
    cell = page.locator(f'tr[data-task-run-id="{task_run.id}"] .task-result')
    expect(cell.locator(".serializer")).to_have_text("pickle")
    expect(cell.locator(".location")).to_have_text(task_run.result.location)
    expect(cell).to_contain_text("never shown")
    expect(cell.locator(".result-value")).to_have_count(0)


DELAYING = textwrap.dedent(
    """
    from flowyard import flow, task
    from flowyard.runtime import flow_run


    @task
    def shout(word: str) -> str:
        return word.upper()


    @flow(name="delaying")
    def delaying() -> None:
        shout.delay("hello")
        shout.delay("world")
        print(flow_run.id)


    if __name__ == "__main__":
        delaying()
    """
)


def test_a_runs_page_lists_the_background_task_runs_it_made(server, api, page, tmp_path):
    """A real run whose flow calls ``.delay()`` twice (no task worker serves them): its page
    lists both background runs with their task and Scheduled state; another run lists none."""
    run_id = _run_script(server, tmp_path, "delaying.py", DELAYING)
    assert api.list_task_runs(run_id) == []  # background runs belong to no flow run

    page.goto(f"{server.url}/ui/runs/{run_id}")
    rows = page.locator("#background-runs tbody tr")
    expect(rows).to_have_count(2)
    for row in rows.all():
        expect(row).to_contain_text("shout")
        expect(row.locator(".state")).to_have_text("Scheduled")
    expect(page.locator("#task-runs")).to_contain_text("No task runs.")

    other = api.create_flow_run(s.FlowRunCreate(flow_name="by-hand", name="no-delay"))
    html = httpx.get(f"{server.url}/ui/runs/{other.id}", timeout=15).text
    assert "No background task runs." in html
