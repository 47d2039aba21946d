"""SQLite storage: one file, WAL mode, full durability (a confirmed decision survives a crash)."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import StaticPool

from engine.db.base import BaseDb


def _enable_wal(cursor: Any, timeout_s: float) -> None:
    """Put the file in WAL mode. SQLite answers "database is locked" at once, without
    waiting the busy timeout, when another process is switching the same new file at that
    moment; so wait here instead of failing that process's first use."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.005)


class SqliteDb(BaseDb):
    """``SqliteDb(db_file="workflow.db")``; with neither argument, a private in-memory database."""

    def __init__(
        self,
        db_file: str | os.PathLike[str] | None = None,
        *,
        db_url: str | None = None,
        busy_timeout_ms: int = 30_000,
    ) -> None:
        if db_file is not None and db_url is not None:
            raise ValueError("give db_file or db_url, not both")
        self.db_file = os.fspath(db_file) if db_file is not None else None
        if db_url is None:
            db_url = f"sqlite:///{self.db_file}" if self.db_file else "sqlite://"
        in_memory = db_url in ("sqlite://", "sqlite:///:memory:")
        if self.db_file:
            parent = os.path.dirname(os.path.abspath(self.db_file))
            os.makedirs(parent, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if in_memory:
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        engine = create_engine(db_url, **kwargs)
        self.db_url = db_url

        @event.listens_for(engine, "connect")
        def _configure(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            if not in_memory:
                _enable_wal(cursor, busy_timeout_ms / 1000)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front where a transaction reads before it
            # writes; otherwise a plain BEGIN keeps readers from blocking writers.
            mode = conn.get_execution_options().get("sqlite_begin", "")
            # Straight to the driver: exec_driver_sql's bookkeeping costs more than BEGIN.
            conn.connection.driver_connection.execute(f"BEGIN {mode}".strip())  # type: ignore[union-attr]

        super().__init__(engine, single_connection=in_memory)

    @contextmanager
    def _schema_transaction(self) -> Iterator[Connection]:
        with (
            self._serialized(),
            self.engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn,
        ):
            yield conn

    def _insert_ignore(self, table: Any) -> Any:
        return sqlite_insert(table).on_conflict_do_nothing()

    def __repr__(self) -> str:
        return f"SqliteDb(db_file={self.db_file!r})"
