"""The run writes (issue 9, hot path): pause/save, claim, finish and lease renewal go through
prepared driver statements on held connections, not SQLAlchemy. They must store exactly what
SQLAlchemy stored, keep SQLite's durability settings, be safe across threads, forks and
dropped connections, and refuse what UtcDateTime refused."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import insert, select

from engine import RunStatus, Step, StepOutput, Workflow, WorkflowRunOutput
from engine.db.base import (
    DECISION_COLUMNS,
    INSERT_COLUMNS,
    SESSION_COLUMNS,
    SET_COLUMNS,
    BaseDb,
)
from engine.db.postgres import PostgresDb
from engine.db.schema import decisions, runs, sessions
from engine.db.sqlite import SqliteDb
from engine.run.requirement import Decision, Outcome
from tests.conftest import PG_ADMIN_DSN

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def gated(db: BaseDb, name: str = "hot") -> Workflow:
    return Workflow(
        name=name,
        db=db,
        steps=[
            Step(name="a", executor=lambda si: StepOutput(content="a")),
            Step(
                name="b",
                executor=lambda si: StepOutput(content=f"b after {si.previous_step_content}"),
                requires_confirmation=True,
            ),
        ],
    )


def cycle(wf: Workflow, by: str = "ann") -> WorkflowRunOutput:
    run = wf.run("x")
    assert run.status is RunStatus.paused
    run.step_requirements[0].confirm(by=by)
    done = wf.continue_run(run)
    assert done.status is RunStatus.completed
    return done


def paused_run(run_id: str, *, at: datetime = T0) -> WorkflowRunOutput:
    wf = Workflow(name="shape", steps=[Step(name="s", executor=lambda si: 1)])
    run = WorkflowRunOutput(
        run_id=run_id,
        session_id=f"session-{run_id}",
        workflow_name=wf.name,
        user_id="U1",
        status=RunStatus.running,
        created_at=at,
        updated_at=at,
    )
    return run


# -- the same rows as SQLAlchemy's ----------------------------------------------------------------
def test_the_run_writes_name_every_column_of_the_schema() -> None:
    assert set(INSERT_COLUMNS) == {c.name for c in runs.columns} - {"id"}
    assert set(SET_COLUMNS) < set(INSERT_COLUMNS)
    assert set(DECISION_COLUMNS) == {c.name for c in decisions.columns} - {"id"}
    assert set(SESSION_COLUMNS) == {c.name for c in sessions.columns}


def _raw_rows(db: BaseDb, table: Any, key: str, values: list[str]) -> list[dict[str, Any]]:
    """The stored values as the driver gives them back (no SQLAlchemy type processing)."""
    columns = [c.name for c in table.columns if c.name not in ("id", key)]
    quoted = ", ".join(f'"{c}"' for c in columns)
    with db.engine.connect() as conn:
        out = []
        for value in values:
            row = conn.exec_driver_sql(
                f'SELECT {quoted} FROM {table.name} WHERE "{key}" = ?'
                if db.engine.dialect.name == "sqlite"
                else f'SELECT {quoted} FROM {table.name} WHERE "{key}" = %(v)s',
                (value,) if db.engine.dialect.name == "sqlite" else {"v": value},
            ).one()
            out.append(dict(zip(columns, row, strict=True)))
    return out


def test_a_run_and_its_decision_are_stored_as_sqlalchemy_stores_them(any_db: BaseDb) -> None:
    """Byte for byte on SQLite (datetimes are text there: the format must match for reads
    and for the deadline comparisons), value for value on PostgreSQL."""
    any_db.ensure_schema()
    paris = timezone(timedelta(hours=1))
    stamp = T0.astimezone(paris)  # not UTC: both paths must store UTC
    lease_until = T0 + timedelta(seconds=30)
    decision_at = T0 + timedelta(seconds=5)

    ours = paused_run("ours", at=stamp)
    theirs = paused_run("theirs", at=stamp)
    for run in (ours, theirs):
        run.session_id = "shared-session" if run is ours else "their-session"

    any_db.save_run(ours)  # the run writes
    values = any_db._run_values(theirs, version=1)
    with any_db.engine.begin() as conn:  # SQLAlchemy, as before the run writes existed
        conn.execute(
            insert(sessions).values(
                session_id=theirs.session_id,
                workflow_name=theirs.workflow_name,
                user_id=theirs.user_id,
                created_at=theirs.created_at,
            )
        )
        conn.execute(
            insert(runs).values(
                run_id=theirs.run_id,
                session_id=theirs.session_id,
                workflow_name=theirs.workflow_name,
                user_id=theirs.user_id,
                created_at=theirs.created_at,
                **values,
            )
        )
    a, b = _raw_rows(any_db, runs, "run_id", ["ours", "theirs"])
    assert a.pop("session_id") == "shared-session" and b.pop("session_id") == "their-session"
    a_data, b_data = a.pop("data"), b.pop("data")
    assert a_data.replace("ours", "theirs").replace("shared-session", "their-session") == b_data
    assert a == b
    if any_db.engine.dialect.name == "sqlite":
        assert a["created_at"] == "2026-03-01 12:00:00.250000"  # UTC, microseconds always

    # A claim writes the decision the way SQLAlchemy did.
    for run_id, via_run_writes in (("ours", True), ("theirs", False)):
        decision = Decision(
            run_id=run_id,
            requirement_id=f"req-{run_id}",
            step_name="s",
            outcome=Outcome.confirmed,
            decided_by="U2",
            decided_at=decision_at.astimezone(paris),
            comment="fine <b>",
            values={"threshold": 0.7},
        )
        if via_run_writes:
            stored = any_db.get_run(run_id)
            assert stored is not None
            stored.status = RunStatus.paused  # as a paused run would be stored
            any_db._update_run(stored)
            any_db.claim_paused_run(
                stored,
                expected_version=stored.version,
                decision=decision,
                lease_owner="host:1:abc",
                lease_expires_at=lease_until,
            )
        else:
            row = any_db._decision_row(decision)
            with any_db.engine.begin() as conn:
                conn.execute(
                    insert(decisions).values(dict(zip(DECISION_COLUMNS, row, strict=True)))
                )
    ours_d, theirs_d = _raw_rows(any_db, decisions, "requirement_id", ["req-ours", "req-theirs"])
    assert ours_d.pop("run_id") == "ours" and theirs_d.pop("run_id") == "theirs"
    assert ours_d == theirs_d
    # And it reads back through SQLAlchemy's types as it was given.
    [read] = any_db.get_decisions("ours")
    assert read.decided_at == decision_at and read.values == {"threshold": 0.7}
    with any_db.engine.connect() as conn:
        lease = conn.execute(
            select(runs.c.lease_owner, runs.c.lease_expires_at).where(runs.c.run_id == "ours")
        ).one()
    assert lease == ("host:1:abc", lease_until)


def test_naive_datetimes_are_refused_and_nothing_is_stored(any_db: BaseDb) -> None:
    run = paused_run("naive")
    run.updated_at = datetime(2026, 3, 1, 12, 0)  # no tzinfo
    with pytest.raises(ValueError, match="naive datetime"):
        any_db.save_run(run)
    assert any_db.get_run("naive") is None
    assert run.version == 0


def test_a_second_run_with_one_run_id_is_refused_and_the_first_kept(any_db: BaseDb) -> None:
    from engine import DuplicateRunError

    first = paused_run("twice")
    any_db.save_run(first)
    second = paused_run("twice")
    second.input = "other"
    with pytest.raises(DuplicateRunError):
        any_db.save_run(second)
    stored = any_db.get_run("twice")
    assert stored is not None and stored.input is None
    # The held connection is fine after the failed transaction.
    cycle(gated(any_db, name="after-duplicate"))


# -- SQLite: the held connection keeps the durability settings ------------------------------------
def _held(db: SqliteDb) -> sqlite3.Connection:
    conn = db._writes._conn  # type: ignore[attr-defined]
    assert isinstance(conn, sqlite3.Connection)
    return conn


def test_the_held_sqlite_connection_is_durable(sqlite_db: SqliteDb) -> None:
    cycle(gated(sqlite_db))
    conn = _held(sqlite_db)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    # It waits for the write lock itself (asking every millisecond), up to the engine's
    # 30 s; SQLite's own busy handler is off on it.
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (0,)
    assert sqlite_db._writes._lock_wait == 30.0  # type: ignore[attr-defined]
    assert not conn.in_transaction


@contextmanager
def write_lock_held_elsewhere(db_file: Path) -> Iterator[sqlite3.Connection]:
    """Another connection (as another process would) holding the file's write lock."""
    other = sqlite3.connect(db_file, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def test_a_write_waits_for_another_writer_then_commits(sqlite_db: SqliteDb, db_file: Path) -> None:
    sqlite_db.ensure_schema()
    errors: list[BaseException] = []

    def save() -> None:
        try:
            sqlite_db.save_run(paused_run("waited"))
        except BaseException as exc:
            errors.append(exc)

    with write_lock_held_elsewhere(db_file) as other:
        saver = threading.Thread(target=save)
        saver.start()
        saver.join(0.3)  # long enough to have failed, were it not waiting
        assert saver.is_alive(), errors
        assert other.execute("SELECT count(*) FROM wf_runs").fetchone() == (0,)
        other.execute("COMMIT")
        saver.join()
    assert errors == []
    assert sqlite_db.get_run("waited") is not None


def test_a_busy_timeout_fails_cleanly_and_the_next_write_works(db_file: Path) -> None:
    db = SqliteDb(db_file=db_file, busy_timeout_ms=50)
    try:
        db.ensure_schema()
        with (
            write_lock_held_elsewhere(db_file),
            pytest.raises(sqlite3.OperationalError, match="locked"),
        ):
            db.save_run(paused_run("blocked"))
        assert db.get_run("blocked") is None
        assert not _held(db).in_transaction
        cycle(gated(db))
    finally:
        db.dispose()


def test_the_in_memory_database_shares_its_one_connection(tmp_path: Path) -> None:
    db = SqliteDb()
    try:
        wf = gated(db)
        done = cycle(wf)
        # The run writes and SQLAlchemy's reads see one database.
        assert db.get_run(done.run_id) is not None
        assert _held(db) is db.engine.raw_connection().driver_connection
        threaded_cycles(db, threads=4, cycles=10)
    finally:
        db.dispose()


# -- threads, forks, dropped connections -----------------------------------------------------
def threaded_cycles(db: BaseDb, *, threads: int, cycles: int) -> None:
    """Cycles from many threads at once (as the bot's workers and HTTP threads call the
    engine), with readers in between: all complete, each decision stored once."""
    wf = gated(db, name=f"threads-{threads}")
    errors: list[BaseException] = []
    done: list[str] = []
    barrier = threading.Barrier(threads)

    def worker(n: int) -> None:
        barrier.wait()
        try:
            for _ in range(cycles):
                run = cycle(wf, by=f"U{n}")
                done.append(run.run_id)
                assert db.get_run(run.run_id) is not None
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    assert len(set(done)) == threads * cycles
    for run_id in done:
        [decision] = db.get_decisions(run_id)
        stored = db.get_run(run_id)
        assert stored is not None and stored.status is RunStatus.completed and stored.version == 3
        assert decision.outcome is Outcome.confirmed


def test_many_threads_write_through_one_db(any_db: BaseDb) -> None:
    threaded_cycles(any_db, threads=8, cycles=15)


def test_many_threads_racing_on_one_pause_claim_it_once(any_db: BaseDb) -> None:
    from engine import RunNotPausedError

    wf = gated(any_db, name="claim-race")

    def race(run: WorkflowRunOutput, racers: int) -> list[Any]:
        barrier = threading.Barrier(racers)
        results: list[Any] = []

        def claim() -> None:
            barrier.wait()
            try:
                results.append(wf.continue_run(run))
            except RunNotPausedError as exc:
                results.append(exc)

        threads = [threading.Thread(target=claim) for _ in range(racers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    for _ in range(5):
        run = wf.run("x")
        run.step_requirements[0].confirm(by="ann")
        results = race(run, 6)
        won = [r for r in results if isinstance(r, WorkflowRunOutput)]
        assert len(won) == 1 and len(results) == 6, results
        assert len(any_db.get_decisions(run.run_id)) == 1


def _child_cycles(db: BaseDb, out: Any) -> None:
    try:
        run = cycle(gated(db, name="forked"))
        out.put(("ok", run.run_id))
    except BaseException as exc:
        out.put(("error", repr(exc)))


def test_a_forked_child_opens_its_own_connections(any_db: BaseDb) -> None:
    wf = gated(any_db, name="forked")
    before = cycle(wf)  # the parent holds its connection(s) now
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_cycles, args=(any_db, out))
    child.start()
    status, child_run = out.get(timeout=60)
    child.join(60)
    assert (status, child.exitcode) == ("ok", 0), child_run
    after = cycle(wf)  # the parent's connections were left alone
    for run_id in (before.run_id, child_run, after.run_id):
        stored = any_db.get_run(run_id)
        assert stored is not None and stored.status is RunStatus.completed
        assert len(any_db.get_decisions(run_id)) == 1


def test_dispose_closes_the_held_connections_and_the_next_write_reopens(any_db: BaseDb) -> None:
    wf = gated(any_db, name="reopen")
    cycle(wf)
    any_db.dispose()
    cycle(wf)


def test_many_leases_renew_in_one_statement(any_db: BaseDb, tmp_path: Path) -> None:
    any_db.ensure_schema()
    ids = [f"lease-{tmp_path.name}-{i}" for i in range(600)]
    for run_id in ids:
        run = paused_run(run_id)
        any_db.save_run(run)  # running, version 1, no lease
    with any_db.engine.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.run_id.in_(ids))
            .values(lease_owner="me", lease_expires_at=T0)
        )
    seen: list[tuple[str, int]] = []
    any_db.add_statement_listener(lambda sql, n: seen.append((sql, n)))
    until = T0 + timedelta(minutes=1)
    assert any_db.renew_leases("me", ids, until=until) == 600
    assert any_db.renew_leases("someone-else", ids, until=until + timedelta(hours=1)) == 0
    assert [n for _, n in seen] == [600, 0]
    with any_db.engine.connect() as conn:
        stamps = set(
            conn.execute(select(runs.c.lease_expires_at).where(runs.c.run_id.in_(ids))).scalars()
        )
    assert stamps == {until}


# -- PostgreSQL: prepared on the server, dead connections found before a write --------------
def _pg_idle(db: PostgresDb) -> list[psycopg.Connection[Any]]:
    return list(db._writes._idle)  # type: ignore[attr-defined]


def test_postgres_writes_are_prepared_on_the_server(pg_db: PostgresDb) -> None:
    wf = gated(pg_db)
    for _ in range(3):
        cycle(wf)
    [held] = _pg_idle(pg_db)  # one thread: one connection, reused
    prepared = held.execute("SELECT statement FROM pg_prepared_statements").fetchall()
    statements = " ".join(s for (s,) in prepared)
    assert "INSERT INTO wf_runs" in statements
    assert "WITH claimed AS (UPDATE wf_runs" in statements
    assert held.autocommit


def _terminate_other_backends(dbname: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        # Termination is asynchronous: wait until those backends are gone.
        deadline = time.monotonic() + 10
        while admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "backends still alive after 10 s"
            time.sleep(0.01)


def test_a_connection_the_server_dropped_is_replaced_before_the_next_write(
    pg_database_factory: Callable[[], str],
) -> None:
    url = pg_database_factory()
    db = PostgresDb(db_url=url, pool_size=2)
    try:
        wf = gated(db)
        cycle(wf)
        [held] = _pg_idle(db)
        _terminate_other_backends(url.rsplit("/", 1)[1])
        cycle(wf)  # no error: the dead connection was seen and replaced
        assert held.closed
        assert [c for c in _pg_idle(db) if c is held] == []
    finally:
        db.dispose()


def test_a_run_write_waits_for_a_write_lock_held_elsewhere_then_goes_through(
    tmp_path: Path,
) -> None:
    # Another process holds the write lock for a moment: the run's write waits for it (the
    # held connection asks again every millisecond) and then goes through.
    db = SqliteDb(db_file=tmp_path / "wf.db")
    wf = Workflow(
        name="w",
        db=db,
        steps=[Step(name="gate", executor=lambda si: "ok", requires_confirmation=True)],
    )
    run = wf.run("x")
    other = sqlite3.connect(tmp_path / "wf.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.2, other.rollback)
    timer.start()
    try:
        run.step_requirements[0].confirm(by="alice")
        assert wf.continue_run(run).status is RunStatus.completed
    finally:
        timer.join()
        other.close()
        db.dispose()
