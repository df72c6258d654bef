"""Per-run priority (with a deployment default) and fair (round-robin) work queues

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("work_queues", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fair", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("work_queues", schema=None) as batch_op:
        batch_op.drop_column("fair")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("priority")
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.drop_column("priority")
