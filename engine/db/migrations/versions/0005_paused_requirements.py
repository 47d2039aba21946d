"""What a poll needs of the paused runs without reading their data: the pause each waits at
(``paused_requirement_id``), and an index by when each was last written.

Runs paused before this revision get the column from their stored data here. A run
written by a process still on the previous release has it NULL until its next write;
readers fall back to the run's data for those.

Revision ID: 0005_paused_requirements
Revises: 0004_runs_by_user
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005_paused_requirements"
down_revision = "0004_runs_by_user"
branch_labels = None
depends_on = None

_INDEX = "ix_wf_runs_status_updated_at"
_PAGE = 1000


def upgrade() -> None:
    """Add and fill ``wf_runs.paused_requirement_id``; index (status, updated_at)."""
    op.add_column("wf_runs", sa.Column("paused_requirement_id", sa.String(64)))
    op.create_index(_INDEX, "wf_runs", ["status", "updated_at"])
    runs = sa.table(
        "wf_runs",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("data", sa.Text),
        sa.column("paused_requirement_id", sa.String),
    )
    bind = op.get_bind()
    last = 0
    while True:  # a page at a time: memory stays bounded however many runs wait
        rows = bind.execute(
            sa.select(runs.c.id, runs.c.data)
            .where(runs.c.status == "paused", runs.c.id > last)
            .order_by(runs.c.id)
            .limit(_PAGE)
        ).all()
        for row in rows:
            requirements = json.loads(row.data).get("step_requirements") or []
            requirement_id = (
                requirements[0].get("requirement_id") or requirements[0].get("step_id")
                if requirements
                else None
            )
            if requirement_id:
                bind.execute(
                    runs.update()
                    .where(runs.c.id == row.id)
                    .values(paused_requirement_id=requirement_id)
                )
        if len(rows) < _PAGE:
            break
        last = rows[-1].id


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index(_INDEX, table_name="wf_runs")
    with op.batch_alter_table("wf_runs") as batch:
        batch.drop_column("paused_requirement_id")
