"""The observing pages on PostgreSQL: the latest artifact of each key, the events page's
keyset pages and its stream, as on SQLite."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.events.schemas import Event
from flowyard.schemas import artifacts as a
from tests.e2e.conftest import FAST
from tests.postgres import fresh_database
from tests.servers import running_server
from tests.ui.conftest import events

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server(postgres_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**FAST, "FLOWYARD_DATABASE_URL": fresh_database(postgres_server, "flowyard_ui_obs")}
    with running_server(tmp_path_factory.mktemp("ui-obs-pg-home"), env) as process:
        yield process


def _unescape(query: str) -> str:
    return query.replace("&amp;", "&")


def test_artifacts_and_events_pages_on_postgresql(server):
    """The artifacts page holds each key's latest version and the unkeyed artifact; the
    events page's two pages hold the API's events; the stream sends a new one."""
    with FlowyardClient(server.url) as api:
        run = api.create_flow_run(s.FlowRunCreate(flow_name="pg-observed", name="pg"))
        made = [
            api.create_artifact(
                a.ArtifactCreate(type="markdown", key=key, data=text, flow_run_id=run.id)
            )
            for key, text in (("pg-report", "v1"), ("pg-report", "v2"), (None, "loose"))
        ]
        page = httpx.get(f"{server.url}/ui/artifacts?flow_run={run.id}").text
        shown = re.findall(r'data-artifact-id="([^"]+)"', page)
        assert sorted(shown) == sorted([made[1].id, made[2].id])

        batch = [
            Event(event="pg.tick", resource={"flowyard.resource.id": f"pg.{n}"}) for n in range(3)
        ]
        api.emit_events(batch)
        expected = [str(e.id) for e in api.list_events(event=["pg.*"]).events]
        first = httpx.get(f"{server.url}/ui/events?event=pg.*&limit=2").text
        older = re.search(r'rel="next" href="/ui/events\?([^"]+)"', first)
        assert older is not None
        second = httpx.get(f"{server.url}/ui/events?" + _unescape(older[1])).text
        ids = re.findall(r'data-event-id="([^"]+)"', first + second)
        assert ids == expected and len(ids) == 3
        start = re.search(r'data-after="(\d+)"', first)
        assert start is not None

        new = Event(event="pg.tock", resource={"flowyard.resource.id": "pg.new"})
        api.emit_events([Event(event="other.tock", resource={"flowyard.resource.id": "x"}), new])
    url = f"{server.url}/ui/stream?view=events&event=pg.*&last_event_id={start[1]}"
    with httpx.stream("GET", url, timeout=20) as answer:
        (got,) = events(answer, 1)
    assert got["event"] == "event" and str(new.id) in json.loads(got["data"])["html"]
