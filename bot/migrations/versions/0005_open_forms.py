"""Forms (modals) open on pauses, shared by the replicas: whichever replica decides or
expires a pause replaces the forms opened through any of them.

Revision ID: 0005_open_forms
Revises: 0004_policies
"""

import sqlalchemy as sa
from alembic import op

from engine.db.schema import UtcDateTime

revision = "0005_open_forms"
down_revision = "0004_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The table of open forms, by view id, found by their pause."""
    op.create_table(
        "slack_open_forms",
        sa.Column("view_id", sa.String(64), primary_key=True),
        sa.Column("requirement_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_slack_open_forms_requirement_id", "slack_open_forms", ["requirement_id"])


def downgrade() -> None:
    """Drop the open forms."""
    op.drop_index("ix_slack_open_forms_requirement_id", "slack_open_forms")
    op.drop_table("slack_open_forms")
