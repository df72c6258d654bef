"""Events: what the server ingests, what a state change's event costs, what the store keeps.

- ingest: ``--events`` events (default 100,000) sent through ``POST /api/events`` in
  batches of ``--batch`` by ``--clients`` concurrent clients to an embedded server
  (SQLite + managed Redis); events per second, and a count in the store (none lost);
- growth: the store's size (database file + WAL) before and after, per event, and
  extrapolated to 1,000,000 events;
- retention: the time the retention pass takes to delete all of them (they are sent
  as 8 days old; the server's own retention is set long so that it leaves them);
- state-change overhead: ``--changes`` flow-run state changes (Pending ↔ Scheduled), each
  its own transaction, on a SQLite store, with and without the event each one writes.

    python bench/events.py [--events 100000] [--batch 500] [--clients 4] [--changes 2000]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import embedded_server, write_results
from sqlalchemy import func, select

from flowyard.client import FlowyardClient
from flowyard.events.schemas import Event
from flowyard.orchestrator import events, runs
from flowyard.orchestrator.services.event_retention import delete_expired
from flowyard.states import StateType
from flowyard.store import Database
from flowyard.store import models as m

MONTH = str(30 * 86400)


def _batch(size: int, occurred: datetime) -> list[Event]:
    return [
        Event.model_validate(
            {
                "event": "bench.order.shipped",
                "occurred": occurred,
                "resource": {"flowyard.resource.id": f"bench.order.{uuid.uuid4().hex[:12]}"},
                "related": [
                    {"flowyard.resource.id": "bench.customer.1", "flowyard.resource.role": "buyer"}
                ],
                "payload": {"items": 3, "total": 42.5},
            }
        )
        for _ in range(size)
    ]


def store_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in home.glob("flowyard.db*"))


def ingest(url: str, total: int, batch: int, clients: int) -> float:
    """Send ``total`` events; the seconds it took."""
    per_client = total // clients
    old = datetime.now(UTC) - timedelta(days=8)
    work = [[_batch(batch, old) for _ in range(per_client // batch)] for _ in range(clients)]

    def send(batches: list[list[Event]]) -> None:
        with FlowyardClient(url) as api:
            for chunk in batches:
                api.emit_events(chunk)

    threads = [threading.Thread(target=send, args=(w,)) for w in work]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(m.Event)) or 0)


def state_change_ms(changes: int, *, with_events: bool) -> float:
    """Median milliseconds of one state-change transaction on a fresh SQLite store."""
    folder = Path(tempfile.mkdtemp(prefix="flowyard-bench-events-"))
    db = Database(f"sqlite:///{folder / 'store.db'}")
    db.migrate()
    original = events.flow_run_state
    if not with_events:
        events.flow_run_state = lambda *a, **k: None  # type: ignore[assignment]
    try:
        with db.session() as session:
            pool = m.WorkPool(name="p", type="process")
            queue = m.WorkQueue(name="default", pool=pool)
            flow = m.Flow(name="f")
            dep = m.Deployment(flow=flow, name="d", entrypoint="f.py:f", queue=queue)
            session.add_all([pool, queue, flow, dep])
            session.flush()
            run_id = runs.new_run(session, flow=flow, deployment=dep, queue=queue, now=_now()).id
        timings = []
        for i in range(changes):
            target = StateType.PENDING if i % 2 == 0 else StateType.SCHEDULED
            t0 = time.perf_counter()
            with db.session() as session:
                run = runs.get_run(session, run_id)
                runs.set_state(session, run, target, now=_now(), force=True)
            timings.append((time.perf_counter() - t0) * 1000)
        return statistics.median(timings)
    finally:
        events.flow_run_state = original  # type: ignore[assignment]
        db.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--changes", type=int, default=2000)
    args = parser.parse_args()
    env = {"FLOWYARD_EVENTS_RETENTION_SECONDS": MONTH}
    with embedded_server(env) as (server, _):
        home = server.home
        before = store_bytes(home)
        seconds = ingest(server.url, args.events, args.batch, args.clients)
    sent = (args.events // args.clients // args.batch) * args.batch * args.clients
    db = Database(f"sqlite:///{home / 'flowyard.db'}")
    stored = count(db)
    with sqlite3.connect(home / "flowyard.db") as raw:  # fold the WAL into the file
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    grown = store_bytes(home) - before
    t0 = time.perf_counter()
    deleted = delete_expired(db, datetime.now(UTC), 7 * 86400)
    retention_seconds = time.perf_counter() - t0
    db.dispose()
    plain = state_change_ms(args.changes, with_events=False)
    recorded = state_change_ms(args.changes, with_events=True)
    write_results(
        "events",
        {
            "ingest": {
                "events_sent": sent,
                "events_stored": stored,
                "batch": args.batch,
                "clients": args.clients,
                "seconds": round(seconds, 2),
                "events_per_second": round(sent / seconds),
            },
            "store": {
                "bytes_per_event": round(grown / max(stored, 1)),
                "growth_mib_per_100k": round(grown / max(stored, 1) * 100_000 / 2**20, 1),
                "growth_mib_per_1m_extrapolated": round(grown / max(stored, 1) * 1e6 / 2**20),
            },
            "retention": {
                "deleted": deleted,
                "seconds": round(retention_seconds, 2),
                "seconds_per_1m_extrapolated": round(retention_seconds * 1e6 / max(deleted, 1), 1),
            },
            "state_change_ms": {
                "median_without_event": round(plain, 3),
                "median_with_event": round(recorded, 3),
                "overhead": round(recorded - plain, 3),
            },
        },
    )


if __name__ == "__main__":
    main()
