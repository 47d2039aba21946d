"""The outbox's per-run order: an index on (run_id, state, id), so a claim finds each item's
earlier unsent items of its run by a short range scan, however many of the run's delivered
items retention still keeps. It replaces the index on run_id alone (its prefix).

Revision ID: 0005_outbox_run_order
Revises: 0005_open_forms
"""

from alembic import op

revision = "0005_outbox_run_order"
down_revision = "0005_open_forms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index the outbox by (run_id, state, id) in place of run_id alone."""
    op.create_index("ix_slack_outbox_run_state_id", "slack_outbox", ["run_id", "state", "id"])
    op.drop_index("ix_slack_outbox_run_id", "slack_outbox")


def downgrade() -> None:
    """Back to the index on run_id alone."""
    op.create_index("ix_slack_outbox_run_id", "slack_outbox", ["run_id"])
    op.drop_index("ix_slack_outbox_run_state_id", "slack_outbox")
