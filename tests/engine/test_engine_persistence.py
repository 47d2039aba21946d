"""Persistence (issue 2, item 12): SQLite in WAL with full durability, PostgreSQL, schema
created on first use and versioned with Alembic, one row per run."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, inspect, text

from engine import (
    RunNotPausedError,
    RunStatus,
    Step,
    Workflow,
    WorkflowRunOutput,
    db_from_url,
)
from engine.db.base import BaseDb
from engine.db.migrations import upgrade
from engine.db.postgres import PostgresDb
from engine.db.schema import SCHEMA_REVISION, metadata
from engine.db.sqlite import SqliteDb
from tests.engine.conftest import Race
from tests.engine.engine_flows import (
    Recorder,
    SideEffects,
    approval_workflow,
    child_command,
    child_env,
)

TABLES = {"wf_sessions", "wf_runs", "wf_decisions", "alembic_version"}


def test_sqlite_uses_wal_and_full_synchronous(sqlite_db: SqliteDb, db_file: Path) -> None:
    sqlite_db.ensure_schema()
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    raw = sqlite3.connect(db_file)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


def test_sqlite_creates_its_directory_and_accepts_a_url(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b" / "runs.db"
    db = SqliteDb(db_file=nested)
    db.ensure_schema()
    assert nested.exists()
    via_url = db_from_url(f"sqlite:///{nested}")
    assert isinstance(via_url, SqliteDb)
    assert inspect(via_url.engine).has_table("wf_runs")
    assert isinstance(db_from_url(str(tmp_path / "plain.db")), SqliteDb)


def test_schema_is_created_on_first_use_and_stamped(db_file: Path) -> None:
    db = SqliteDb(db_file=db_file)
    assert not db_file.exists() or not inspect(db.engine).get_table_names()
    assert db.get_run("nothing-yet") is None  # first use
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            SCHEMA_REVISION
        ]
    # Alembic agrees it is at head.
    from alembic.script import ScriptDirectory

    from engine.db.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config(db.engine))  # type: ignore[arg-type]
    assert script.get_current_head() == SCHEMA_REVISION
    # A second object on the same file neither recreates nor restamps.
    again = SqliteDb(db_file=db_file)
    again.ensure_schema()
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_the_deadline_index_exists(sqlite_db: SqliteDb) -> None:
    sqlite_db.ensure_schema()
    indexes = {
        i["name"]: i["column_names"] for i in inspect(sqlite_db.engine).get_indexes("wf_runs")
    }
    assert indexes["ix_wf_runs_status_expires_at"] == ["status", "expires_at"]


def schema_diffs(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def test_the_migration_builds_the_metadata_schema_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    upgrade(engine)
    assert schema_diffs(engine) == []
    # The engine then uses the migrated database as is.
    db = SqliteDb(db_file=tmp_path / "migrated.db")
    db.ensure_schema()
    with db.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            == SCHEMA_REVISION
        )
    engine.dispose()


def test_first_use_and_migration_give_the_same_schema(tmp_path: Path) -> None:
    created = SqliteDb(db_file=tmp_path / "created.db")
    created.ensure_schema()
    assert schema_diffs(created.engine) == []
    created.upgrade()  # stamped at head: nothing to do, nothing breaks
    assert schema_diffs(created.engine) == []


def test_the_migration_builds_the_metadata_schema_on_postgres(
    pg_database_factory: Callable[[], str],
) -> None:
    db = PostgresDb(db_url=pg_database_factory(), pool_size=2)
    try:
        db.upgrade()
        assert set(inspect(db.engine).get_table_names()) >= TABLES
        assert schema_diffs(db.engine) == []
        db.ensure_schema()
        assert db.get_run("none") is None
    finally:
        db.dispose()


def test_postgres_creates_its_schema_on_first_use(pg_database_factory: Callable[[], str]) -> None:
    db = PostgresDb(db_url=pg_database_factory(), pool_size=2)
    try:
        wf = approval_workflow(str(db.engine.url.render_as_string(hide_password=False)), Recorder())
        run = wf.run("x")
        assert set(inspect(db.engine).get_table_names()) >= TABLES
        assert schema_diffs(db.engine) == []
        with db.engine.connect() as conn:
            assert (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                == SCHEMA_REVISION
            )
        loaded = db.get_run(run.run_id)
        assert loaded is not None and loaded.status is RunStatus.paused
        assert loaded.step_requirements[0].paused_at == run.step_requirements[0].paused_at
        wf.db.dispose()
    finally:
        db.dispose()


def test_a_full_cycle_round_trips_on_each_backend(any_db: BaseDb) -> None:
    rec = Recorder()
    wf = Workflow(
        name="round-trip",
        db=any_db,
        steps=[
            Step(name="a", executor=lambda si: {"nested": [1, 2.5, "x"], "flag": True}),
            Step(name="b", executor=lambda si: si.previous_step_content, requires_user_input=True),
        ],
    )
    run = wf.run({"in": 1}, user_id="u", additional_data={"k": "v"})
    run.step_requirements[0].set_user_input(note="hi", by="ann")
    out = wf.continue_run(run)
    rec.record("done")
    stored = any_db.get_run(out.run_id)
    assert stored is not None
    assert stored.to_dict() == out.to_dict()
    assert stored.input == {"in": 1} and stored.user_id == "u"
    assert stored.additional_data == {"k": "v"}
    assert stored.content == {"nested": [1, 2.5, "x"], "flag": True}
    assert stored.created_at.tzinfo is not None
    session = any_db.get_session(out.session_id)
    assert session is not None and session.workflow_name == "round-trip" and session.user_id == "u"
    assert [d.values for d in any_db.get_decisions(out.run_id)] == [{"note": "hi"}]
    assert (
        any_db.list_runs(workflow_name="round-trip", statuses=[RunStatus.completed])[0].run_id
        == out.run_id
    )
    assert any_db.ping()


@contextmanager
def statements(db: BaseDb) -> Iterator[list[tuple[str, int]]]:
    """Every SQL statement run on ``db`` with the rows it touched: through SQLAlchemy and
    through the run writes, which bypass it."""
    seen: list[tuple[str, int]] = []

    def after(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        seen.append((" ".join(statement.split()), cursor.rowcount))

    def written(statement: str, rowcount: int) -> None:
        seen.append((" ".join(statement.split()), rowcount))

    event.listen(db.engine, "after_cursor_execute", after)
    db.add_statement_listener(written)
    try:
        yield seen
    finally:
        event.remove(db.engine, "after_cursor_execute", after)
        db.remove_statement_listener(written)


def writes(seen: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return [(sql, rows) for sql, rows in seen if sql.split()[0] in {"INSERT", "UPDATE", "DELETE"}]


def test_saving_a_run_writes_one_row(sqlite_db: SqliteDb) -> None:
    run = WorkflowRunOutput(
        run_id="r1", session_id="s1", workflow_name="w", status=RunStatus.running
    )
    sqlite_db.ensure_schema()
    with statements(sqlite_db) as seen:
        sqlite_db.save_run(run)
    assert [(sql.split()[2], rows) for sql, rows in writes(seen)] == [
        ("wf_sessions", 1),
        ("wf_runs", 1),
    ]
    run.status = RunStatus.completed
    with statements(sqlite_db) as seen:
        sqlite_db.save_run(run)
    [(sql, rows)] = writes(seen)
    assert sql.startswith("UPDATE wf_runs") and rows == 1


def cycle_writes(wf: Workflow, session_id: str) -> list[tuple[str, int]]:
    run = wf.run("x", session_id=session_id)
    run.step_requirements[0].confirm(by="ann")
    with statements(wf.db) as seen:
        wf.continue_run(run)
    return seen


def test_a_session_with_500_runs_still_updates_one_row(any_db: BaseDb, tmp_path: Path) -> None:
    name = f"history-{tmp_path.name}"
    plain = Workflow(name=name, db=any_db, steps=[Step(name="s", executor=lambda si: si.input)])
    gated = approval_workflow("sqlite://", Recorder(), name=name)
    gated.db = any_db

    small = cycle_writes(gated, f"small-{name}")
    for i in range(500):
        plain.run(i, session_id=f"big-{name}")
    big = cycle_writes(gated, f"big-{name}")

    # The same statements, each touching one row, whatever the history.
    assert [sql for sql, _ in big] == [sql for sql, _ in small]
    assert all(rows == 1 for _, rows in writes(big)), writes(big)
    assert not any("wf_runs" in sql and "session_id" in sql.split("WHERE")[-1] for sql, _ in big)
    session = any_db.get_session(f"big-{name}")
    assert session is not None and len(session.runs) == 501
    with any_db.engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM wf_runs WHERE session_id = :s"), {"s": f"big-{name}"}
        ).scalar()
    assert count == 501


def test_a_confirmed_decision_survives_a_crash(db_url: str, tmp_path: Path) -> None:
    effects = SideEffects(tmp_path / "effects.log")
    wf = approval_workflow(db_url, effects)
    run = wf.run("go")
    proc = subprocess.run(
        child_command("crash", db_url, str(effects.path), run.run_id, "alice"),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert effects.lines() == ["prepare", "deploy"]
    # The claim and the decision were committed before the step ran.
    [decision] = wf.get_decisions(run.run_id)
    assert decision.decided_by == "alice"
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.status is RunStatus.running
    # Nobody can run the step again by continuing the old pause.
    run.step_requirements[0].confirm(by="bob")
    with pytest.raises(RunNotPausedError, match="alice"):
        wf.continue_run(run)
    assert effects.lines() == ["prepare", "deploy"]
    wf.db.dispose()


def test_the_in_memory_default_database(tmp_path: Path) -> None:
    wf = Workflow(
        name="mem", steps=[Step(name="s", executor=lambda si: 1, requires_confirmation=True)]
    )
    assert not wf.has_db
    run = wf.run()
    assert wf.has_db and isinstance(wf.db, SqliteDb)
    assert wf.get_run(run.run_id).is_paused
    other = Workflow(name="mem", steps=[Step(name="s", executor=lambda si: 1)])
    assert other.get_run(run.run_id) is None  # each default database is private
    json.dumps(run.to_dict())  # what is stored is JSON


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_processes_racing_on_a_new_database_create_one_schema(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, race: Race
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("pg_database_factory")()
    effects = SideEffects(tmp_path / "effects.log")
    results = race({str(i): ("start", url, str(effects.path)) for i in range(3)})
    assert [r["result"] for r in results] == ["paused"] * 3
    db = db_from_url(url)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(
                text("SELECT version_num FROM alembic_version")
            ).scalars().all() == [SCHEMA_REVISION]
        assert len(db.list_paused_runs()) == 3
    finally:
        db.dispose()


def test_postgres_urls_are_normalized_and_passwords_hidden() -> None:
    from engine.db.postgres import normalize_postgres_url

    assert normalize_postgres_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_postgres_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_postgres_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    db = PostgresDb(db_url="postgresql://user:secret@127.0.0.1:5432/x")
    assert "secret" not in repr(db) and "user" in repr(db)
    assert isinstance(db_from_url("postgres://u@127.0.0.1/x"), PostgresDb)
    db.dispose()
