"""Runs, sessions and decisions.

Revision ID: 0001_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

from engine.db.schema import UtcDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the sessions, runs and decisions tables."""
    op.create_table(
        "wf_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("workflow_name", sa.String(200)),
        sa.Column("user_id", sa.String(200)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "wf_runs",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False, unique=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("workflow_name", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("paused_step_name", sa.String(200)),
        sa.Column("paused_at", UtcDateTime()),
        sa.Column("expires_at", UtcDateTime()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_wf_runs_session_id", "wf_runs", ["session_id"])
    op.create_index("ix_wf_runs_workflow_name", "wf_runs", ["workflow_name"])
    op.create_index("ix_wf_runs_status_expires_at", "wf_runs", ["status", "expires_at"])
    op.create_table(
        "wf_decisions",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("requirement_id", sa.String(64), nullable=False, unique=True),
        sa.Column("step_name", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", UtcDateTime(), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("values", sa.Text),
    )
    op.create_index("ix_wf_decisions_run_id", "wf_decisions", ["run_id"])


def downgrade() -> None:
    """Drop the three tables, decisions first."""
    op.drop_table("wf_decisions")
    op.drop_table("wf_runs")
    op.drop_table("wf_sessions")
