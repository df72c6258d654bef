"""The web UI on a server that requires API keys: sign-in with an admin or viewer key,
sessions, CSRF, and the API deciding what a signed-in browser may do."""

from __future__ import annotations

import contextlib
import re
import uuid

import httpx
from playwright.sync_api import expect

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.states import StateType
from flowyard.ui.stream import MAX_STREAMS_PER_VIEWER
from tests.ui.conftest import ADMIN
from tests.waiting import wait_until

REQUIRES_KEYS = True
COOKIE = "flowyard_session"


def _key(api: FlowyardClient, role: str, **fields: object) -> str:
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    return api.create_api_key(s.ApiKeyCreate(name=name, role=role, **fields)).key  # type: ignore[arg-type]


def _running_run(api: FlowyardClient) -> s.FlowRun:
    return api.create_flow_run(s.FlowRunCreate(flow_name="ui-access", name="guarded"))


def _signed_in(server: ServerProcess, key: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=15)
    answer = client.post("/ui/sign-in", data={"key": key, "next": "/ui/runs"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/runs", answer.text
    return client


def _csrf(client: httpx.Client) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/ui/runs").text)
    assert found is not None
    return found[1]


def test_no_ui_page_is_reachable_without_a_session(server, api):
    """Pages send a signed-out browser to sign in; the stream and changes get 401; an API
    key in a header does not open the UI; only the sign-in form and static files are open."""
    run = _running_run(api)
    anonymous = httpx.Client(base_url=server.url, timeout=15)
    runs = anonymous.get("/ui/runs?state=RUNNING")
    assert runs.status_code == 303
    assert runs.headers["location"] == "/ui/sign-in?next=%2Fui%2Fruns%3Fstate%3DRUNNING"
    assert anonymous.get(f"/ui/runs/{run.id}").status_code == 303
    assert anonymous.get(f"/ui/runs/{run.id}/logs.txt").status_code == 303
    assert anonymous.get("/ui/stream?view=runs").status_code == 401
    assert anonymous.post("/ui/sign-out").status_code == 401
    bearer = {"Authorization": f"Bearer {ADMIN}"}
    assert anonymous.get("/ui/runs", headers=bearer).status_code == 303
    assert anonymous.get("/api/flow_runs").status_code == 401
    forger = httpx.Client(base_url=server.url, cookies={COOKIE: "forged-session-id"})
    forged = forger.get("/ui/runs")
    assert forged.status_code == 303 and COOKIE in forged.headers.get("set-cookie", "")
    forger.cookies.set(COOKIE, "forged-session-id")
    assert forger.get("/api/flow_runs").status_code == 401
    form = anonymous.get("/ui/sign-in")
    assert form.status_code == 200 and 'name="key"' in form.text and run.id not in form.text
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    assert anonymous.get("/ui/static/ui.css").status_code == 200
    assert anonymous.get("/").headers["location"] == "/ui/"


def test_a_worker_key_or_run_token_cannot_sign_in(server, api):
    """A worker key and a run token are refused with a clear message, an unknown key too,
    and a sign-in another site's page sends; none of them gets a session cookie."""
    token = api.create_run_token(_running_run(api).id)
    for key, status, says in (
        (_key(api, "worker", pools=["some-pool"]), 403, "worker key or a run token cannot"),
        (token, 403, "worker key or a run token cannot"),
        ("fy_not-a-key-anyone-made", 401, "unknown, revoked or expired"),
    ):
        answer = httpx.post(f"{server.url}/ui/sign-in", data={"key": key})
        assert answer.status_code == status and says in answer.text
        assert COOKIE not in answer.headers.get("set-cookie", "")
    forged = httpx.post(
        f"{server.url}/ui/sign-in", data={"key": ADMIN}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert forged.status_code == 403 and COOKIE not in forged.headers.get("set-cookie", "")


def test_a_viewer_reads_everything_and_the_api_refuses_its_cancel(server, api, page, screenshots):
    """Signed in with a viewer key the browser sees runs but no Cancel button, and a cancel
    sent anyway (with the CSRF token) is refused by the API; the cookie holds no key."""
    viewer = _key(api, "viewer")
    run = _running_run(api)
    page.goto(f"{server.url}/ui/runs/{run.id}")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next="))
    page.screenshot(path=screenshots / "sign-in.png", full_page=True)
    page.get_by_label("API key").fill(viewer)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/ui/runs/{run.id}")
    expect(page.locator(".who")).to_contain_text("viewer")
    expect(page.locator("#run-state")).to_have_text("Running")
    expect(page.locator("[data-cancel]")).to_have_count(0)
    page.screenshot(path=screenshots / "run-page-viewer.png", full_page=True)

    refused = page.evaluate(
        """async (id) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const answer = await fetch(`/api/flow_runs/${id}/cancel`,
                {method: "POST", headers: {"X-CSRF-Token": csrf}});
            return [answer.status, (await answer.json()).detail];
        }""",
        run.id,
    )
    assert refused[0] == 403 and "viewer" in refused[1]
    assert api.read_flow_run(run.id).state.type is StateType.RUNNING
    (cookie,) = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and viewer not in cookie["value"]


def test_a_change_made_with_the_session_cookie_needs_its_csrf_token(server, api):
    """An admin session reads the API with its cookie alone, but a POST without the
    session's CSRF token (or with another) is 403; with it, the change is made."""
    client = _signed_in(server, ADMIN)
    assert client.get("/api/flow_runs").status_code == 200
    run = _running_run(api)
    cancel = f"/api/flow_runs/{run.id}/cancel"
    missing = client.post(cancel)
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
    assert client.post(cancel, headers={"X-CSRF-Token": "guessed"}).status_code == 403
    assert api.read_flow_run(run.id).state.type is StateType.RUNNING
    assert client.post(cancel, headers={"X-CSRF-Token": _csrf(client)}).status_code == 200
    assert api.read_flow_run(run.id).state.type is StateType.CANCELLING


def test_signing_out_or_revoking_the_key_ends_the_session(server, api):
    """After sign-out the old cookie opens nothing; revoking a viewer key ends its session."""
    client = _signed_in(server, _key(api, "viewer"))
    old = client.cookies[COOKIE]
    assert client.post("/ui/sign-out", headers={"X-CSRF-Token": _csrf(client)}).status_code == 204
    replay = httpx.Client(base_url=server.url, cookies={COOKIE: old}, timeout=15)
    assert replay.get("/ui/runs").status_code == 303
    assert replay.get("/api/flow_runs").status_code == 401

    name = f"revoked-{uuid.uuid4().hex[:6]}"
    key = api.create_api_key(s.ApiKeyCreate(name=name, role="viewer")).key
    revoked = _signed_in(server, key)
    assert revoked.get("/ui/runs").status_code == 200
    api.revoke_api_key(name)
    wait_until(lambda: revoked.get("/ui/runs").status_code == 303, timeout=15)


def test_a_session_holds_a_bounded_number_of_live_streams(server, api):
    """A session's fifth stream at once is refused (429) until one of its four ends; another
    session is not held back meanwhile."""
    client = _signed_in(server, _key(api, "viewer"))
    with contextlib.ExitStack() as open_streams:
        streams = [
            open_streams.enter_context(client.stream("GET", "/ui/stream?view=runs"))
            for _ in range(MAX_STREAMS_PER_VIEWER)
        ]
        assert all(stream.status_code == 200 for stream in streams)
        assert client.get("/ui/stream?view=runs").status_code == 429
        other = _signed_in(server, _key(api, "viewer"))
        with other.stream("GET", "/ui/stream?view=runs") as allowed:
            assert allowed.status_code == 200
        streams[0].close()

        def reopened() -> bool:
            with client.stream("GET", "/ui/stream?view=runs") as again:
                return again.status_code == 200

        wait_until(reopened, timeout=15, message="the closed stream's slot was not given back")
