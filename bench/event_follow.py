"""How soon a follower of ``GET /api/events/follow`` gets an event after it was emitted.

A real server (SQLite by default; ``--database-url`` for PostgreSQL, where followers used to
read events only once they had settled for 1 s) and a follower looping on the API from the
cursor it was answered; ``--writers`` clients emit ``--events`` events in all, one per
request, ``--gap`` seconds apart each. Each event's latency is the time from its emit
request's start to the follower's answer holding it; the follower must get every event
once (the bench fails otherwise).

    PYTHONPATH=src python bench/event_follow.py [--events 200] [--writers 2] [--gap 0.05] \
        [--database-url postgresql+psycopg2://…]
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

from common import embedded_server, summary, write_results

from flowyard.client import FlowyardClient
from flowyard.events.schemas import Event

NAME = "bench.follow"


def follow(url: str, cursor: str, expected: int, arrived: dict[str, float]) -> None:
    """Follow until ``expected`` events arrived, noting when each did (none twice)."""
    with FlowyardClient(url) as api:
        while len(arrived) < expected:
            answer = api.follow_events(cursor, wait=5, event=[NAME])
            now = time.perf_counter()
            for event in answer.events:
                if str(event.id) in arrived:
                    raise SystemExit(f"event {event.id} followed twice")
                arrived[str(event.id)] = now
            cursor = str(answer.cursor)


def emit(url: str, count: int, gap: float, sent: dict[str, float]) -> None:
    with FlowyardClient(url) as api:
        for _ in range(count):
            event = Event.model_validate(
                {"event": NAME, "resource": {"flowyard.resource.id": f"b.{uuid.uuid4().hex}"}}
            )
            sent[str(event.id)] = time.perf_counter()
            api.emit_events([event])
            time.sleep(gap)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.05)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--label", default="", help="appended to the results file's name")
    args = parser.parse_args()
    env = {"FLOWYARD_DATABASE_URL": args.database_url} if args.database_url else None
    each = args.events // args.writers
    with embedded_server(env) as (server, _):
        with FlowyardClient(server.url) as api:
            start = str(api.follow_events(None, wait=0).cursor)
        sent: dict[str, float] = {}
        arrived: dict[str, float] = {}
        follower = threading.Thread(
            target=follow, args=(server.url, start, each * args.writers, arrived)
        )
        follower.start()
        writers = [
            threading.Thread(target=emit, args=(server.url, each, args.gap, sent))
            for _ in range(args.writers)
        ]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        follower.join(timeout=120)
    if set(arrived) != set(sent):
        raise SystemExit(f"{len(sent) - len(arrived)} of {len(sent)} events never followed")
    latencies = [1000 * (arrived[key] - sent[key]) for key in sent]
    store = "postgresql" if args.database_url else "sqlite"
    write_results(
        f"event_follow_{store}{args.label}",
        {
            "store": store,
            "events": len(sent),
            "writers": args.writers,
            "gap_seconds": args.gap,
            "emit_to_follower_ms": {k: round(v, 1) for k, v in summary(latencies).items()},
        },
    )


if __name__ == "__main__":
    main()
