"""Flow run inputs: messages sent to a flow run (``send_input``), read in the order sent.
And background task runs name the flow run that made them (their logs go there).

One row per message, unique by (run, key); the unique index also serves a run's reads
by key prefix. They go with their run. The caller column is nullable, without a
default: on PostgreSQL adding it rewrites nothing.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_run_inputs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("flow_run_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("sender", sa.String(length=200), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["flow_run_id"], ["flow_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flow_run_id", "key"),
    )
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("caller_flow_run_id", sa.String(length=36), nullable=True))
    with op.get_context().autocommit_block():  # task_runs is busy: build it beside writes
        op.create_index(
            "ix_task_runs_caller_flow_run_id",
            "task_runs",
            ["caller_flow_run_id"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_task_runs_caller_flow_run_id",
            table_name="task_runs",
            postgresql_concurrently=True,
            if_exists=True,
        )
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("caller_flow_run_id")
    op.drop_table("flow_run_inputs")
