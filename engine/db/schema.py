"""Tables. Changing them means a new Alembic revision in ``migrations/versions``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

# Bump together with a new migration; a fresh database is stamped with it.
SCHEMA_REVISION = "0005_paused_requirements"

metadata = MetaData()


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is refused (one rule for every write path)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given; the engine stores UTC only")
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC; gives back timezone-aware UTC datetimes on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """To the database: UTC, naive on SQLite (which has no time zones); a naive value raises."""
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """From the database: always timezone-aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_Id = BigInteger().with_variant(Integer(), "sqlite")

sessions = Table(
    "wf_sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("workflow_name", String(200)),
    Column("user_id", String(200)),
    Column("created_at", UtcDateTime(), nullable=False),
)

# One row per run: the cost of writing a run never grows with the session's history.
runs = Table(
    "wf_runs",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, unique=True),
    Column("session_id", String(64), nullable=False, index=True),
    Column("workflow_name", String(200), index=True),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("user_id", String(200)),
    Column("paused_step_name", String(200)),
    # The pause a paused run waits at (its first step requirement): lets a poll tell which
    # pauses exist without reading any run's data.
    Column("paused_requirement_id", String(64)),
    Column("paused_at", UtcDateTime()),
    Column("expires_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("data", Text, nullable=False),
    # A running run is leased by the process running it; an expired lease means that
    # process died (see Workflow.recover_interrupted_runs).
    Column("lease_owner", String(100)),
    Column("lease_expires_at", UtcDateTime()),
    Index("ix_wf_runs_status_expires_at", "status", "expires_at"),
    Index("ix_wf_runs_status_lease_expires_at", "status", "lease_expires_at"),
    Index("ix_wf_runs_user_id_id", "user_id", "id"),
    Index("ix_wf_runs_status_updated_at", "status", "updated_at"),
)

# The audit trail: every resolved pause, who, when, what, values, comment; a pause that
# needs several people has one row per person (their votes, then the one that resolved it).
decisions = Table(
    "wf_decisions",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("requirement_id", String(64), nullable=False),
    Column("step_name", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("decided_by", String(200)),
    Column("decided_at", UtcDateTime(), nullable=False),
    Column("comment", Text),
    Column("values", Text),
    Index("ux_wf_decisions_requirement_decider", "requirement_id", "decided_by", unique=True),
)
