"""The runs list's name and tag filters read through their indexes (migrations 0023 and
0024) and answer as a scan of every run does, on SQLite and on PostgreSQL, page by page;
runs already there when the migrations run are found too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import insert, inspect, null, text, update

from flowyard.orchestrator import run_pages, run_search
from flowyard.store import Database
from flowyard.store import models as m
from flowyard.store.database import alembic_config
from flowyard.store.models import utcnow

NAMES = [
    "nightly-load", "Nightly-REPORT", "hourly", "50%_off", "500-off", 'say "hi" now',
    "ÉTÉ-camp", "été-camp", "a AND b*", "NEAR(x, y)", "x", "tab\there",
]  # fmt: skip
TERMS = [
    "NIGHTLY", "ghtly-", "0%_", "0_o", 'y "hi"', '"', "été", "ÉTÉ", "AND b*", "NEAR(", "x",
    "ni", "tab\th", "nowhere", "-",
]  # fmt: skip
"""Cases, quotes, FTS5's own syntax, ``%`` and ``_``, letters outside ASCII (which SQLite's
LIKE does not fold, though the trigram index does), and texts under three characters."""


def _add(db: Database, runs: list[tuple[str, list[str] | None]], deployment_tags=()) -> None:
    """Runs named and tagged as given (None: made before runs had tags), one second apart,
    of a deployment carrying ``deployment_tags``."""
    with db.session() as session:
        flow = m.Flow(name="f")
        queue, pool = m.WorkQueue(name="default"), m.WorkPool(name="p", type="process")
        pool.queues.append(queue)
        deployment = m.Deployment(
            name="d", flow=flow, queue=queue, entrypoint="f.py:f", tags=[*deployment_tags]
        )
        session.add_all([pool, deployment])
        session.flush()
        now = utcnow()
        rows = [
            {
                "name": name, "tags": tags, "flow_id": flow.id, "deployment_id": deployment.id,
                "state_type": "COMPLETED", "state_name": "Completed", "state_timestamp": now,
                "scheduled_time": now, "created": now + timedelta(seconds=n),
            }
            for n, (name, tags) in enumerate(runs)
        ]  # fmt: skip
        session.execute(insert(m.FlowRun), rows)
        older = [name for name, tags in runs if tags is None]  # SQL NULL, not JSON's null
        session.execute(update(m.FlowRun).where(m.FlowRun.name.in_(older)).values(tags=null()))


def _pages(db: Database, limit: int = 2, **query: str) -> list[str]:
    """The names of every run the list shows, following its cursors page after page."""
    names: list[str] = []
    cursor = None
    where = run_pages.RunFilter.from_query(query, [])
    while True:
        with db.read() as session:
            found, cursor = run_pages.page(session, where, limit=limit, cursor=cursor)
        names += [r.name for r in found]
        if cursor is None:
            return names


def _narrowed(db: Database, **query: str) -> bool:
    """Whether the page reads the runs an index names (SQLite), not a time's index."""
    where = run_pages.RunFilter.from_query(query, [])
    with db.read() as session:
        return run_search.narrowest(session, name=where.name, tag=where.tag) is not None


def _ascii_lower(value: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in value)


def _newest_first(names: list[str], keep) -> list[str]:
    return [name for name in reversed(names) if keep(name)]


@pytest.fixture
def sqlite(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'search.db'}")
    db.migrate()
    yield db
    db.dispose()


@pytest.mark.parametrize("term", TERMS)
def test_a_name_search_by_the_trigram_index_answers_as_the_scan(sqlite: Database, term: str):
    """SQLite: the runs whose name holds the text, ASCII letters in any case (LIKE's rule),
    newest first, across pages; read through the index from three characters on."""
    _add(sqlite, [(name, []) for name in NAMES])
    expected = _newest_first(NAMES, lambda name: _ascii_lower(term) in _ascii_lower(name))
    assert _pages(sqlite, name=term) == expected
    assert _narrowed(sqlite, name=term) == (len(term) >= run_search.TRIGRAM)


def test_a_name_holding_nul_is_searched_by_the_scan(sqlite: Database):
    """FTS5 cannot quote NUL: such a text skips the index and gets the scan's answer."""
    _add(sqlite, [("a\x00bcd", []), ("abcd", [])])
    assert not _narrowed(sqlite, name="a\x00bc")
    assert _pages(sqlite, name="a\x00bc") == _pages(sqlite, name="a\x00bc", state="COMPLETED")


def test_without_the_trigram_index_a_name_search_is_the_scan(sqlite: Database):
    """As migration 0023 leaves an SQLite built without FTS5's trigrams (no table, no
    triggers): runs are still written and found, by the scan."""
    with sqlite.session() as session:
        for statement in (
            "DROP TRIGGER flow_run_names_insert", "DROP TRIGGER flow_run_names_rename",
            "DROP TRIGGER flow_run_names_delete", "DROP TABLE flow_run_name_keys",
            "DROP TABLE flow_run_names",
        ):  # fmt: skip
            session.connection().exec_driver_sql(statement)
    _add(sqlite, [(name, []) for name in NAMES])
    assert not _narrowed(sqlite, name="ghtly")
    assert _pages(sqlite, name="ghtly") == ["Nightly-REPORT", "nightly-load"]


def test_names_and_tags_on_many_runs_are_found_by_walking_the_list(sqlite: Database):
    """A name or tag on more than ``CANDIDATES`` runs: the list walks its sort index (a
    page comes in its first rows) and gives the same runs; a rare one still narrows."""
    count = run_search.CANDIDATES + 1
    names = [f"bulk-{n}" for n in range(count)]
    _add(sqlite, [(name, ["bulk"] if n % 2 else ["bulk", "odd"]) for n, name in enumerate(names)])
    assert not _narrowed(sqlite, name="BULK") and not _narrowed(sqlite, tag="bulk")
    assert _pages(sqlite, limit=50, name="BULK")[:120] == names[::-1][:120]
    assert _pages(sqlite, limit=50, tag="bulk")[:120] == names[::-1][:120]
    assert _narrowed(sqlite, name="bulk-77") and _narrowed(sqlite, tag="odd")
    assert _pages(sqlite, name="bulk-77") == [f"bulk-{n}" for n in range(779, 769, -1)] + [
        "bulk-77"
    ]
    assert _pages(sqlite, limit=50, tag="odd", name="k-10") == [
        name for n, name in reversed(list(enumerate(names))) if n % 2 == 0 and "k-10" in name
    ]


def test_the_indexes_follow_renames_tag_changes_and_deletes(sqlite: Database):
    """Triggers keep the name index and the tag table in step, whoever writes the runs,
    and a cascade that deletes them."""
    _add(sqlite, [("first", ["a"]), ("second", ["a", "b"]), ("third", None)])
    with sqlite.session() as session:
        connection = session.connection()
        connection.exec_driver_sql("UPDATE flow_runs SET name = 'renamed' WHERE name = 'first'")
        connection.exec_driver_sql("""UPDATE flow_runs SET tags = '["c"]' WHERE name = 'second'""")
        connection.exec_driver_sql("DELETE FROM flow_runs WHERE name = 'third'")
    assert _pages(sqlite, name="first") == [] and _pages(sqlite, name="rename") == ["renamed"]
    assert _pages(sqlite, tag="b") == [] and _pages(sqlite, tag="c") == ["second"]
    assert _pages(sqlite, tag="a") == ["renamed"]
    with sqlite.read() as session:
        count = session.connection().exec_driver_sql
        assert count("SELECT count(*) FROM flow_run_names").scalar() == 2
        assert count("SELECT count(*) FROM flow_run_name_keys").scalar() == 2
        assert count("SELECT count(*) FROM flow_run_tags").scalar() == 2
    with sqlite.session() as session:  # the runs go with their flow (ON DELETE CASCADE)
        session.connection().exec_driver_sql("DELETE FROM flows")
    with sqlite.read() as session:
        count = session.connection().exec_driver_sql
        assert count("SELECT count(*) FROM flow_runs").scalar() == 0
        for table in ("flow_run_names", "flow_run_name_keys", "flow_run_tags"):
            assert count(f"SELECT count(*) FROM {table}").scalar() == 0, table


TAGGED = [("ab", ["a", "b"]), ("a", ["a", "a"]), ("none", []), ("old", None), ("c", ["c"])]


def test_tags_are_found_as_a_scan_finds_them(database: Database):
    """SQLite (by its tag table) and PostgreSQL (by the GIN index): a run's own tags, a run
    from before 0022 by its deployment's, a tag no run has; ``tag`` and ``any_tag``."""
    _add(database, TAGGED, deployment_tags=["nightly", "a"])
    assert _pages(database, tag="a") == ["old", "a", "ab"]
    assert _pages(database, tag="b") == ["ab"]
    assert _pages(database, tag="nightly") == ["old"]
    assert _pages(database, tag="missing") == []
    assert _pages(database, tag="b", name="a") == ["ab"]
    with database.read() as session:
        extra = run_search.tag_clauses(session, ["a"], ["c", "b"])
        every = run_pages.RunFilter()
        found, _ = run_pages.page(session, every, limit=50, cursor=None, extra=extra)
    assert [r.name for r in found] == ["ab"]


def test_runs_there_before_the_migrations_are_indexed_by_them(database: Database):
    """Down to 0022, runs written with no index; up again, they are found by it."""
    config = alembic_config(database.engine)
    command.downgrade(config, "0022")
    _add(database, [*TAGGED, *((name, ["n"]) for name in NAMES)])
    command.upgrade(config, "head")
    assert _pages(database, tag="b") == ["ab"] and _pages(database, tag="missing") == []
    assert _pages(database, name="ghtly") == ["Nightly-REPORT", "nightly-load"]
    if database.is_sqlite:
        assert _narrowed(database, name="ghtly") and _narrowed(database, tag="b")
        with database.read() as session:
            count = session.connection().exec_driver_sql
            assert count("SELECT count(*) FROM flow_run_names").scalar() == 17
    else:
        indexes = {i["name"] for i in inspect(database.engine).get_indexes("flow_runs")}
        assert "ix_flow_runs_tags" in indexes
        with database.read() as session:
            query = text("SELECT pg_get_indexdef('ix_flow_runs_tags'::regclass)")
            assert "jsonb_path_ops" in session.scalar(query)
