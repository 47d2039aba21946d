"""Storage of runs, sessions and decisions on SQLAlchemy 2 (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.db.base import BaseDb


def db_from_url(url: str, **kwargs: Any) -> BaseDb:
    """``sqlite:///path.db`` or a path → SqliteDb; ``postgresql://...`` → PostgresDb."""
    if url.startswith(("postgresql", "postgres:")):
        from engine.db.postgres import PostgresDb

        return PostgresDb(db_url=url, **kwargs)
    from engine.db.sqlite import SqliteDb

    if url.startswith("sqlite"):
        return SqliteDb(db_url=url, **kwargs)
    return SqliteDb(db_file=url, **kwargs)
