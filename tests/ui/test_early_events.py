"""Live pages get a change at once, before it settles (PostgreSQL), and still never miss an
event that commits after a higher one: ``feeds.events_after`` on each store, with events
written at chosen positions and times (a transaction that took its ``seq`` first and
committed last is written last, with the lower ``seq``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowyard.orchestrator import event_queries as queries
from flowyard.store import models as m
from flowyard.store.database import Database
from flowyard.ui import feeds

NOW = datetime.now(UTC)
SETTLED_BY = NOW - timedelta(seconds=1)
ABOUT = m.Event.event.like("test.%")


def _store(db: Database, seq: int, received: datetime, name: str = "test.changed") -> None:
    with db.session() as session:
        session.add(
            m.Event(
                seq=seq, id=f"event-{seq}", occurred=received, event=name,
                resource_id=f"thing-{seq}", resource={}, received=received,
            )
        )  # fmt: skip


def _read(db: Database, at: feeds.Position, settled_by: datetime | None = SETTLED_BY) -> list[int]:
    with db.read() as session:
        found, _ = feeds.events_after(session, ABOUT, at, settled_by)
    return [row[0] for row in found]


def test_a_new_event_is_read_at_once_and_a_late_lower_one_after_it(database: Database):
    _store(database, 10, NOW - timedelta(seconds=5))
    at = feeds.Position(9)
    assert _read(database, at) == [10]
    assert (at.events, at.early) == (10, set())

    _store(database, 12, NOW)  # committed, not settled: sent now
    assert _read(database, at) == [12]
    assert (at.events, at.early) == (10, {12})
    assert str(at.mark(12)) == "10"  # a browser resuming from it misses nothing

    _store(database, 11, NOW)  # took its seq before 12, committed after it
    assert _read(database, at) == [11]
    assert _read(database, at) == []  # nothing twice
    assert (at.events, at.early) == (10, {11, 12})

    assert _read(database, at, settled_by=NOW + timedelta(seconds=1)) == []  # settled now
    assert (at.events, at.early) == (12, set())

    _store(database, 13, NOW - timedelta(seconds=5))
    _store(database, 14, NOW - timedelta(seconds=5), name="other.changed")
    assert _read(database, at) == [13]
    assert at.events == 14 and str(at.mark(13)) == "13"  # its own position once settled


def test_without_a_settling_time_every_stored_event_is_read_in_order(database: Database):
    """SQLite: one writer, events visible in the order of their positions."""
    for seq in (3, 4, 5):
        _store(database, seq, NOW)
    at = feeds.Position(2)
    assert _read(database, at, settled_by=None) == [3, 4, 5]
    assert (at.events, at.early) == (5, set())


def test_a_stream_remembers_only_so_many_early_events(database: Database):
    """Past ``MAX_EARLY`` events sent early and not settled, new ones wait to settle."""
    _store(database, 2000, NOW)
    at = feeds.Position(1, early=set(range(2, 2 + queries.MAX_EARLY)))
    assert _read(database, at) == []
    assert _read(database, at, settled_by=NOW + timedelta(seconds=1)) == [2000]
    assert (at.events, at.early) == (2000, set())
