"""Runs by the person who started them, newest first, without a scan of every run.

Revision ID: 0004_runs_by_user
Revises: 0003_approval_votes
"""

from alembic import op

revision = "0004_runs_by_user"
down_revision = "0003_approval_votes"
branch_labels = None
depends_on = None

_INDEX = "ix_wf_runs_user_id_id"


def upgrade() -> None:
    """Index the runs by (user_id, id): ``list_runs(user_id=...)``."""
    op.create_index(_INDEX, "wf_runs", ["user_id", "id"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index(_INDEX, table_name="wf_runs")
