"""Automations: events ingested and matched against 100 automations; Failed → notification.

- match: 100 automations watch ``bench.order.shipped``; automation ``i`` takes the orders
  of shop ``i`` (``match`` on a resource label) and fires when it has counted exactly as
  many events as were sent for that shop (``threshold``), so every automation firing once
  proves no event was lost or counted twice. ``--events`` events (default 100,000) are
  sent through ``POST /api/events`` by ``--clients`` clients; the figure is events per
  second from the first send until the last of the 100 firings is recorded (ingest and
  evaluation end to end), and the ingest alone;
- latency: ``--runs`` flow runs are moved to Failed through the API, one at a time; an
  automation sends a Slack-style notification to a receiver on loopback; the figure is
  the time from the state change's request to the receiver's arrival (median, p99).

    python bench/automations.py [--events 100000] [--clients 4] [--runs 50]
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from common import embedded_server, make_deployment, summary, write_results

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.events.schemas import Event
from flowyard.states import StateType

AUTOMATIONS = 100
BATCH = 500


def _events(count: int) -> list[Event]:
    return [
        Event.model_validate(
            {
                "event": "bench.order.shipped",
                "resource": {
                    "flowyard.resource.id": f"bench.order.{uuid.uuid4().hex[:12]}",
                    "bench.shop": f"shop-{n % AUTOMATIONS}",
                },
                "payload": {"items": 3},
            }
        )
        for n in range(count)
    ]


def match(url: str, total: int, clients: int) -> dict[str, Any]:
    per_shop = total // AUTOMATIONS
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(AUTOMATIONS):
            doc = {
                "name": f"shop-{i}",
                "trigger": {
                    "expect": ["bench.order.shipped"],
                    "match": {"bench.shop": f"shop-{i}"},
                    "threshold": per_shop,
                    "within": 3600,
                },
                "actions": [{"type": "do-nothing"}],
            }
            http.post("/api/automations", json=doc).raise_for_status()
    work = _events(per_shop * AUTOMATIONS)
    chunks = [work[i : i + BATCH] for i in range(0, len(work), BATCH)]
    shares = [chunks[c::clients] for c in range(clients)]

    def send(mine: list[list[Event]]) -> None:
        with FlowyardClient(url) as api:
            for chunk in mine:
                api.emit_events(chunk)

    threads = [threading.Thread(target=send, args=(share,)) for share in shares]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ingested = time.perf_counter() - t0
    fired = _wait_for_firings(url, deadline=t0 + 600)
    elapsed = time.perf_counter() - t0
    return {
        "events": len(work),
        "automations": AUTOMATIONS,
        "automations_fired_once": fired,
        "ingest_seconds": round(ingested, 2),
        "ingest_events_per_second": round(len(work) / ingested),
        "ingest_and_match_seconds": round(elapsed, 2),
        "ingest_and_match_events_per_second": round(len(work) / elapsed),
    }


def _wait_for_firings(url: str, deadline: float) -> int:
    """How many automations fired exactly once, once all have fired (or at the deadline).

    While waiting, one light request (the firings' events) per poll, so as not to load the
    server being measured; then each automation's firings once."""
    with httpx.Client(base_url=url, timeout=60) as http:
        query = {"event": "flowyard.automation.triggered", "limit": 500}
        while time.perf_counter() < deadline:
            if len(http.get("/api/events", params=query).json()["events"]) >= AUTOMATIONS:
                break
            time.sleep(0.05)
        counts = [
            len(http.get(f"/api/automations/shop-{i}/firings").json()) for i in range(AUTOMATIONS)
        ]
        return sum(1 for c in counts if c == 1)


@contextmanager
def receiver() -> Iterator[tuple[str, list[float]]]:
    """A loopback HTTP server recording when each request arrived."""
    arrivals: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arrivals.append(time.perf_counter())
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", arrivals
    finally:
        server.shutdown()
        server.server_close()


def latency(url: str, home: Any, runs: int) -> dict[str, Any]:
    with receiver() as (target, arrivals), FlowyardClient(url) as api:
        dep = make_deployment(api, "bench-latency", home)
        api.save_block("slack-webhook", "bench", {"url": target})
        doc = {
            "name": "failed-notify",
            "trigger": {
                "expect": ["flowyard.flow-run.Failed"],
                "match_related": {"flowyard.resource.id": f"flowyard.deployment.{dep.id}"},
            },
            "actions": [{"type": "send-notification", "block": "slack-webhook/bench"}],
        }
        httpx.post(f"{url}/api/automations", json=doc).raise_for_status()
        waits = []
        for n in range(runs):
            run = api.run_deployment(dep.id, s.DeploymentRunRequest())
            t0 = time.perf_counter()
            api.set_flow_run_state(run.id, s.StateChange(type=StateType.FAILED, force=True))
            deadline = t0 + 30
            while len(arrivals) <= n and time.perf_counter() < deadline:
                time.sleep(0.002)
            if len(arrivals) <= n:
                raise SystemExit(f"no notification for run {n} within 30 s")
            waits.append((arrivals[n] - t0) * 1000)
    return {"runs": runs, "failed_to_notification_ms": summary(waits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with embedded_server() as (server, home):
        figures["match"] = match(server.url, args.events, args.clients)
    with embedded_server() as (server, home):
        figures["latency"] = latency(server.url, home, args.runs)
    write_results("automations", figures)


if __name__ == "__main__":
    main()
