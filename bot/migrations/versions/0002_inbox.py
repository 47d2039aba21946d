"""The durable inbox: every interaction recorded before its ack (``slack_inbox``), which
takes over request de-duplication from ``slack_seen_requests`` (its keys are carried over as
finished rows, so a retry of a request handled before the upgrade still acts once); each
posted pause keeps its permalink; outbox counts and retention read an index.

Revision ID: 0002_inbox
Revises: 0001_bot_tables
"""

import sqlalchemy as sa
from alembic import op

from engine.db.schema import UtcDateTime

revision = "0002_inbox"
down_revision = "0001_bot_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The inbox table (taking over request de-dup), pause permalinks, outbox indexes."""
    op.create_table(
        "slack_inbox",
        sa.Column("request_key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64)),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending", "done", "failed", name="slack_inbox_state", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("lease_until", UtcDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime()),
    )
    op.create_index("ix_slack_inbox_state_next", "slack_inbox", ["state", "next_attempt_at"])
    op.execute(
        "INSERT INTO slack_inbox (request_key, kind, data, state, attempts, next_attempt_at, "
        "created_at, finished_at) "
        "SELECT request_key, 'seen', '{}', 'done', 0, seen_at, seen_at, seen_at "
        "FROM slack_seen_requests"
    )
    op.drop_table("slack_seen_requests")
    with op.batch_alter_table("slack_pauses") as batch:
        batch.add_column(sa.Column("permalink", sa.String(500)))
    op.create_index("ix_slack_outbox_state_next", "slack_outbox", ["state", "next_attempt_at"])


def downgrade() -> None:
    """Back to ``slack_seen_requests`` (keys carried over), no permalinks or new indexes."""
    op.drop_index("ix_slack_outbox_state_next", "slack_outbox")
    with op.batch_alter_table("slack_pauses") as batch:
        batch.drop_column("permalink")
    op.create_table(
        "slack_seen_requests",
        sa.Column("request_key", sa.String(200), primary_key=True),
        sa.Column("seen_at", UtcDateTime(), nullable=False),
    )
    op.execute(
        "INSERT INTO slack_seen_requests (request_key, seen_at) "
        "SELECT request_key, created_at FROM slack_inbox"
    )
    op.drop_index("ix_slack_inbox_state_next", "slack_inbox")
    op.drop_table("slack_inbox")
