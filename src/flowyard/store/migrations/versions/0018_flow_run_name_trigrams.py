"""A trigram index on flow runs' names (PostgreSQL), for the runs list's name search

The search is a substring match (``name ILIKE '%text%'``): without an index it reads every
run (1.3 s at 1,000,000 runs). A GIN index of the names' trigrams (``pg_trgm``, shipped
with PostgreSQL and trusted since 13: a database owner may create it) serves it for any
text of three characters or more.

Built ``CONCURRENTLY``, outside a transaction, so writes to the runs table go on meanwhile.
Where ``pg_trgm`` cannot be created (not installed, or a role without the right), the
migration says so and goes on without the index: the search still works, by a scan.
SQLite keeps its plan (a scan of the names; 100,000 runs take tens of ms).

Revision ID: 0018
Revises: 0017
"""

import structlog
from alembic import op
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

NAME = "ix_flow_runs_name_trgm"
log = structlog.get_logger()


def _trigrams() -> bool:
    """Whether ``pg_trgm`` is in the database (created now if it can be)."""
    bind = op.get_bind()
    if bind.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")):
        return True
    try:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        log.warning("flow_run_name_index_skipped", reason=reason, index=NAME)
        return False
    return True


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        if not _trigrams():
            return
        op.create_index(
            NAME,
            "flow_runs",
            ["name"],
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.drop_index(NAME, "flow_runs", postgresql_concurrently=True, if_exists=True)
