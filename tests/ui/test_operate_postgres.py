"""The operating pages on PostgreSQL: each renders from the store's grouped queries, and a
pool's page hears its queue's change on the stream."""

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
from tests.postgres import fresh_database
from tests.servers import running_server
from tests.ui.conftest import events

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server(postgres_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**FAST, "FLOWYARD_DATABASE_URL": fresh_database(postgres_server, "flowyard_ui_ops")}
    with running_server(tmp_path_factory.mktemp("ui-ops-pg-home"), env) as process:
        yield process


def test_operating_pages_and_the_pool_stream_on_postgresql(server, ui_flows):
    """Every operating page answers with its data (and no secret); a queue paused after
    the pool's page was rendered comes on its stream as the page's parts again."""
    with FlowyardClient(server.url) as api:
        pool = create_process_pool(api, "ops-pg")
        dep = deploy_flow(api, pool, ui_flows, "chatty")
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        api.set_concurrency_limit("pg-tag", 2)
        api.save_block("secret", "pg-secret", {"value": "pg-hidden-value"})
        pages = {
            "/ui/": '<span class="count">1</span>',  # the one Scheduled run
            "/ui/pools": pool,
            f"/ui/pools/{pool}": run.name,  # the oldest waiting run
            "/ui/deployments": dep.name,
            f"/ui/deployments/{dep.id}": 'name="parameters.n"',
            "/ui/concurrency-limits": "pg-tag",
            "/ui/blocks/secret/pg-secret": "set (hidden)",
        }
        for path, expected in pages.items():
            answer = httpx.get(server.url + path, timeout=15)
            assert answer.status_code == 200 and expected in answer.text, path
            assert "pg-hidden-value" not in answer.text
        page = httpx.get(f"{server.url}/ui/pools/{pool}", timeout=15).text
        start = re.search(r'data-after="(\d+)"', page)
        assert start is not None
        api.update_work_queue(pool, "default", s.WorkQueueUpdate(paused=True))
    url = f"{server.url}/ui/stream?view=pool&pool={pool}&last_event_id={start[1]}"
    with httpx.stream("GET", url, timeout=20) as answer:
        messages = events(answer, 2)  # the parts again, and the workers' list as of now
    assert [m["event"] for m in messages] == ["swap", "swap"]
    swapped = {}
    for message in messages:
        swapped.update(json.loads(message["data"]))
    assert "Resume queue default" in swapped["pool-parts"]
    assert "No worker has polled this pool yet." in swapped["pool-workers"]
