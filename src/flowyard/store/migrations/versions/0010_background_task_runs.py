"""Background task runs: a task run may belong to no flow run, and carries its claim

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.alter_column("flow_run_id", existing_type=sa.String(36), nullable=True)
        batch_op.add_column(sa.Column("parameters_ref", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("claim_token", sa.String(100), nullable=True))
        batch_op.add_column(sa.Column("worker_name", sa.String(200), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM task_runs WHERE flow_run_id IS NULL")
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.drop_column("worker_name")
        batch_op.drop_column("claim_token")
        batch_op.drop_column("parameters_ref")
        batch_op.alter_column("flow_run_id", existing_type=sa.String(36), nullable=False)
