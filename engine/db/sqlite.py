"""SQLite storage: one file, WAL mode, full durability (a confirmed decision survives a crash)."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

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

log = logging.getLogger("engine.db")


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


def _text(value: datetime | None) -> str | None:
    """A datetime as SQLAlchemy's DateTime stores it on SQLite (UtcDateTime: naive UTC,
    ``YYYY-MM-DD HH:MM:SS.ffffff``), so that both paths read, write and compare alike."""
    if value is None:
        return None
    return as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def _state_params(state: RunState) -> tuple[Any, ...]:
    status, version, step, pause, paused_at, expires_at, updated_at, data, owner, lease = state
    return (
        status,
        version,
        step,
        pause,
        _text(paused_at),
        _text(expires_at),
        _text(updated_at),
        data,
        owner,
        _text(lease),
    )


_INSERT_SESSION = (
    f"INSERT INTO {sessions.name} ({column_list(SESSION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(SESSION_COLUMNS))}) ON CONFLICT DO NOTHING"
)
_INSERT_RUN = (
    f"INSERT INTO {runs.name} ({column_list(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(INSERT_COLUMNS))})"
)
_UPDATE_RUN = (
    f'UPDATE {runs.name} SET {assignments(SET_COLUMNS, "?")} WHERE "run_id" = ? AND "version" = ?'
)
_CLAIM_RUN = (
    f"UPDATE {runs.name} SET {assignments(SET_COLUMNS, '?')} "
    f'WHERE "run_id" = ? AND "status" = \'{RunStatus.paused.value}\' AND "version" = ?'
)
_INSERT_DECISION = (
    f"INSERT INTO {decisions.name} ({column_list(DECISION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(DECISION_COLUMNS))})"
)


def _renew_leases_sql(count: int) -> str:
    # One text per list length: the sqlite3 module keeps each prepared in its cache.
    return (
        f'UPDATE {runs.name} SET "lease_expires_at" = ? '
        f'WHERE "run_id" IN ({", ".join("?" * count)}) AND "lease_owner" = ? '
        f"AND \"status\" = '{RunStatus.running.value}'"
    )


LOCK_RETRY = 0.001  # seconds between asks for the write lock


def _begin_immediate(conn: sqlite3.Connection, wait: float) -> None:
    """``BEGIN IMMEDIATE`` (the write lock up front), asked again every millisecond for up
    to ``wait`` seconds while another connection holds it. SQLite's own busy handler sleeps
    longer and longer between tries (up to 100 ms), so with several writers in a process a
    waiter keeps losing the lock to writers that came after it."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
        time.sleep(LOCK_RETRY)


class WriteTurns:
    """This process's writers to one SQLite file take turns: one at a time, handed over at
    once (SQLite's busy handler would sleep), and an urgent writer — someone waits on it,
    e.g. an HTTP request — goes before every ordinary one waiting. Reentrant: a thread
    holding its turn may take it again. Also a context manager (an ordinary turn)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._urgent_waiting = 0

    def acquire(self, *, urgent: bool = False, timeout: float | None = None) -> bool:
        """Take the turn; False if ``timeout`` seconds passed first."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            deadline = None if timeout is None else time.monotonic() + timeout
            if urgent:
                self._urgent_waiting += 1
            try:
                while self._owner is not None or (not urgent and self._urgent_waiting):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
            finally:
                if urgent:
                    self._urgent_waiting -= 1
                    if self._owner != me:
                        self._cond.notify_all()  # gave up: ordinary writers may go
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        """Give the turn back (the next urgent writer waiting, if any, takes it first)."""
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a write turn this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    def __enter__(self) -> WriteTurns:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _locked(exc: sqlite3.OperationalError) -> OperationalError:
    """The driver's "database is locked" as SQLAlchemy raises every other driver error."""
    return OperationalError("BEGIN IMMEDIATE", None, exc)


class _SqliteRunWrites(RunWrites):
    """The run writes on one held sqlite3 connection, taken in turns by this process's
    threads (SQLite lets one writer at a time anyway; a Python lock hands it over at once,
    where SQLite's busy handler would sleep). Other processes wait their turn through the
    busy timeout. The sqlite3 module prepares each statement once per connection."""

    integrity_error = sqlite3.IntegrityError
    unavailable_error = sqlite3.OperationalError

    def __init__(
        self,
        open_connection: Callable[[], sqlite3.Connection],
        *,
        turns: AbstractContextManager[Any],
        owns_connection: bool,
    ) -> None:
        super().__init__()
        self._open_connection = open_connection
        self._turns = turns
        self._owns_connection = owns_connection
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock_wait = 0.0

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._turns:
            conn = self._conn
            if conn is None or self._pid != os.getpid():
                # A connection inherited through fork() belongs to the parent: open our own.
                conn = self._conn = self._open_connection()
                self._pid = os.getpid()
                self._lock_wait = conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
                conn.execute("PRAGMA busy_timeout=0")
            _begin_immediate(conn, self._lock_wait)
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.warning("rollback failed; reopening the connection", exc_info=True)
                        self._discard()
                raise

    def _execute(self, conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
        rowcount = conn.execute(sql, params).rowcount
        if self._listeners:
            self._executed(sql, rowcount)
        return rowcount

    def insert_run(self, session: tuple[Any, ...], run: tuple[Any, ...]) -> None:
        session_id, workflow_name, user_id, created_at = session
        session_params = (session_id, workflow_name, user_id, _text(created_at))
        run_params = (*run[:4], _text(run[4]), *_state_params(run[5:]))
        with self._transaction() as conn:
            self._execute(conn, _INSERT_SESSION, session_params)
            self._execute(conn, _INSERT_RUN, run_params)

    def update_run(self, run_id: str, version: int, state: RunState) -> bool:
        params = (*_state_params(state), run_id, version)
        with self._transaction() as conn:
            return self._execute(conn, _UPDATE_RUN, params) == 1

    def claim_run(self, run_id: str, version: int, state: RunState, decision: DecisionRow) -> bool:
        params = (*_state_params(state), run_id, version)
        decision_params = (*decision[:5], _text(decision[5]), *decision[6:])
        with self._transaction() as conn:
            if self._execute(conn, _CLAIM_RUN, params) != 1:
                return False
            self._execute(conn, _INSERT_DECISION, decision_params)
            return True

    def renew_leases(self, owner: str, run_ids: list[str], until: datetime) -> int:
        params = (_text(until), *run_ids, owner)
        with self._transaction() as conn:
            return self._execute(conn, _renew_leases_sql(len(run_ids)), params)

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._owns_connection:
            conn.close()

    def close(self) -> None:
        with self._turns:
            if self._pid == os.getpid():
                self._discard()
            self._conn = None


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
            options = conn.get_execution_options()
            mode = options.get("sqlite_begin", "")
            # Straight to the driver: exec_driver_sql's bookkeeping costs more than BEGIN.
            driver: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
            wait = options.get("sqlite_lock_wait")
            if mode != "IMMEDIATE" or wait is None:
                driver.execute(f"BEGIN {mode}".strip())
                return
            driver.execute("PRAGMA busy_timeout=0")
            try:
                _begin_immediate(driver, wait)
            finally:
                driver.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")

        self._lock_wait = busy_timeout_ms / 1000
        # This process's writers take turns on one lock, the run writes included (in
        # memory, every user of the one shared connection does): a turn is handed over at
        # once, where SQLite's busy handler would sleep. Other processes wait their turn
        # through the write lock itself.
        self._write_turn = WriteTurns()
        shared_turns = self._write_turn if in_memory else None
        writes = _SqliteRunWrites(
            lambda: _held_connection(engine, detach=not in_memory),
            turns=self._write_turn,
            owns_connection=not in_memory,
        )
        super().__init__(engine, run_writes=writes, turns=shared_turns)

    @contextmanager
    def _write(self, lock_timeout: float | None, *, urgent: bool = False) -> Iterator[Connection]:
        wait = self._lock_wait if lock_timeout is None else max(0.0, lock_timeout)
        deadline = time.monotonic() + wait
        if not self._write_turn.acquire(urgent=urgent, timeout=wait):
            raise _locked(sqlite3.OperationalError("database is locked (by this process)"))
        try:
            with self.engine.connect() as conn:
                conn.execution_options(
                    sqlite_begin="IMMEDIATE",
                    sqlite_lock_wait=max(0.0, deadline - time.monotonic()),
                )
                try:
                    transaction = conn.begin()
                except sqlite3.OperationalError as exc:
                    # Raised by the begin listener, so not wrapped by SQLAlchemy.
                    raise _locked(exc) from exc
                with transaction:
                    yield conn
        finally:
            self._write_turn.release()

    def _schema_transaction(self) -> AbstractContextManager[Connection]:
        return self._write(None)

    def __repr__(self) -> str:
        return f"SqliteDb(db_file={self.db_file!r})"


def _held_connection(engine: Engine, *, detach: bool) -> sqlite3.Connection:
    """A sqlite3 connection made by ``engine`` (so configured by its connect event: busy
    timeout, WAL, synchronous=FULL), taken out of its pool to be held."""
    proxy = engine.raw_connection()
    conn = proxy.driver_connection
    if detach:
        proxy.detach()
    else:
        proxy.close()  # the StaticPool's one connection: it stays open, shared
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"expected a sqlite3 connection, got {type(conn).__name__}")
    return conn
