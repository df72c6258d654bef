"""The web UI's list and stream on PostgreSQL: the same keyset pages as on SQLite, and a
stream that sends changes before they settle and still each once, in order."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.helpers.task_runs import task_run_records
from tests.postgres import fresh_database
from tests.servers import running_server
from tests.ui.conftest import events

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server(postgres_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**FAST, "FLOWYARD_DATABASE_URL": fresh_database(postgres_server, "flowyard_ui")}
    with running_server(tmp_path_factory.mktemp("ui-pg-home"), env) as process:
        yield process


def _ids(html: str) -> list[str]:
    return re.findall(r'<tr data-run-id="([^"]+)"', html)


def test_pages_and_the_stream_on_postgresql(server, ui_flows):
    """Pages by cursor hold the API's runs in its order; the stream sends the runs made
    after the page's position, each once, in order."""
    with FlowyardClient(server.url) as api:
        pool = create_process_pool(api, "ui-pg")
        deployment = deploy_flow(api, pool, ui_flows, "chatty")
        before = [api.run_deployment(deployment.id, s.DeploymentRunRequest()) for _ in range(3)]
        expected = [r.id for r in api.list_flow_runs(pool=pool)]
        assert sorted(expected) == sorted(r.id for r in before)

        first = httpx.get(f"{server.url}/ui/runs?pool={pool}&limit=2")
        cursor = re.search(r'rel="next" href="/ui/runs\?([^"]+)"', first.text)
        assert cursor is not None
        second = httpx.get(f"{server.url}/ui/runs?" + cursor[1].replace("&amp;", "&"))
        assert _ids(first.text) + _ids(second.text) == expected
        start = re.search(r'data-after="(\d+)"', first.text)
        assert start is not None

        later = [api.run_deployment(deployment.id, s.DeploymentRunRequest()) for _ in range(2)]
    url = f"{server.url}/ui/stream?view=runs&pool={pool}&last_event_id={start[1]}"
    with httpx.stream("GET", url, timeout=20) as answer:
        got = events(answer, 2)
    assert [json.loads(m["data"])["id"] for m in got] == [r.id for r in later]


def test_a_runs_grouped_task_graph_and_log_search_on_postgresql(server):
    """The grouped task graph's counts and spans (one GROUP BY), its edges (the inputs' JSON
    read as text) and the log search's LIKE work on PostgreSQL as on SQLite."""
    with FlowyardClient(server.url) as api:
        run = api.create_flow_run(s.FlowRunCreate(flow_name="bulk", name="pg-many-tasks"))
        assert api.upsert_task_runs(task_run_records(run.id, 300, tasks=3)).upserted == 300
        now = datetime.now(UTC)
        api.create_logs(
            [s.LogCreate(flow_run_id=run.id, message=m, timestamp=now) for m in ("50% a", "500 b")]
        )
    html = httpx.get(f"{server.url}/ui/runs/{run.id}", params={"q": "0%"}, timeout=30).text
    counts = re.findall(r'class="bar [^"]*" data-count="(\d+)"', html)
    assert counts == ["100", "100", "100"]
    assert html.count('class="edge"') == 3  # step0→step1→step2→step0
    assert "50% a" in html and "500 b" not in html


def test_a_runs_stream_follows_its_background_task_runs_on_postgresql(server):
    """A background task run's events name no flow run; the run's stream follows them by the
    task runs' ids (a concatenated id in a subquery) and swaps in their rows."""
    with FlowyardClient(server.url) as api:
        run = api.create_flow_run(s.FlowRunCreate(flow_name="bulk", name="pg-background"))
        page = httpx.get(f"{server.url}/ui/runs/{run.id}", timeout=30).text
        start = re.search(r'data-after="(\d+)-', page)
        assert start is not None
        made = s.BackgroundTaskRunCreate(
            task_key="pg-bg", name="pg-bg-0", caller_flow_run_id=run.id
        )
        api.create_background_task_run(made)
    url = f"{server.url}/ui/stream?view=run&run={run.id}&tail=0&last_event_id={start[1]}"
    with httpx.stream("GET", url, timeout=20) as answer:
        (got,) = events(answer, 1)
    assert got["event"] == "swap"
    assert "pg-bg-0" in json.loads(got["data"])["background-runs"]
