"""Flow runs carry their own tags (as Prefect's): the ``with tags(...)`` around a flow's
call, or for a run of a deployment the deployment's and those its run request added.

The column is nullable, without a default: on PostgreSQL adding it rewrites nothing, and
no backfill touches the runs. It stays NULL in the runs made before it (new runs get a
list, maybe empty): filtering by tag finds those by their deployment's tags, as before.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("tags")
