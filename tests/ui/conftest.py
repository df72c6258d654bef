"""The web UI's tests: the system's Chromium driven by Playwright (never a browser
Playwright downloads), real servers, and screenshots of each page kept as artifacts.

Chromium comes from Debian's package (``scripts/test`` installs it). Without it, or without
the ``playwright`` package, the browser tests fail under CI (``CI`` set) and are skipped,
saying why, elsewhere.

Each module gets its own server (``server``, ``api``): open (no keys), or requiring keys
when the module says ``REQUIRES_KEYS = True`` (then ``api`` holds the ``ADMIN`` key).
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.store.database import Database
from tests.e2e.conftest import FAST
from tests.postgres import PostgresServer, fresh_database
from tests.servers import running_server

ADMIN = "admin-key-for-the-web-ui-tests-0123456789"
CHROMIUM = Path(os.environ.get("FLOWYARD_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_MS = 15_000
AXE_RULES = {  # the axe-core rules the pages are checked against: WCAG 2.0/2.1 A and AA
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}
}

FLOWS = textwrap.dedent(
    """
    from flowyard import flow, get_run_logger, task


    @task
    def add(a: int, b: int) -> int:
        return a + b


    @flow(name="chatty")
    def chatty(n: int = 2) -> int:
        log = get_run_logger()
        log.info("starting with n=%s", n)
        total = add(n, n)
        log.warning("careful: the total is %s", total)
        return total
    """
)


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}; scripts/test installs it (apt-get install chromium)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, for one test module: Playwright's sync API keeps an asyncio loop marked
    running in this thread while it is open, so later tests of the process (``asyncio.run``)
    must not find it there."""
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and a page in it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


@pytest.fixture
def axe_page(browser) -> Iterator[Any]:
    """A page whose context lets axe-core be injected: the pages' Content-Security-Policy
    would refuse it, so the context bypasses CSP (for axe's tests only)."""
    from axe_playwright_python.sync_playwright import Axe

    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.axe = Axe()
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$FLOWYARD_TEST_ARTIFACTS/ui`` if set, else a pytest temp dir."""
    root = os.environ.get("FLOWYARD_TEST_ARTIFACTS")
    if root:
        folder = Path(root) / "ui"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("ui-screenshots")


@pytest.fixture(scope="session")
def ui_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ui-flows")
    (folder / "flows.py").write_text(FLOWS)
    return folder


def _requires_keys(request: pytest.FixtureRequest) -> bool:
    return bool(getattr(request.module, "REQUIRES_KEYS", False))


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A real server for the module: ``flowyard server start`` with SQLite and its Redis."""
    env = {**FAST, "FLOWYARD_API_KEY": ADMIN} if _requires_keys(request) else FAST
    with running_server(tmp_path_factory.mktemp("ui-home"), env) as process:
        yield process


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, server: ServerProcess) -> Iterator[FlowyardClient]:
    """The module's server's client (with the admin key when it requires keys)."""
    with FlowyardClient(server.url, ADMIN if _requires_keys(request) else None) as client:
        yield client


@pytest.fixture
def start_worker(
    request: pytest.FixtureRequest, server: ServerProcess, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """``flowyard worker start --pool <pool> …`` (with the admin key when the server requires
    keys), stopped after the test."""
    started: list[WorkerProcess] = []
    env = {**FAST, "FLOWYARD_API_KEY": ADMIN} if _requires_keys(request) else FAST

    def start(pool: str, *args: str) -> WorkerProcess:
        started.append(WorkerProcess(server.url, pool, tmp_path, *args, env=env))
        return started[-1]

    yield start
    for worker in started:
        worker.stop(timeout=30)


def sign_in(page: Any, server: ServerProcess, key: str, target: str) -> None:
    """Open ``target`` (which asks a fresh browser to sign in), sign in there with ``key``
    and land back on it."""
    from playwright.sync_api import expect  # imported when a browser test runs (see browser)

    page.goto(f"{server.url}{target}")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next="))
    page.get_by_label("API key").fill(key)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}{target}")


def events(response: httpx.Response, count: int) -> list[dict[str, str]]:
    """The first ``count`` messages of a server-sent-events response (comments skipped)."""
    found: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in fields:
                found.append(fields)
                if len(found) == count:
                    return found
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return found


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty store of each kind, for the tests that read the UI's queries
    (plans, feeds) without a server; on PostgreSQL a database named after the module."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'ui.db'}")
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        db = Database(fresh_database(server, request.module.__name__.rsplit(".", 1)[-1]))
    db.migrate()
    yield db
    db.dispose()
