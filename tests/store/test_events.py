"""Events in the store: written with their change, or not at all; read back by position."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from sqlalchemy import func, select

from flowyard.errors import InvalidInput
from flowyard.orchestrator import event_queries, events, runs
from flowyard.orchestrator.services.event_retention import delete_expired
from flowyard.states import StateType
from flowyard.store import models as m


class Boom(Exception):
    pass


def _run(session) -> m.FlowRun:
    pool = m.WorkPool(name="p", type="process")
    queue = m.WorkQueue(name="default", pool=pool)
    flow = m.Flow(name="f")
    dep = m.Deployment(flow=flow, name="d", entrypoint="f.py:f", queue=queue, tags=["t1"])
    session.add_all([pool, queue, flow, dep])
    session.flush()
    return runs.new_run(session, flow=flow, deployment=dep, queue=queue, now=datetime.now(UTC))


def _count(db, model) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)))


def test_a_state_change_and_its_event_commit_or_roll_back_together(database):
    """A committed change hands its event (with its position) to the sink; a rolled-back
    one leaves neither its state row nor its event, and the sink hears nothing."""
    heard: list[str] = []
    events.install(database, lambda batch: heard.extend(e.event for e in batch))
    with database.session() as session:
        run_id = _run(session).id
    assert heard == ["flowyard.flow-run.Scheduled"]
    states, recorded = _count(database, m.FlowRunState), _count(database, m.Event)

    with pytest.raises(Boom), database.session() as session:
        run = runs.get_run(session, run_id)
        decision, _ = runs.set_state(session, run, StateType.PENDING, now=datetime.now(UTC))
        assert decision.accepted
        session.flush()  # the state rows reach the database, inside the transaction
        raise Boom
    assert _count(database, m.FlowRunState) == states
    assert _count(database, m.Event) == recorded
    assert len(heard) == 1

    with database.session() as session:
        run = runs.get_run(session, run_id)
        runs.set_state(session, run, StateType.PENDING, now=datetime.now(UTC))
    assert heard[-1] == "flowyard.flow-run.Pending"
    with database.read() as session:
        (event,) = event_queries.page(
            session,
            event_queries.EventFilter(event=["flowyard.flow-run.Pending"]),
            order="desc",
            limit=5,
            cursor=None,
        )[0]
    roles = {r["flowyard.resource.role"] for r in event.related}
    assert roles == {"flow", "deployment", "work-pool", "work-queue", "tag"}
    assert event.payload["intended"] == {"from": "SCHEDULED", "to": "PENDING"}


def test_following_reads_after_a_position_and_skips_what_does_not_match(database):
    """``after`` returns matching events past a position and a position past the rest."""
    with database.session() as session:
        for i in range(5):
            events.record(
                session, f"shop.{'a' if i % 2 else 'b'}", {"flowyard.resource.id": f"x.{i}"}
            )
    start = event_queries.FollowCursor(0)
    with database.read() as session:
        found, cursor = event_queries.after(
            session, event_queries.EventFilter(["shop.a"]), start, 10
        )
        assert [e.resource_id for e in found] == ["x.1", "x.3"]
        assert cursor == event_queries.FollowCursor(event_queries.latest(session))
        again, same = event_queries.after(session, event_queries.EventFilter(), cursor, 10)
        assert again == [] and same == cursor


def test_retention_deletes_in_batches_and_keeps_recent_events(database):
    """Old events go (with their related rows) in batches; recent ones stay."""
    now = datetime.now(UTC)
    buyer = [{"flowyard.resource.id": "c.1", "flowyard.resource.role": "buyer"}]
    with database.session() as session:
        for i in range(25):
            old = now - timedelta(days=8, seconds=i)
            events.record(
                session, "shop.old", {"flowyard.resource.id": f"o.{i}"}, buyer, occurred=old
            )
        events.record(session, "shop.new", {"flowyard.resource.id": "n.1"}, buyer, occurred=now)
    assert delete_expired(database, now, 7 * 86400, batch=10) == 25
    with database.read() as session:
        assert [e.event for e in event_queries.page(
            session, event_queries.EventFilter(), order="asc", limit=50, cursor=None
        )[0]] == ["shop.new"]  # fmt: skip
    assert _count(database, m.EventRelated) == 1


def test_a_state_change_whose_event_cannot_be_written_is_not_stored(database):
    """The events are inserted as the transaction commits: when that insert fails, the
    state change it records is rolled back with it (no change without its event)."""
    from sqlalchemy.exc import IntegrityError

    from flowyard.events.schemas import Event

    with database.session() as session:
        run_id = _run(session).id
        taken = events.record(session, "shop.x", {"flowyard.resource.id": "x"}).id
    states = _count(database, m.FlowRunState)
    with pytest.raises(IntegrityError), database.session() as session:
        run = runs.get_run(session, run_id)
        runs.set_state(session, run, StateType.PENDING, now=datetime.now(UTC))
        twin = {"id": taken, "event": "shop.y", "resource": {"flowyard.resource.id": "y"}}
        events.add(session, Event.model_validate(twin))
    assert _count(database, m.FlowRunState) == states
    with database.read() as session:
        assert runs.get_run(session, run_id).state_type is StateType.SCHEDULED


@pytest.mark.postgres
def test_a_follower_never_passes_an_event_still_committing(postgres_server, tmp_path):
    """On PostgreSQL a transaction may commit after one that took a later position: a
    follower reads the later one at once, remembers it in its cursor, reads the late one
    when it commits, and neither twice; its position passes only settled events."""
    from sqlalchemy import text

    from flowyard.store import Database

    db = Database(postgres_server.url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.migrate()
    try:
        everything = event_queries.EventFilter()
        with db.read() as session:
            start = event_queries.FollowCursor(event_queries.latest(session))
        slow = db._sessions()  # holds its position, commits last
        slow.begin()
        events.record(slow, "shop.slow", {"flowyard.resource.id": "s"})
        events._write(slow)  # what the commit does first: its row takes its position
        with db.session() as session:
            events.record(session, "shop.fast", {"flowyard.resource.id": "f"})
        soon = datetime.now(UTC) - timedelta(seconds=1)
        with db.read() as session:
            seen, cursor = event_queries.after(session, everything, start, 10, settled_by=soon)
            assert [e.event for e in seen] == ["shop.fast"]  # at once, though not settled
            assert cursor.position == start.position and len(cursor.early) == 1
            again, same = event_queries.after(session, everything, cursor, 10, settled_by=soon)
            assert again == [] and same == cursor
        slow.info.pop("flowyard.events")
        slow.commit()
        slow.close()
        with db.read() as session:
            late, cursor = event_queries.after(session, everything, cursor, 10, settled_by=soon)
            assert [e.event for e in late] == ["shop.slow"]  # its lower position was not passed
            later = datetime.now(UTC) + timedelta(seconds=1)
            rest, settled = event_queries.after(session, everything, cursor, 10, settled_by=later)
        assert rest == [] and settled == event_queries.FollowCursor(start.position + 2)
        assert event_queries.FollowCursor.parse(str(cursor)) == cursor
    finally:
        db.dispose()


def test_a_follow_cursor_reads_back_and_refuses_what_it_did_not_write():
    """A cursor is its position and its early events' distances past it; a bare position
    is one too; anything else is a 422 naming ``after``, whatever its size."""
    cursor = event_queries.FollowCursor(10, frozenset({12, 15}))
    assert str(cursor) == "10.2,5" and event_queries.FollowCursor.parse("10.2,5") == cursor
    assert parse_qs(f"after={cursor}")["after"] == [str(cursor)]  # pasted into a URL as is
    assert event_queries.FollowCursor.parse("7") == event_queries.FollowCursor(7)
    too_many = "5." + ",".join(["1"] * (event_queries.CURSOR_EARLY + 1))
    huge = str(2**63)
    bad_ones = ("", "x", "-1", "5.", "5.0", "5.-2", "5.a", "5.1,,2", "5+2", huge, "5." + huge)
    for bad in (*bad_ones, too_many):
        with pytest.raises(InvalidInput, match="after:"):
            event_queries.FollowCursor.parse(bad)


def test_a_follow_cursor_holds_so_many_early_events_and_the_rest_wait(database):
    """Past ``CURSOR_EARLY`` events read before they settled, newer ones are read once they
    settle (the cursor stays short enough for a URL), and none is lost or read twice."""
    now = datetime.now(UTC)
    with database.session() as session:
        for seq in (1, 2, 3):
            session.add(
                m.Event(
                    seq=seq, id=str(uuid.uuid4()), occurred=now, event="shop.new",
                    resource_id=f"x.{seq}", resource={"flowyard.resource.id": f"x.{seq}"},
                    received=now,
                )
            )  # fmt: skip
    remembered = frozenset(range(1000, 1000 + event_queries.CURSOR_EARLY - 1))  # room for 1
    cursor = event_queries.FollowCursor(0, remembered)
    everything, soon = event_queries.EventFilter(), now - timedelta(seconds=1)
    with database.read() as session:
        first, cursor = event_queries.after(session, everything, cursor, 10, settled_by=soon)
        assert [e.resource_id for e in first] == ["x.1"]
        assert cursor.position == 0 and len(cursor.early) == event_queries.CURSOR_EARLY
        none, cursor = event_queries.after(session, everything, cursor, 10, settled_by=soon)
        assert none == []
        later = now + timedelta(seconds=1)
        rest, cursor = event_queries.after(session, everything, cursor, 10, settled_by=later)
    assert [e.resource_id for e in rest] == ["x.2", "x.3"]
    assert cursor == event_queries.FollowCursor(3, remembered)
