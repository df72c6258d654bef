"""Deployments: paused, catch-up, late grace, crash retries, concurrency limit, pull steps

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("catch_up", sa.String(length=10), nullable=False, server_default="all")
        )
        batch_op.add_column(sa.Column("late_after_seconds", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("crash_retries", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("concurrency_limit", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "collision_strategy", sa.String(length=20), nullable=False, server_default="enqueue"
            )
        )
        batch_op.add_column(
            sa.Column("pull_steps", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("pull_steps")
        batch_op.drop_column("collision_strategy")
        batch_op.drop_column("concurrency_limit")
        batch_op.drop_column("crash_retries")
        batch_op.drop_column("late_after_seconds")
        batch_op.drop_column("catch_up")
        batch_op.drop_column("paused")
