"""A small read-only HTTP endpoint served from a daemon thread: a worker's ``/health`` and
``/metrics``, a task worker's ``/status``.

Each route is a ``GET`` path answered by a callable giving ``(status, body, content
type)``; any other path or method is a 404 (405 for a method), and requests are not
logged (probes every few seconds would flood the log).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = tuple[int, bytes, str]
"""(HTTP status, body, content type)."""

NOT_FOUND: Answer = (404, b'{"detail":"Not Found"}', "application/json")


class ReadOnlyHttpServer:
    """Answers ``GET`` on ``routes`` at ``host:port`` (port 0: a free one) until stopped."""

    def __init__(
        self, host: str, port: int, routes: Mapping[str, Callable[[], Answer]], name: str
    ) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(dict(routes)))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ReadOnlyHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(routes: dict[str, Callable[[], Answer]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            answer = routes.get(self.path.split("?", 1)[0])
            self._send(*(answer() if answer is not None else NOT_FOUND))

        def do_POST(self) -> None:  # noqa: N802
            self._refuse()

        do_PUT = do_PATCH = do_DELETE = do_POST  # noqa: N815

        def _refuse(self) -> None:
            self._send(405, b'{"detail":"Method Not Allowed"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Not logged: see the module's docstring."""

    return Handler
