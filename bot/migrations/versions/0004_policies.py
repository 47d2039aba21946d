"""Approval policies: each escalated pause (once, across replicas), each delegation, and the
short per-pause lease under which a vote is checked against the route's groups.

Revision ID: 0004_policies
Revises: 0003_dm_copies_and_home
"""

import sqlalchemy as sa
from alembic import op

from engine.db.schema import UtcDateTime

revision = "0004_policies"
down_revision = "0003_dm_copies_and_home"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Tables for escalations, delegations and vote leases."""
    op.create_table(
        "slack_escalations",
        sa.Column("requirement_id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_name", sa.String(200), nullable=False),
        sa.Column("escalated_to", sa.Text(), nullable=False),
        sa.Column("escalated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_slack_escalations_run_id", "slack_escalations", ["run_id"])
    op.create_table(
        "slack_delegations",
        sa.Column("requirement_id", sa.String(64), primary_key=True),
        sa.Column("delegator_id", sa.String(32), primary_key=True),
        sa.Column("delegate_id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_name", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("delegated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_slack_delegations_run_id", "slack_delegations", ["run_id"])
    op.create_table(
        "slack_vote_locks",
        sa.Column("requirement_id", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop the approval-policy tables."""
    op.drop_table("slack_vote_locks")
    op.drop_index("ix_slack_delegations_run_id", "slack_delegations")
    op.drop_table("slack_delegations")
    op.drop_index("ix_slack_escalations_run_id", "slack_escalations")
    op.drop_table("slack_escalations")
