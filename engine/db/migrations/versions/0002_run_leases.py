"""Leases on running runs, to find runs whose process died.

Revision ID: 0002_run_leases
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

from engine.db.schema import UtcDateTime

revision = "0002_run_leases"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the run lease (owner and expiry) and the index that finds expired leases."""
    with op.batch_alter_table("wf_runs") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(100)))
        batch.add_column(sa.Column("lease_expires_at", UtcDateTime()))
        batch.create_index("ix_wf_runs_status_lease_expires_at", ["status", "lease_expires_at"])


def downgrade() -> None:
    """Remove the run lease columns and their index."""
    with op.batch_alter_table("wf_runs") as batch:
        batch.drop_index("ix_wf_runs_status_lease_expires_at")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
