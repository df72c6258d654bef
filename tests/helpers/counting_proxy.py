"""A loopback HTTP proxy in front of a real API server that counts the requests it passes.

A worker (and the engines it starts) pointed at the proxy talks to the real server as
before; the test then asks how many times a route was called, e.g. how many POSTs reported
a run's infrastructure. Nothing of Flowyard is replaced: requests and answers go through
unchanged (bodies buffered, which the worker's and engine's routes allow).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class CountingProxy:
    """Forwards every request to ``upstream`` and counts them by (method, path)."""

    def __init__(self, upstream: str) -> None:
        self._upstream = httpx.Client(base_url=upstream, timeout=None)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self._counts[(method, path)]

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> httpx.Response:
        with self._lock:
            self._counts[(method, path.split("?", 1)[0])] += 1
        return self._upstream.request(method, path, headers=headers, content=body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Accept-Encoding"] = "identity"
                try:
                    answer = proxy._forward(self.command, self.path, headers, body)
                except httpx.HTTPError as exc:  # the server went away: say so, as a gateway
                    answer = httpx.Response(502, json={"detail": f"proxy: {exc}"})
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_BY_HOP | {"content-encoding", "date", "server"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet: the counts are what the tests read."""

        return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a worker stopping mid long-poll) is no error here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
