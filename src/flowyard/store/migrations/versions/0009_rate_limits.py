"""Concurrency limits: a slot decay (for rate limits), and an off switch

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("concurrency_limits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slot_decay_per_second", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("concurrency_limits", schema=None) as batch_op:
        batch_op.drop_column("active")
        batch_op.drop_column("slot_decay_per_second")
