"""The web UI's list and stream on PostgreSQL: the same keyset pages as on SQLite, and a
stream that waits for events to settle before it reads past them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.e2e.test_postgres import fresh_database
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
