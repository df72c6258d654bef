"""An index of flow runs' tags (migration 0022's JSON list), for the runs list's tag filter

Without it a tag filter reads every run's list (80-600 ms at 100,000 runs on SQLite for a
tag no run has).

- PostgreSQL: a GIN index of ``tags::jsonb`` (``jsonb_path_ops``), the very expression
  the filter's ``@>`` reads; built ``CONCURRENTLY``, so writes go on meanwhile, and it needs
  no backfill.
- SQLite cannot index inside JSON: ``flow_run_tags`` holds one row per run and tag (its key
  is tag then run id), kept by triggers on ``flow_runs`` whoever writes, and filled here
  from the runs already there. Only text values are tags (the API accepts no others).
  A migration that rebuilds ``flow_runs`` on SQLite drops these triggers: it must create
  them again (``TRIGGERS``).

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

NAME = "ix_flow_runs_tags"
TAGS = """CREATE TABLE flow_run_tags (
    tag VARCHAR(200) NOT NULL, flow_run_id VARCHAR(36) NOT NULL,
    PRIMARY KEY (tag, flow_run_id)
) WITHOUT ROWID"""
TAGS_OF = "SELECT value FROM json_each({row}.tags) WHERE type = 'text'"
ADD = f"INSERT OR IGNORE INTO flow_run_tags SELECT value, new.id FROM ({TAGS_OF})"
REMOVE = f"DELETE FROM flow_run_tags WHERE flow_run_id = old.id AND tag IN ({TAGS_OF})"
TRIGGERS = [
    f"""CREATE TRIGGER flow_run_tags_insert AFTER INSERT ON flow_runs
    WHEN new.tags IS NOT NULL BEGIN {ADD.format(row="new")}; END""",
    f"""CREATE TRIGGER flow_run_tags_update AFTER UPDATE OF tags ON flow_runs BEGIN
        {REMOVE.format(row="old")}; {ADD.format(row="new")};
    END""",
    f"""CREATE TRIGGER flow_run_tags_delete AFTER DELETE ON flow_runs
    WHEN old.tags IS NOT NULL BEGIN {REMOVE.format(row="old")}; END""",
]
FILL = """INSERT OR IGNORE INTO flow_run_tags (tag, flow_run_id)
SELECT DISTINCT j.value, r.id FROM flow_runs AS r, json_each(r.tags) AS j
WHERE r.tags IS NOT NULL AND j.type = 'text'"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                NAME,
                "flow_runs",
                [sa.text("(CAST(tags AS JSONB)) jsonb_path_ops")],
                postgresql_using="gin",
                postgresql_concurrently=True,
                if_not_exists=True,
            )
        return
    op.execute(TAGS)
    for statement in [*TRIGGERS, FILL]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(NAME, "flow_runs", postgresql_concurrently=True, if_exists=True)
        return
    for trigger in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS flow_run_tags_{trigger}")
    op.execute("DROP TABLE IF EXISTS flow_run_tags")
