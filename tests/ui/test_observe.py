"""The observing pages on a server without API keys: a run's artifacts (published by a real
flow, hostile markdown included) on its page and on the artifacts pages, and the events
page (the API's events for a filter, new ones live)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import uuid
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.events.schemas import Event
from flowyard.schemas import artifacts as a

LIVE_MS = 15_000  # a change reaches an open page within this (a loaded machine's margin)
HOSTILE = """# Report <script>alert("md")</script>

<img src=x onerror="alert('img')">

<iframe src="https://evil.example/"></iframe>

[click me](javascript:alert(1)) [tabbed](java\tscript:alert(2)) [data](data:text/html,<b>x</b>)
![pixel](javascript:alert(3)) <a href="javascript:alert(4)">raw link</a>

[the docs](https://example.com/docs) and **bold**
"""

FLOW = """
import sys
from flowyard import flow, task
from flowyard.artifacts import (
    create_image_artifact, create_link_artifact, create_markdown_artifact,
    create_progress_artifact, create_table_artifact, update_progress_artifact,
)

HOSTILE = {hostile!r}


@task
def tabulate(key: str) -> None:
    rows = [{{"name": "<b>bold</b>", "n": 1}}, {{"name": "plain", "n": 2}}]
    create_table_artifact(rows, key=f"{{key}}-table", description="the rows")


@flow(name="observed")
def observed(key: str) -> None:
    progress = create_progress_artifact(10, key=f"{{key}}-progress")
    tabulate(key)
    update_progress_artifact(progress, 60)
    create_markdown_artifact("first version", key=key)
    create_markdown_artifact(HOSTILE, key=key, description="hostile <i>on purpose</i>")
    create_link_artifact("https://example.com/data", link_text="the data")
    create_image_artifact("https://example.com/chart.png", key=f"{{key}}-chart")


if __name__ == "__main__":
    observed(sys.argv[1])
"""


@pytest.fixture(scope="module")
def published(
    server: ServerProcess, api: FlowyardClient, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """A real flow run (a script whose API is the server) that published artifacts of every
    type, one key twice: its key and its flow run's id."""
    folder = tmp_path_factory.mktemp("observed-flow")
    (folder / "flows.py").write_text(textwrap.dedent(FLOW.format(hostile=HOSTILE)))
    key = f"obs-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "FLOWYARD_API_URL": server.url}
    done = subprocess.run(
        [sys.executable, "flows.py", key],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (latest,) = api.list_artifacts(key=key, limit=1).artifacts
    assert latest.flow_run_id is not None
    return key, latest.flow_run_id


def _artifacts_html(page_html: str) -> str:
    """The artifacts' part of a page (the layout has its own script tag)."""
    found = re.findall(r'<article class="artifact.*?</article>', page_html, re.S)
    assert found, "no artifact on the page"
    return "\n".join(found)


def _assert_harmless(html: str) -> None:
    """No element from the markdown: no script, frame or event handler, no script link."""
    assert "<script" not in html and "<iframe" not in html
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html, re.I)  # an on…= in a real tag
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*(javascript|data|vbscript):""", html, re.I)


def test_a_runs_artifacts_show_on_its_page_rendered_by_type(
    server, api, published, page, screenshots
):
    """The run's page lists its artifacts and its task run's: markdown rendered and
    sanitised, the table escaped, progress as a bar at its updated figure, the image from
    its https URL without a referrer; images from other hosts allowed on this page only."""
    key, run_id = published
    answer = httpx.get(f"{server.url}/ui/runs/{run_id}")
    assert answer.status_code == 200
    html = _artifacts_html(answer.text)
    _assert_harmless(html)
    assert "&lt;script&gt;" in html  # the text of the markdown's HTML is shown, escaped
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # a table cell, escaped
    assert '<a href="https://example.com/docs" rel="nofollow noopener noreferrer">' in html
    assert "img-src 'self' data: https: http:" in answer.headers["content-security-policy"]
    assert (
        "img-src 'self' data:;"
        in httpx.get(f"{server.url}/ui/runs").headers["content-security-policy"]
    )

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{server.url}/ui/runs/{run_id}")
    section = page.locator("#run-artifacts")
    expect(section.locator("article")).to_have_count(
        len(api.list_artifacts(flow_run_id=run_id).artifacts)
    )
    page.screenshot(path=screenshots / "run-page-artifacts.png", full_page=True)
    assert section.locator("script, iframe, [onerror]").count() == 0
    hrefs = section.locator("a").evaluate_all("links => links.map(a => a.href)")
    assert hrefs and all(h.startswith(("http://", "https://")) for h in hrefs)
    hostile = section.locator(f'article[data-artifact-id]:has(a.key:text-is("{key}"))')
    expect(hostile.locator("h1")).to_contain_text('Report <script>alert("md")</script>')
    expect(hostile.locator("strong")).to_have_text("bold")
    table = section.locator(".artifact-table table")
    expect(table.locator("thead th")).to_have_text(["name", "n"])
    expect(table.locator("tbody tr").first.locator("td").first).to_have_text("<b>bold</b>")
    expect(table).to_contain_text("plain")
    expect(section.locator(".artifact-table")).to_contain_text("task run tabulate")
    assert section.locator("progress").get_attribute("value") == "60.0"
    image = section.locator(".artifact-image img")
    assert image.get_attribute("src") == "https://example.com/chart.png"
    assert image.get_attribute("referrerpolicy") == "no-referrer"
    expect(section.locator('a[href="https://example.com/data"]')).to_have_text("the data")
    assert dialogs == []  # no script of the markdown ran


def test_the_artifacts_page_shows_each_keys_latest_and_a_keys_history(
    server, api, published, page, screenshots
):
    """The list holds the latest of each key (the hostile version, not the first), pages
    by cursor in the API's order, filters by type; a key's page lists its versions newest
    first, as the API's history does."""
    key, run_id = published
    page.goto(f"{server.url}/ui/artifacts?flow_run={run_id}")
    page.screenshot(path=screenshots / "artifacts.png", full_page=True)
    cards = page.locator("#artifacts article")
    keys = cards.locator(".key").all_inner_texts()
    assert sorted(keys) == sorted(
        [key, f"{key}-table", f"{key}-progress", f"{key}-chart", "(no key)"]
    )
    own = cards.filter(has=page.locator(f'a.key:text-is("{key}")'))
    expect(own).to_contain_text("the docs")
    expect(own).not_to_contain_text("first version")

    seen: list[str] = []
    page.goto(f"{server.url}/ui/artifacts?flow_run={run_id}&limit=2")
    while True:
        seen += cards.evaluate_all("cards => cards.map(c => c.dataset.artifactId)")
        if not page.locator("a[rel=next]").count():
            break
        with page.expect_navigation():
            page.locator("a[rel=next]").click()
    assert len(seen) == 5 and len(set(seen)) == 5

    only_tables = httpx.get(f"{server.url}/ui/artifacts", params={"type": "table", "key": key})
    assert only_tables.text.count('<article class="artifact') == 1
    assert f"{key}-table" in only_tables.text

    page.goto(f"{server.url}/ui/artifacts/{key}")
    page.screenshot(path=screenshots / "artifact-history.png", full_page=True)
    history = api.read_artifact_history(key)
    shown = page.locator("#versions article").evaluate_all(
        "cards => cards.map(c => c.dataset.artifactId)"
    )
    assert shown == [v.id for v in history.versions] and len(shown) == 2
    expect(page.locator("#versions li").last).to_contain_text("first version")
    _assert_harmless(_artifacts_html(httpx.get(f"{server.url}/ui/artifacts/{key}").text))


def test_a_runs_filter_keeps_its_own_latest_version_of_a_key_a_later_run_wrote(
    server, api, published
):
    """Unfiltered, a key shows its newest version (a later run's); filtered by the first
    run, the key shows that run's latest version."""
    key, run_id = published
    hostile = api.read_artifact_history(key).latest
    later_run = api.create_flow_run(s.FlowRunCreate(flow_name="observed", name="later"))
    later = api.create_artifact(
        a.ArtifactCreate(type="markdown", key=key, data="later run", flow_run_id=later_run.id)
    )

    def shown(query: str) -> list[str]:
        html = httpx.get(f"{server.url}/ui/artifacts?{query}").text
        return re.findall(r'data-artifact-id="([^"]+)"', html)

    everywhere = shown(f"key={key}")
    assert later.id in everywhere and hostile.id not in everywhere
    own = shown(f"key={key}&flow_run={run_id}")
    assert hostile.id in own and later.id not in own


def _emit(
    api: FlowyardClient, name: str, resource: str, related: str = "", **payload: object
) -> Event:
    roles = [{"flowyard.resource.id": related, "flowyard.resource.role": "shop"}]
    event = Event(
        event=name,
        resource={"flowyard.resource.id": resource},
        related=roles if related else [],
        payload=payload,
    )
    assert api.emit_events([event]) == 1
    return event


def _shown_ids(page) -> list[str]:
    return page.locator("#events > li").evaluate_all("items => items.map(i => i.dataset.eventId)")


def test_the_events_page_lists_the_apis_events_for_a_filter_page_by_page(
    server, api, page, screenshots
):
    """Filtered by a name pattern and a resource, then by a related resource and a time
    range, page after page by cursor, the page holds the events ``GET /api/events`` lists
    for the same filter, in its order."""
    prefix = f"shop-{uuid.uuid4().hex[:6]}"
    shop = f"shop.{prefix}"
    for n in range(5):
        _emit(api, f"{prefix}.sold", f"shop.item.{n % 2}", shop if n % 3 else "", n=n)
    _emit(api, f"{prefix}.restocked", "shop.item.0", shop)
    by_resource = {"event": [f"{prefix}.*"], "resource_id": ["shop.item.0"]}
    everything = api.list_events(event=[f"{prefix}.*"], limit=50).events
    since = everything[-3].occurred.isoformat()  # from the third sale: n=2, 4 and restocked
    by_related = {"related_id": [shop], "since": [since]}
    for filters, count in ((by_resource, 4), (by_related, 3)):
        expected = [str(e.id) for e in api.list_events(**filters, limit=50).events]
        assert len(expected) == count
        page.goto(f"{server.url}/ui/events?{urlencode(filters, doseq=True)}&limit=2")
        page.screenshot(path=screenshots / "events.png", full_page=True)
        seen = _shown_ids(page)
        while page.locator("a[rel=next]").count():
            with page.expect_navigation():
                page.locator("a[rel=next]").click()
            seen += _shown_ids(page)
        assert seen == expected


def test_an_event_appears_live_and_opens_to_its_json(server, api, page, screenshots):
    """An event emitted while the page is open appears at its top without a reload, and
    one outside the filter does not; an event opens to its JSON, shown as text."""
    prefix = f"live-{uuid.uuid4().hex[:6]}"
    old = _emit(api, f"{prefix}.old", "thing.1")
    page.goto(f"{server.url}/ui/events?event={prefix}.*")
    expect(page.locator("#live-status")).to_contain_text("Live: changes appear")
    page.evaluate("window.sameDocument = true")
    _emit(api, f"other-{prefix}.new", "thing.1")
    new = _emit(api, f"{prefix}.new", "thing.2", note="<b>not markup</b>")
    expect(page.locator("#events > li")).to_have_count(2, timeout=LIVE_MS)
    assert _shown_ids(page) == [str(new.id), str(old.id)]
    first = page.locator("#events > li").first
    first.locator("summary").click()
    expect(first.locator("pre.json")).to_contain_text('"note": "<b>not markup</b>"')
    assert first.locator("pre.json b").count() == 0
    page.screenshot(path=screenshots / "events-live.png", full_page=True)
    assert page.evaluate("window.sameDocument") is True


def test_bad_filters_and_unknown_names_are_answered_clearly(server):
    """A bad time, cursor, type or limit is a 422 naming it; an unknown key or automation a
    404 page; the events stream refuses a bad filter too."""
    for path, says in (
        ("/ui/events?since=yesterday", "since"),
        ("/ui/events?cursor=nonsense", "cursor"),
        ("/ui/events?limit=0", "limit"),
        ("/ui/artifacts?type=video", "type"),
        ("/ui/artifacts?key=Bad%20Key", "key"),
        ("/ui/artifacts?cursor=nonsense", "cursor"),
    ):
        answer = httpx.get(f"{server.url}{path}")
        assert answer.status_code == 422 and says in answer.text, path
        assert "data-stream" not in answer.text
    assert httpx.get(f"{server.url}/ui/artifacts/no-such-key").status_code == 404
    assert httpx.get(f"{server.url}/ui/automations/no-such-automation").status_code == 404
    assert httpx.get(f"{server.url}/ui/stream?view=events&until=soon").status_code == 422
