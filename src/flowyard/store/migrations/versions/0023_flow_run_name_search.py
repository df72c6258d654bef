"""A trigram index of flow runs' names on SQLite (FTS5), for the runs list's name search

The search is a substring match (``name LIKE '%text%'``); without an index SQLite reads
every run whose name does not match (165-192 ms for a rare name at 100,000 runs).
``flow_run_names`` is an FTS5 table with the ``trigram`` tokenizer (SQLite 3.34+): a
phrase of three characters or more finds the names holding it, in any case.

Its rows are keyed by run id, not by the runs' rowid (which ``VACUUM`` and a rebuilt table
renumber): ``flow_run_name_keys`` gives each run a number, the FTS row's rowid. Triggers on
``flow_runs`` keep both in step with every insert, rename and delete, whoever writes; the
runs already there are indexed here, in this migration's transaction.

A migration that rebuilds ``flow_runs`` on SQLite (``batch_alter_table`` doing more than
adding a column) drops its triggers: it must create them again (``TRIGGERS``).

Where FTS5 or its trigram tokenizer is missing (an SQLite built without them), the
migration says so and goes on without the index: the search still works, by a scan.
PostgreSQL has its own index (migration 0018).

Revision ID: 0023
Revises: 0022
"""

import structlog
from alembic import op
from sqlalchemy.exc import OperationalError

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

log = structlog.get_logger()

NAMES = "CREATE VIRTUAL TABLE flow_run_names USING fts5(name, tokenize = 'trigram', columnsize = 0)"
KEYS = """CREATE TABLE flow_run_name_keys (
    n INTEGER PRIMARY KEY, flow_run_id VARCHAR(36) NOT NULL UNIQUE
)"""
TRIGGERS = [
    """CREATE TRIGGER flow_run_names_insert AFTER INSERT ON flow_runs BEGIN
        INSERT INTO flow_run_name_keys (flow_run_id) VALUES (new.id);
        INSERT INTO flow_run_names (rowid, name) VALUES (last_insert_rowid(), new.name);
    END""",
    """CREATE TRIGGER flow_run_names_rename AFTER UPDATE OF name ON flow_runs
    WHEN old.name IS NOT new.name BEGIN
        UPDATE flow_run_names SET name = new.name
        WHERE rowid = (SELECT n FROM flow_run_name_keys WHERE flow_run_id = new.id);
    END""",
    """CREATE TRIGGER flow_run_names_delete AFTER DELETE ON flow_runs BEGIN
        DELETE FROM flow_run_names
        WHERE rowid = (SELECT n FROM flow_run_name_keys WHERE flow_run_id = old.id);
        DELETE FROM flow_run_name_keys WHERE flow_run_id = old.id;
    END""",
]
FILL = [
    "INSERT INTO flow_run_name_keys (flow_run_id) SELECT id FROM flow_runs ORDER BY created, id",
    """INSERT INTO flow_run_names (rowid, name)
    SELECT k.n, r.name FROM flow_run_name_keys AS k JOIN flow_runs AS r ON r.id = k.flow_run_id""",
]


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    try:
        op.execute(NAMES)
    except OperationalError as exc:  # no such module: fts5, or no such tokenizer: trigram
        log.warning("flow_run_name_index_skipped", reason=str(exc.orig), index="flow_run_names")
        return
    op.execute(KEYS)
    for statement in [*TRIGGERS, *FILL]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for trigger in ("insert", "rename", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS flow_run_names_{trigger}")
    op.execute("DROP TABLE IF EXISTS flow_run_name_keys")
    op.execute("DROP TABLE IF EXISTS flow_run_names")
