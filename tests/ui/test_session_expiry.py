"""A web UI session ends when its lifetime is over: the browser is sent back to sign in."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from flowyard.cli.processes import ServerProcess
from tests.servers import running_server
from tests.waiting import wait_until

ADMIN = "admin-key-for-the-web-ui-expiry-test-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"FLOWYARD_API_KEY": ADMIN, "FLOWYARD_UI_SESSION_SECONDS": "3"}
    with running_server(tmp_path_factory.mktemp("ui-expiry-home"), env) as process:
        yield process


def test_an_expired_session_goes_back_to_sign_in(server):
    """Signed in, the pages open; once the session's three seconds are over, the same cookie
    leads to the sign-in form and no longer identifies API calls."""
    client = httpx.Client(base_url=server.url, timeout=15)
    signed = client.post("/ui/sign-in", data={"key": ADMIN, "next": "/ui/runs"})
    assert signed.status_code == 303 and "Max-Age=3" in signed.headers["set-cookie"]
    assert client.get("/ui/runs").status_code == 200
    cookie = {"flowyard_session": client.cookies["flowyard_session"]}
    expired = httpx.Client(base_url=server.url, cookies=cookie, timeout=15)
    # the cookie's own Max-Age would drop it from a browser; the server must refuse it too
    answer = wait_until(lambda: (r := expired.get("/ui/runs")).status_code == 303 and r, 15)
    assert answer.headers["location"] == "/ui/sign-in?next=%2Fui%2Fruns"
    assert expired.get("/api/flow_runs").status_code == 401
