"""PostgreSQL storage (psycopg 3)."""

from __future__ import annotations

import os
import select
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, create_engine

from engine.db.base import (
    DECISION_COLUMNS,
    INSERT_COLUMNS,
    SESSION_COLUMNS,
    SET_COLUMNS,
    BaseDb,
    DecisionRow,
    RunState,
    RunWrites,
    assignments,
    column_list,
)
from engine.db.schema import as_utc, decisions, runs, sessions
from engine.run.base import RunStatus

# Any constant shared by every Signoff process: serializes first-use schema creation.
_SCHEMA_LOCK_KEY = 0x5160FF


def normalize_postgres_url(url: str) -> str:
    """Rewrite ``postgres://`` and ``postgresql://`` URLs to use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _state_params(state: RunState) -> tuple[Any, ...]:
    status, version, step, pause, paused_at, expires_at, updated_at, data, owner, lease = state
    return (
        status,
        version,
        step,
        pause,
        _utc(paused_at),
        _utc(expires_at),
        _utc(updated_at),
        data,
        owner,
        _utc(lease),
    )


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


# Each write is one statement, so one round trip and one commit in autocommit mode:
# data-modifying CTEs put the session with its run, and the decision with its claim, in
# the statement (so the transaction) that needs them.
_INSERT_RUN = (
    f"WITH new_session AS (INSERT INTO {sessions.name} ({column_list(SESSION_COLUMNS)}) "
    f"VALUES ({_marks(len(SESSION_COLUMNS))}) ON CONFLICT DO NOTHING) "
    f"INSERT INTO {runs.name} ({column_list(INSERT_COLUMNS)}) "
    f"VALUES ({_marks(len(INSERT_COLUMNS))})"
)
_UPDATE_RUN = (
    f"UPDATE {runs.name} SET {assignments(SET_COLUMNS, '%s')} "
    'WHERE "run_id" = %s AND "version" = %s'
)
# The decision row is inserted only if the compare-and-set matched: rowcount 1 = claimed.
_CLAIM_RUN = (
    f"WITH claimed AS (UPDATE {runs.name} SET {assignments(SET_COLUMNS, '%s')} "
    f'WHERE "run_id" = %s AND "status" = \'{RunStatus.paused.value}\' AND "version" = %s '
    f"RETURNING 1) "
    f"INSERT INTO {decisions.name} ({column_list(DECISION_COLUMNS)}) "
    f"SELECT {_marks(len(DECISION_COLUMNS))} FROM claimed"
)
_RENEW_LEASES = (
    f'UPDATE {runs.name} SET "lease_expires_at" = %s '
    f'WHERE "run_id" = ANY(%s) AND "lease_owner" = %s '
    f"AND \"status\" = '{RunStatus.running.value}'"
)


def _looks_alive(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection can take a statement. A server that shut down or
    restarted has sent a goodbye or closed the socket, which is then readable: found
    without a round trip (a ping per write would cost as much as the write), and before
    sending a write whose fate would otherwise be unknown."""
    if conn.closed or conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
        return False
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return not readable


class _PostgresRunWrites(RunWrites):
    """The run writes on held psycopg connections, one per concurrent writer, each write a
    server-side prepared statement in autocommit mode. A thread takes an idle connection
    or opens one; nobody waits for a connection another thread holds."""

    integrity_error = psycopg.IntegrityError
    unavailable_error = psycopg.OperationalError

    def __init__(
        self, open_connection: Callable[[], psycopg.Connection[Any]], *, max_idle: int
    ) -> None:
        super().__init__()
        self._open_connection = open_connection
        self._max_idle = max_idle
        self._idle: deque[psycopg.Connection[Any]] = deque()
        self._lock = threading.Lock()  # guards the swap of _idle after a fork
        self._pid = os.getpid()

    def _idle_connections(self) -> deque[psycopg.Connection[Any]]:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    # Connections inherited through fork() share their sockets with the
                    # parent: leave them to it, unclosed.
                    self._idle = deque()
                    self._pid = os.getpid()
        return self._idle

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        idle = self._idle_connections()
        while True:
            try:
                conn = idle.pop()  # deque.pop/append are atomic: no lock needed
            except IndexError:
                conn = self._open_connection()
                break
            if _looks_alive(conn):
                break
            conn.close()
        try:
            yield conn
        finally:
            if (
                conn.broken
                or conn.info.transaction_status != TransactionStatus.IDLE
                or len(idle) >= self._max_idle
                or idle is not self._idle
            ):
                conn.close()
            else:
                idle.append(conn)

    def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._connection() as conn:
            rowcount = conn.execute(sql, params, prepare=True).rowcount
        if self._listeners:
            self._executed(sql, rowcount)
        return rowcount

    def insert_run(self, session: tuple[Any, ...], run: tuple[Any, ...]) -> None:
        session_id, workflow_name, user_id, created_at = session
        self._execute(
            _INSERT_RUN,
            (
                session_id,
                workflow_name,
                user_id,
                as_utc(created_at),
                *run[:4],
                as_utc(run[4]),
                *_state_params(run[5:]),
            ),
        )

    def update_run(self, run_id: str, version: int, state: RunState) -> bool:
        return self._execute(_UPDATE_RUN, (*_state_params(state), run_id, version)) == 1

    def claim_run(self, run_id: str, version: int, state: RunState, decision: DecisionRow) -> bool:
        params = (
            *_state_params(state),
            run_id,
            version,
            *decision[:5],
            as_utc(decision[5]),
            *decision[6:],
        )
        return self._execute(_CLAIM_RUN, params) == 1

    def renew_leases(self, owner: str, run_ids: list[str], until: datetime) -> int:
        return self._execute(_RENEW_LEASES, (as_utc(until), list(run_ids), owner))

    def close(self) -> None:
        idle = self._idle_connections()
        while idle:
            idle.pop().close()


def _held_connection(engine: Engine) -> psycopg.Connection[Any]:
    """A psycopg connection made by ``engine`` (its URL and connect arguments), taken out of
    its pool to be held, in autocommit mode: each write is its own transaction."""
    proxy = engine.raw_connection()
    conn = proxy.driver_connection
    proxy.detach()
    if not isinstance(conn, psycopg.Connection):
        raise TypeError(f"expected a psycopg connection, got {type(conn).__name__}")
    if conn.info.transaction_status != TransactionStatus.IDLE:
        conn.rollback()
    conn.autocommit = True
    return conn


class PostgresDb(BaseDb):
    """``PostgresDb(db_url="postgresql://user@host:5432/db")``."""

    def __init__(self, db_url: str, *, pool_size: int = 10, **engine_kwargs: Any) -> None:
        self.db_url = normalize_postgres_url(db_url)
        engine = create_engine(
            self.db_url, pool_size=pool_size, pool_pre_ping=True, **engine_kwargs
        )
        writes = _PostgresRunWrites(lambda: _held_connection(engine), max_idle=pool_size)
        super().__init__(engine, run_writes=writes)

    @contextmanager
    def _write(self, lock_timeout: float | None, *, urgent: bool = False) -> Iterator[Connection]:
        del urgent  # rows are locked one by one: no turns to jump
        with self.engine.begin() as conn:
            if lock_timeout is not None:
                ms = max(1, int(lock_timeout * 1000))
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
            yield conn

    @contextmanager
    def _schema_transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
            yield conn

    def __repr__(self) -> str:
        return f"PostgresDb(db_url={self.engine.url.render_as_string(hide_password=True)!r})"
