"""Artifacts in the store, on SQLite and PostgreSQL: keyset pages and a key's history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from flowyard.orchestrator import runs
from flowyard.orchestrator.api.artifacts import newest_first, parse_cursor
from flowyard.store import models as m


def test_keyset_pages_cover_every_artifact_once_newest_first(database):
    """Pages of 3 walk 10 artifacts (some sharing a timestamp) without gap or repeat."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with database.session() as session:
        for n in range(10):
            created = start + timedelta(seconds=n // 2)  # pairs share a timestamp
            session.add(m.Artifact(key="k", type="progress", data=n, created=created))
    seen, cursor = [], None
    with database.read() as session:
        while True:
            page, cursor_text = newest_first(session, select(m.Artifact), cursor, 3)
            seen += page
            if cursor_text is None:
                break
            cursor = parse_cursor(cursor_text)
    assert len(seen) == len({x.id for x in seen}) == 10
    assert [x.created for x in seen] == sorted((x.created for x in seen), reverse=True)


def test_a_keys_history_outlives_the_run_that_wrote_it(database):
    """Deleting a flow run keeps its artifacts, no longer attached to it."""
    with database.session() as session:
        run = runs.new_run(session, flow=m.Flow(name="f"), now=datetime.now(UTC))
        session.flush()
        session.add(m.Artifact(key="report", type="markdown", data="# hi", flow_run_id=run.id))
        run_id = run.id
    with database.session() as session:
        session.delete(session.get(m.FlowRun, run_id))
    with database.read() as session:
        [kept] = session.scalars(select(m.Artifact)).all()
        assert (kept.key, kept.flow_run_id, kept.data) == ("report", None, "# hi")
