"""Flow runs remember their pauses: the keys that fired (a rerun from the top passes a
suspend it went through), the pause under way (its input schema, its deadline), and the
input each pause was resumed with.

A nullable column without a default: on PostgreSQL adding it rewrites nothing.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("pauses", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("pauses")
