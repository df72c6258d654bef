"""Events: what happened, written with the change it records, and their related resources

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

LogId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("online", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "events",
        sa.Column("seq", LogId, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("occurred", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(1024), nullable=False),
        sa.Column("resource_id", sa.String(1024), nullable=False),
        sa.Column("resource_name", sa.String(1024), nullable=True),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("related", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("follows", sa.String(36), nullable=True),
        sa.Column("received", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_events_occurred_seq", "events", ["occurred", "seq"])
    op.create_index("ix_events_event_occurred", "events", ["event", "occurred"])
    op.create_index("ix_events_resource_id_occurred", "events", ["resource_id", "occurred"])
    op.create_table(
        "event_related",
        sa.Column("id", LogId, primary_key=True, autoincrement=True),
        sa.Column(
            "event_id",
            sa.String(36),
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("resource_id", sa.String(1024), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
    )
    op.create_index("ix_event_related_event_id", "event_related", ["event_id"])
    op.create_index("ix_event_related_resource_id", "event_related", ["resource_id", "role"])


def downgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("online")
    op.drop_table("event_related")
    op.drop_table("events")
