"""PostgreSQL storage (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine
from sqlalchemy.dialects.postgresql import insert as pg_insert

from engine.db.base import BaseDb

# Any constant shared by every Signoff process: serializes first-use schema creation.
_SCHEMA_LOCK_KEY = 0x5160FF


def normalize_postgres_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class PostgresDb(BaseDb):
    """``PostgresDb(db_url="postgresql://user@host:5432/db")``."""

    def __init__(self, db_url: str, *, pool_size: int = 10, **engine_kwargs: Any) -> None:
        self.db_url = normalize_postgres_url(db_url)
        engine = create_engine(
            self.db_url, pool_size=pool_size, pool_pre_ping=True, **engine_kwargs
        )
        super().__init__(engine)

    @contextmanager
    def _schema_transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
            yield conn

    def _insert_ignore(self, table: Any) -> Any:
        return pg_insert(table).on_conflict_do_nothing()

    def __repr__(self) -> str:
        return f"PostgresDb(db_url={self.engine.url.render_as_string(hide_password=True)!r})"
