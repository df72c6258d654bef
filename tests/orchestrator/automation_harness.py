"""A real API app in the test process (its action worker thread too) for automation tests,
and a loopback HTTP receiver that answers with scripted statuses."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from flowyard.orchestrator.app import create_app
from flowyard.orchestrator.automations import firings
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.settings import Settings
from flowyard.store import models as m

FLOW = "etl"
PARAMETER_SCHEMA = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "names": {"type": "array", "items": {"type": "string"}},
        "label": {"type": "string"},
        "nested": {"type": "object"},
    },
}


@dataclass
class Api:
    """The app under test: its HTTP client and its orchestrator (store, action queue)."""

    client: TestClient
    orch: Orchestrator

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.client.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def get(self, path: str) -> Any:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    def pool(self, name: str = "etl-pool") -> dict[str, Any]:
        return self.post("/api/work_pools", {"name": name})

    def deployment(self, name: str = "nightly", pool: str = "etl-pool") -> dict[str, Any]:
        return self.post(
            "/api/deployments",
            {
                "name": name,
                "flow_name": FLOW,
                "entrypoint": "flows.py:etl",
                "pool_name": pool,
                "parameter_schema": PARAMETER_SCHEMA,
            },
        )

    def fire(
        self, actions: list[dict[str, Any]], event: dict[str, Any] | None, *, fired: datetime | None
    ) -> list[str]:
        """Record a firing of a new automation with ``actions``; the action rows' ids."""
        with self.orch.db.session() as session:
            automation = m.Automation(
                name=f"auto-{uuid.uuid4().hex[:8]}",
                description="test automation",
                # a trigger no event meets: the app's live evaluator must not fire it again
                trigger={"type": "event", "expect": ["test.never-happens"]},
                actions=actions,
                actions_on_trigger=[],
                actions_on_resolve=[],
            )
            session.add(automation)
            session.flush()
            now = fired or datetime.now(UTC)
            return firings.record(session, automation, "triggered", event, {}, now=now)

    def action(self, action_id: str) -> m.AutomationAction:
        with self.orch.db.read() as session:
            row = session.get(m.AutomationAction, action_id)
            assert row is not None
            return row

    def finished(self, action_id: str) -> m.AutomationAction | None:
        """The row once it succeeded or failed, else None (for wait_until)."""
        row = self.action(action_id)
        return row if row.status in ("succeeded", "failed") else None

    def events(self, name: str) -> list[m.Event]:
        with self.orch.db.read() as session:
            return list(session.scalars(select(m.Event).where(m.Event.event == name)))


@contextmanager
def running_app(tmp_path: Any, redis_url: str, **overrides: Any) -> Iterator[Api]:
    """The app with its lifespan (services, action worker); led services run once at start
    and then rarely, so that a test drives the sweep itself."""
    values: dict[str, Any] = {
        "home": tmp_path,
        "reconcile_interval_seconds": 3600.0,
        "automation_action_retries": 2,
        "automation_action_retry_intervals": [1],
        "automation_action_requeue_after_seconds": 5.0,
        **overrides,
    }
    app = create_app(Settings(**values), redis_url=redis_url)
    with TestClient(app) as client:
        yield Api(client, app.state.orchestrator)


@dataclass
class Receiver:
    """A loopback HTTP endpoint: answers each request with the next scripted status (the
    last one repeats) and keeps what it received."""

    statuses: list[int]
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, request: dict[str, Any]) -> int:
        with self.lock:
            self.received.append(request)
            index = min(len(self.received), len(self.statuses)) - 1
            return self.statuses[index]

    def count(self) -> int:
        with self.lock:
            return len(self.received)


@contextmanager
def receiving(statuses: list[int]) -> Iterator[Receiver]:
    receiver = Receiver(statuses)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"null")
            status = receiver.answer(
                {
                    "method": "POST",
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "json": body,
                }
            )
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
