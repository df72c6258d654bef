"""Automations (their windows, firings and actions), the evaluator's position, webhooks;
indexes on flow runs' times for metric triggers and the UI's pages

Revision ID: 0015
Revises: 0014
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _automation(column: str = "automation_id", primary_key: bool = True) -> list[Any]:
    return [
        sa.Column(column, sa.String(length=36), nullable=False, primary_key=primary_key),
        sa.ForeignKeyConstraint([column], ["automations.id"], ondelete="CASCADE"),
    ]


def upgrade() -> None:
    op.create_index("ix_flow_runs_end_time", "flow_runs", ["end_time"])
    op.create_index("ix_flow_runs_start_time", "flow_runs", ["start_time"])
    op.create_index("ix_flow_runs_created_id", "flow_runs", ["created", "id"])
    op.create_table(
        "automations",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("actions_on_trigger", sa.JSON(), nullable=False),
        sa.Column("actions_on_resolve", sa.JSON(), nullable=False),
        sa.Column("dedupe", sa.JSON(), nullable=True),
        sa.Column("deployment_id", sa.String(length=36), nullable=True),
        sa.Column("created", TIME, nullable=False),
        sa.Column("updated", TIME, nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_automations_deployment_id", "automations", ["deployment_id"])
    op.create_table(
        "automation_buckets",
        *_automation(),
        sa.Column("trigger", sa.String(length=50), primary_key=True),
        sa.Column("key", sa.String(length=1024), primary_key=True),
        sa.Column("start", TIME, nullable=False),
        sa.Column("end", TIME, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_event", sa.JSON(), nullable=True),
    )
    op.create_index("ix_automation_buckets_end", "automation_buckets", ["end"])
    op.create_table(
        "automation_child_firings",
        *_automation(),
        sa.Column("parent", sa.String(length=50), primary_key=True),
        sa.Column("child", sa.String(length=50), primary_key=True),
        sa.Column("fired", TIME, nullable=False),
        sa.Column("event", sa.JSON(), nullable=True),
    )
    op.create_table(
        "automation_metric_states",
        *_automation(),
        sa.Column("trigger", sa.String(length=50), primary_key=True),
        sa.Column("resource_id", sa.String(length=1024), primary_key=True),
        sa.Column("since", TIME, nullable=False),
        sa.Column("firing", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
    )
    op.create_table(
        "automation_firings",
        sa.Column("id", sa.String(length=36), primary_key=True),
        *_automation(primary_key=False),
        sa.Column("fired", TIME, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("triggering_event", sa.JSON(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_automation_firings_automation_fired", "automation_firings", ["automation_id", "fired"]
    )
    op.create_table(
        "automation_actions",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("firing_id", sa.String(length=36), nullable=False),
        sa.Column("automation_id", sa.String(length=36), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("when", sa.String(length=20), nullable=False),
        sa.Column("action", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("enqueued", TIME, nullable=True),
        sa.Column("finished", TIME, nullable=True),
        sa.ForeignKeyConstraint(["firing_id"], ["automation_firings.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_automation_actions_firing_id", "automation_actions", ["firing_id"])
    op.create_index("ix_automation_actions_automation_id", "automation_actions", ["automation_id"])
    op.create_index("ix_automation_actions_status", "automation_actions", ["status", "enqueued"])
    op.create_table(
        "automation_dedupe",
        *_automation(),
        sa.Column("key", sa.String(length=1024), primary_key=True),
        sa.Column("until", TIME, nullable=False),
    )
    op.create_table(
        "evaluator_positions",
        sa.Column("name", sa.String(length=50), primary_key=True),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("gaps", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated", TIME, nullable=False),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False, unique=True),
        sa.Column("slug", sa.String(length=64), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("auth", sa.String(length=20), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created", TIME, nullable=False),
        sa.Column("updated", TIME, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "webhooks", "evaluator_positions", "automation_dedupe", "automation_actions",
        "automation_firings", "automation_metric_states", "automation_child_firings",
        "automation_buckets", "automations",
    ):  # fmt: skip
        op.drop_table(table)
    op.drop_index("ix_flow_runs_created_id", "flow_runs")
    op.drop_index("ix_flow_runs_start_time", "flow_runs")
    op.drop_index("ix_flow_runs_end_time", "flow_runs")
