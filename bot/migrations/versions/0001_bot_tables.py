"""The bot's tables as the release before Alembic made them with ``create_all``: each run's
root message, each posted pause, the Slack outbox, and the keys of handled requests.

Revision ID: 0001_bot_tables
Revises:
"""

import sqlalchemy as sa
from alembic import op

from engine.db.schema import UtcDateTime

revision = "0001_bot_tables"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the bot's tables: Slack runs, pauses, the outbox and the seen requests."""
    op.create_table(
        "slack_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("workflow_name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("channel_id", sa.String(100)),
        sa.Column("root_ts", sa.String(32)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "slack_pauses",
        sa.Column("requirement_id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("workflow_name", sa.String(200), nullable=False),
        sa.Column("step_name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("channel_id", sa.String(100)),
        sa.Column("message_ts", sa.String(32)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_slack_pauses_run_id", "slack_pauses", ["run_id"])
    op.create_table(
        "slack_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("lease_until", UtcDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_slack_outbox_run_id", "slack_outbox", ["run_id"])
    op.create_table(
        "slack_seen_requests",
        sa.Column("request_key", sa.String(200), primary_key=True),
        sa.Column("seen_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop the bot's tables and their indexes."""
    op.drop_table("slack_seen_requests")
    op.drop_index("ix_slack_outbox_run_id", "slack_outbox")
    op.drop_table("slack_outbox")
    op.drop_index("ix_slack_pauses_run_id", "slack_pauses")
    op.drop_table("slack_pauses")
    op.drop_table("slack_runs")
