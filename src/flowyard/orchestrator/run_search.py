"""How a name or a tag narrows the runs list, on each store, without reading every run.

The filters themselves (``name_matches``, ``tagged``) decide which runs match, the same on
every plan. What reads them fast:

- **PostgreSQL** chooses by its statistics, helped by a trigram index of names (migration
  0018) and a GIN index of tags (0024).
- **SQLite** has no statistics, so the list walks its sort index and tests each run (fast
  when matches are dense: a page is found in the first rows). A rare name or tag would
  have it read every run, so ``narrowest`` first asks the name's trigram index (0023) or
  the tag table (0024) how many runs it names, reading at most ``CANDIDATES`` + 1 of them.
  When few, the page reads just those runs by id and sorts them (``unindexed`` keeps
  SQLite from walking an index instead); when many, the walk finds a page soon.
  The index only proposes runs: the filter still tests each, so answers stay as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    and_,
    cast,
    column,
    exists,
    func,
    or_,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from flowyard.store import models as m

R = m.FlowRun
CANDIDATES = 1000
"""At most this many runs named by an index are read by id and sorted (a few ms); a name
or tag on more runs is found by walking the sort index."""
TRIGRAM = 3
"""The shortest text the trigram index finds; shorter ones are a scan of the names (as is
a text holding NUL, which FTS5's query syntax cannot quote)."""

NAMES = table("flow_run_names", column("rowid"), column("flow_run_names"))
"""Migration 0023's FTS5 table (SQLite): the trigrams of each run's name."""
NAME_KEYS = table("flow_run_name_keys", column("n"), column("flow_run_id"))
TAGS = table("flow_run_tags", column("tag"), column("flow_run_id"))
"""Migration 0024's table (SQLite): one row per run and tag."""
SQLITE_TABLES = (NAMES, NAME_KEYS, TAGS)
"""Tables that only SQLite has, kept by triggers rather than declared as models (FTS5 adds
its own beside ``flow_run_names``, named ``flow_run_names_…``)."""


def name_matches(session: Session, text: str) -> ColumnElement[bool]:
    """Runs whose name holds ``text``, in any case; ``%`` and ``_`` are taken as typed."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    # SQLite's LIKE ignores case as ILIKE's lower() does there (ASCII letters), and
    # costs less than lower() of every name; PostgreSQL's ILIKE reads the trigrams
    match = R.name.like if _on_sqlite(session) else R.name.ilike
    return match(f"%{escaped}%", escape="\\")


def tagged(session: Session, tag: str) -> ColumnElement[bool]:
    """Runs carrying ``tag``. A run made before runs had tags (migration 0022: NULL) is
    taken to carry its deployment's, as this filter read them then."""
    own: ColumnElement[bool]
    if _on_sqlite(session):
        own = exists().where(TAGS.c.tag == tag, TAGS.c.flow_run_id == R.id)
    else:
        own = cast(R.tags, JSONB).contains([tag])
    deployments = _tagged_deployments(session, tag)
    if not deployments:
        return own
    older = and_(R.tags.is_(None), in_order(session, R.deployment_id).in_(deployments))
    return or_(own, older)


def tag_clauses(
    session: Session, every: Sequence[str], some: Sequence[str]
) -> list[ColumnElement[bool]]:
    """Runs carrying ``every`` tag, and (when given) at least one of ``some`` (Prefect's
    ``tags.all_`` and ``tags.any_``)."""
    clauses = [tagged(session, tag) for tag in every]
    if some:
        clauses.append(or_(*(tagged(session, tag) for tag in some)))
    return clauses


def narrowest(session: Session, *, name: str, tag: str) -> ColumnElement[bool] | None:
    """On SQLite, the fewest runs (at most ``CANDIDATES``) that an index names for the
    name or the tag filter, as a condition on run ids; None when neither names few."""
    if not _on_sqlite(session):
        return None
    found: list[tuple[int, ColumnElement[bool]]] = []
    if len(name) >= TRIGRAM and "\x00" not in name and _has_name_index(session):
        phrase = '"' + name.replace('"', '""') + '"'  # the text itself, not FTS5 syntax
        rows = select(NAMES.c.rowid).where(NAMES.c.flow_run_names.match(phrase))
        ids = select(NAME_KEYS.c.flow_run_id).where(NAME_KEYS.c.n.in_(rows))
        found.append((_count(session, rows), R.id.in_(ids)))
    if tag and not _tagged_deployments(session, tag):  # else runs of those may carry it too
        ids = select(TAGS.c.flow_run_id).where(TAGS.c.tag == tag)
        found.append((_count(session, ids), R.id.in_(ids)))
    few = [(count, clause) for count, clause in found if count <= CANDIDATES]
    return min(few, key=lambda pair: pair[0])[1] if few else None


def unindexed(clause: ColumnElement[bool]) -> ColumnElement[bool]:
    """``+(clause)``: the same test, which SQLite does not serve from an index, so that a
    query reads the runs ``narrowest`` names rather than walking a time's index."""
    return UnaryExpression(clause.self_group(), operator=operators.custom_op("+"), type_=Boolean)


def in_order(session: Session, column: Any) -> Any:
    """``column`` as a filter that leaves the page in its sort index's order. SQLite, with no
    statistics, reads a pool's or a deployment's runs by their own index and sorts them all
    (100,000 runs of one pool: 700 ms); given ``column || ''`` it walks the sort index and
    stops at a page, which at worst reads the table once. PostgreSQL chooses by its
    statistics, so it is given the column itself."""
    return column.concat("") if _on_sqlite(session) else column


def _count(session: Session, query: Any) -> int:
    """How many rows ``query`` gives, counting no further than ``CANDIDATES`` + 1."""
    capped = query.limit(CANDIDATES + 1).subquery()
    return session.scalar(select(func.count()).select_from(capped)) or 0


def _has_name_index(session: Session) -> bool:
    """Whether migration 0023 made the index (not where SQLite lacks FTS5 or trigrams)."""
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'flow_run_names'"
    return session.connection().exec_driver_sql(query).first() is not None


def _tagged_deployments(session: Session, tag: str) -> list[str]:
    """Deployments carrying ``tag``. Read in Python: the tags are a JSON list, and
    deployments are few next to runs."""
    rows = session.execute(select(m.Deployment.id, m.Deployment.tags)).all()
    return [ident for ident, tags in rows if tag in (tags or ())]


def _on_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"
