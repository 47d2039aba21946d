"""Direct-message copies of pause messages (one per pause and approver) and the people whose
App Home tab Signoff publishes.

Revision ID: 0003_dm_copies_and_home
Revises: 0001_bot_tables (re-chained after 0002 when the branches merge)
"""

import sqlalchemy as sa
from alembic import op

from engine.db.schema import UtcDateTime

revision = "0003_dm_copies_and_home"
down_revision = "0002_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Tables for direct-message copies of pauses and for people who opened the App Home."""
    op.create_table(
        "slack_dm_copies",
        sa.Column("requirement_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(100), nullable=False),
        sa.Column("message_ts", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_slack_dm_copies_run_id", "slack_dm_copies", ["run_id"])
    op.create_table(
        "slack_home_users",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("published_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop the DM-copy and App Home tables."""
    op.drop_table("slack_home_users")
    op.drop_index("ix_slack_dm_copies_run_id", "slack_dm_copies")
    op.drop_table("slack_dm_copies")
