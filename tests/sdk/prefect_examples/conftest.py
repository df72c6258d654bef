"""Fixtures for the Prefect documentation examples.

Each example runs with its own ``FLOWYARD_HOME`` (persisted results and caches start
empty) and without ``FLOWYARD_API_URL`` (no server, as a plain script). Examples that
call an HTTP service get a real loopback server instead of httpbin.org.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Results and caches of each example go to a fresh folder; no API is configured."""
    monkeypatch.setenv("FLOWYARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLOWYARD_API_URL", raising=False)


class _StatusHandler(BaseHTTPRequestHandler):
    """``GET /status/<code>`` answers with that status, like httpbin.org's endpoint."""

    server: _StatusServer

    def do_GET(self) -> None:
        _, _, code = self.path.rpartition("/")
        status = int(code) if code.isdigit() else 404
        with self.server.lock:
            self.server.requests.append(status)
        body = b'{"status": %d}' % status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _StatusServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StatusHandler)
        self.lock = threading.Lock()
        self.requests: list[int] = []


@pytest.fixture
def status_server() -> Iterator[_StatusServer]:
    """A loopback stand-in for httpbin.org; ``.url`` is its base URL, ``.requests`` the codes."""
    server = _StatusServer()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
