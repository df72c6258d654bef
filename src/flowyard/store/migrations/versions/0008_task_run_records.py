"""Task-run records (state name, tags, version, inputs, cache key, attempts, result) and
flow-run result references; an index to find a flow run's subflows

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state_name", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("task_version", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("task_inputs", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("cache_key", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("run_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("result_ref", sa.JSON(), nullable=True))
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result_ref", sa.JSON(), nullable=True))
        batch_op.create_index("ix_flow_runs_parent_task_run_id", ["parent_task_run_id"])


def downgrade() -> None:
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_flow_runs_parent_task_run_id")
        batch_op.drop_column("result_ref")
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        for column in (
            "result_ref", "run_count", "cache_key", "task_inputs", "task_version", "tags",
            "state_name",
        ):  # fmt: skip
            batch_op.drop_column(column)
