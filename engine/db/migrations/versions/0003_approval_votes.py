"""Approval policies: a pause may have several decisions, one per person.

``wf_decisions.requirement_id`` was unique (one decision a pause); a pause that needs
several approvals records each person's vote, so the key becomes (requirement_id,
decided_by). Runs paused by the previous release keep their rows and continue as before.

Revision ID: 0003_approval_votes
Revises: 0002_run_leases
"""

import sqlalchemy as sa
from alembic import op

from engine.db.schema import UtcDateTime

revision = "0003_approval_votes"
down_revision = "0002_run_leases"
branch_labels = None
depends_on = None

_INDEX = "ux_wf_decisions_requirement_decider"


def _decisions(*, votes_index: bool) -> sa.Table:
    """wf_decisions without 0001's unnamed unique requirement_id (SQLite cannot drop it by
    name: batch mode recreates the table from this), with or without this revision's
    index."""
    extra = (
        [sa.Index(_INDEX, "requirement_id", "decided_by", unique=True)] if votes_index else []
    )
    return sa.Table(
        "wf_decisions",
        sa.MetaData(),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("requirement_id", sa.String(64), nullable=False),
        sa.Column("step_name", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", UtcDateTime(), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("values", sa.Text),
        sa.Index("ix_wf_decisions_run_id", "run_id"),
        *extra,
    )


def _unique_on_requirement(bind: sa.engine.Connection) -> list[str]:
    return [
        str(c["name"])
        for c in sa.inspect(bind).get_unique_constraints("wf_decisions")
        if c["column_names"] == ["requirement_id"] and c.get("name")
    ]


def upgrade() -> None:
    """One decision per person and pause (votes), instead of one per pause."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table(
            "wf_decisions", copy_from=_decisions(votes_index=False), recreate="always"
        ) as batch:
            batch.create_index(_INDEX, ["requirement_id", "decided_by"], unique=True)
        return
    for name in _unique_on_requirement(bind):
        op.drop_constraint(name, "wf_decisions", type_="unique")
    op.create_index(_INDEX, "wf_decisions", ["requirement_id", "decided_by"], unique=True)


def downgrade() -> None:
    """Back to one decision per pause."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table(
            "wf_decisions", copy_from=_decisions(votes_index=True), recreate="always"
        ) as batch:
            batch.drop_index(_INDEX)
            batch.create_unique_constraint("uq_wf_decisions_requirement_id", ["requirement_id"])
        return
    op.drop_index(_INDEX, table_name="wf_decisions")
    op.create_unique_constraint(
        "wf_decisions_requirement_id_key", "wf_decisions", ["requirement_id"]
    )
