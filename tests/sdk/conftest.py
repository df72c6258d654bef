"""A real loopback HTTP endpoint for ``POST /api/logs``, for the log shipper's tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class LogsEndpoint:
    """Records posted log batches; answers 503 to the next ``fail_next`` posts."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.batches: list[list[dict[str, Any]]] = []
        self.fail_next = 0
        self.failures = 0

    def messages(self) -> list[str]:
        with self.cond:
            return [log["message"] for batch in self.batches for log in batch]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(predicate, timeout)
        assert ok, f"condition not met before the deadline; batches: {self.batches}"

    def receive(self, body: list[dict[str, Any]]) -> int:
        with self.cond:
            try:
                if self.fail_next > 0:
                    self.fail_next -= 1
                    self.failures += 1
                    return 503
                self.batches.append(body)
                return 204
            finally:
                self.cond.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        status = 404
        if self.path == "/api/logs":
            status = self.server.endpoint.receive(json.loads(self.rfile.read(length)))
        body = b"" if status == 204 else json.dumps({"detail": "unavailable"}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, endpoint: LogsEndpoint) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.endpoint = endpoint


@pytest.fixture
def logs_api() -> Iterator[tuple[LogsEndpoint, str]]:
    """A LogsEndpoint on a free loopback port; yields it and its URL."""
    endpoint = LogsEndpoint()
    server = _Server(endpoint)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield endpoint, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
