"""Flow runs indexed by ``(start_time, id)`` and ``(end_time, id)``, for the runs list's
keyset pages by start or end time; they replace the one-column indexes of 0015, which
the metric triggers' window reads (``end_time`` / ``start_time`` ranges) use as well.

On PostgreSQL each index is built, and the old one dropped, ``CONCURRENTLY``, outside a
transaction: writes to the runs table go on meanwhile, and a server of the previous
version reads its ranges from the new indexes.

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

REPLACED = {"start_time": "ix_flow_runs_start_time", "end_time": "ix_flow_runs_end_time"}


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for column, old in REPLACED.items():
            op.create_index(
                f"ix_flow_runs_{column}_id",
                "flow_runs",
                [column, "id"],
                postgresql_concurrently=True,
                if_not_exists=True,
            )
            op.drop_index(old, "flow_runs", postgresql_concurrently=True, if_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for column, old in REPLACED.items():
            op.create_index(
                old, "flow_runs", [column], postgresql_concurrently=True, if_not_exists=True
            )
            op.drop_index(
                f"ix_flow_runs_{column}_id",
                "flow_runs",
                postgresql_concurrently=True,
                if_exists=True,
            )
