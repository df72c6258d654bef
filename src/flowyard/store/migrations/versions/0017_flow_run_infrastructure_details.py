"""Flow runs keep what their infrastructure reported beyond its id (a Lambda function's
CloudWatch log group and stream), shown by ``flowyard flow-run inspect``.

A nullable column without a default: on PostgreSQL adding it rewrites nothing.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("infrastructure_details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("infrastructure_details")
