"""Each bad call gets a clear error type and a message that says what to do."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import (
    EngineError,
    ManualClock,
    RequirementsUnresolvedError,
    RunNotFoundError,
    RunNotPausedError,
    Step,
    UserInputField,
    UserInputValidationError,
    Workflow,
    WorkflowConfigError,
)
from engine.db.sqlite import SqliteDb
from tests.engine.engine_flows import Recorder, approval_workflow


def noop(step_input: Any) -> str:
    return "ok"


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Step(name="x"), WorkflowConfigError, "exactly one of agent= or executor="),
        (
            lambda: Step(name="x", executor=noop, agent=object()),
            WorkflowConfigError,
            "exactly one of agent= or executor=",
        ),
        (lambda: Step(name="x", agent=object()), WorkflowConfigError, r"run\(input=...\)"),
        (
            lambda: Step(name="x", executor="noop"),  # type: ignore[arg-type]  # on purpose
            WorkflowConfigError,
            "must be callable",
        ),
        (
            lambda: Step(name="x", executor=noop, on_reject="explode"),
            ValueError,
            # OnReject grew else (Condition) and retry (output review) with issue 9.
            r"on_reject must be one of \['skip', 'cancel', 'else', 'retry'\], got 'explode'",
        ),
        (
            lambda: Step(name="x", executor=noop, pause_timeout=timedelta(0)),
            ValueError,
            "pause_timeout must be positive",
        ),
        (lambda: Step(name="x", executor=noop, pause_timeout=-5), ValueError, "must be positive"),
        (
            lambda: Step(name="x", executor=noop, pause_timeout="5m"),  # type: ignore[arg-type]
            TypeError,
            "timedelta or a number of seconds",
        ),
        (
            lambda: Step(name="x", executor=noop, pause_timeout=True),
            TypeError,
            "timedelta or a number of seconds",
        ),
        (
            lambda: Step(
                name="x",
                executor=noop,
                requires_user_input=True,
                user_input_schema=[UserInputField(name="a"), UserInputField(name="a")],
            ),
            WorkflowConfigError,
            "duplicate user input field names",
        ),
        (
            # list and dict became field types with issue 9.
            lambda: UserInputField(name="a", field_type="set"),
            ValueError,
            "field_type must be one of",
        ),
        (lambda: UserInputField(name="two words"), ValueError, "must be an identifier"),
        (lambda: UserInputField(name=""), ValueError, "must be an identifier"),
        (lambda: Workflow(name="w", steps=[]), WorkflowConfigError, "has no steps"),
        (
            lambda: Workflow(
                name="w", steps=[Step(name="a", executor=noop), Step(name="a", executor=noop)]
            ),
            WorkflowConfigError,
            "step names must be unique",
        ),
        (lambda: ManualClock(datetime(2026, 1, 1)), ValueError, "timezone-aware"),
        (lambda: ManualClock().set(datetime(2026, 1, 1)), ValueError, "timezone-aware"),
        (
            lambda: SqliteDb(db_file="a.db", db_url="sqlite://"),
            ValueError,
            "give db_file or db_url, not both",
        ),
    ],
)
def test_bad_declarations(make: Callable[[], Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


@pytest.fixture
def wf(sqlite_db: SqliteDb) -> Workflow:
    wf = approval_workflow("sqlite://", Recorder(), name="bad", pause_timeout=60)
    wf.db = sqlite_db
    return wf


def test_continue_run_without_a_run(wf: Workflow) -> None:
    with pytest.raises(TypeError, match="needs a run_output, or run_id="):
        wf.continue_run()


def test_continue_run_with_something_else_than_a_run(wf: Workflow) -> None:
    with pytest.raises(TypeError, match="takes the paused WorkflowRunOutput"):
        wf.continue_run("run-123")  # type: ignore[call-overload]


def test_continue_run_with_two_different_runs(wf: Workflow) -> None:
    run = wf.run("x")
    run.step_requirements[0].confirm()
    with pytest.raises(TypeError, match="give one"):
        wf.continue_run(run, run_id="another")


def test_continue_an_unknown_run(wf: Workflow) -> None:
    with pytest.raises(RunNotFoundError, match="no run with id 'nope'") as info:
        wf.continue_run(run_id="nope", session_id="s")
    assert isinstance(info.value, EngineError) and isinstance(info.value, LookupError)


def test_continue_with_the_wrong_session(wf: Workflow) -> None:
    run = wf.run("x")
    with pytest.raises(RunNotFoundError):
        wf.continue_run(run_id=run.run_id, session_id="someone-elses")


def test_continue_unresolved(wf: Workflow) -> None:
    run = wf.run("x")
    with pytest.raises(
        RequirementsUnresolvedError, match=r"step 'deploy' needs confirm\(\) or reject\(\)"
    ):
        wf.continue_run(run)
    # Refused before anything was written.
    assert wf.get_decisions(run.run_id) == []
    assert wf.get_run(run.run_id).version == run.version


def test_continue_with_requirements_of_another_step(sqlite_db: SqliteDb) -> None:
    one = approval_workflow("sqlite://", Recorder(), name="bad")
    one.db = sqlite_db
    run = one.run("x")
    from engine import StepRequirement

    stray = StepRequirement(requirement_id="zzz", step_name="prepare", step_index=0, step_path=[0])
    stray.confirm()
    with pytest.raises(
        RequirementsUnresolvedError, match="'prepare' is not what this run waits for"
    ):
        one.continue_run(run_id=run.run_id, session_id=run.session_id, step_requirements=[stray])


def test_continue_a_run_of_another_workflow(wf: Workflow, sqlite_db: SqliteDb) -> None:
    run = wf.run("x")
    run.step_requirements[0].confirm()
    other = approval_workflow("sqlite://", Recorder(), name="other")
    other.db = sqlite_db
    with pytest.raises(WorkflowConfigError, match="belongs to workflow 'bad', not 'other'"):
        other.continue_run(run)
    with pytest.raises(WorkflowConfigError, match="belongs to workflow 'bad'"):
        other.continue_run(run_id=run.run_id, step_requirements=run.step_requirements)


def test_continue_after_the_workflow_changed(wf: Workflow, sqlite_db: SqliteDb) -> None:
    run = wf.run("x")
    run.step_requirements[0].confirm()
    changed = Workflow(
        name="bad",
        db=sqlite_db,
        steps=[Step(name="prepare", executor=noop), Step(name="renamed", executor=noop)],
    )
    with pytest.raises(WorkflowConfigError, match="was the workflow changed"):
        changed.continue_run(run)
    shorter = Workflow(name="bad", db=sqlite_db, steps=[Step(name="prepare", executor=noop)])
    with pytest.raises(WorkflowConfigError, match="unknown pause position"):
        shorter.continue_run(run)
    assert wf.get_run(run.run_id).is_paused


def test_continue_a_finished_run(wf: Workflow) -> None:
    run = wf.run("x")
    run.step_requirements[0].confirm(by="alice")
    wf.continue_run(run)
    with pytest.raises(RunNotPausedError, match="status: completed") as info:
        wf.continue_run(run_id=run.run_id)
    assert info.value.decided_by == "alice"


def test_bad_user_input(wf: Workflow, sqlite_db: SqliteDb) -> None:
    form = Workflow(
        name="form",
        db=sqlite_db,
        steps=[
            Step(
                name="ask",
                executor=noop,
                requires_user_input=True,
                user_input_schema=[UserInputField(name="n", field_type="int")],
            )
        ],
    )
    req = form.run("x").step_requirements[0]
    with pytest.raises(UserInputValidationError, match=r"invalid user input for step 'ask': n: "):
        req.set_user_input(n="many")
    with pytest.raises(TypeError):
        req.set_user_input(5)  # type: ignore[arg-type]


def test_expire_errors(wf: Workflow) -> None:
    with pytest.raises(RunNotFoundError):
        wf.expire_run("missing")
    run = wf.run("x")
    with pytest.raises(RunNotPausedError, match="is due at"):
        wf.expire_run(run.run_id)
    with pytest.raises(ValueError, match="timezone-aware"):
        wf.expire_run(run.run_id, now=datetime(2099, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        wf.expire_due_runs(now=datetime(2099, 1, 1))
    run.step_requirements[0].confirm()
    wf.continue_run(run)
    with pytest.raises(RunNotPausedError, match="completed"):
        wf.expire_run(run.run_id)


def test_list_paused_runs_errors(wf: Workflow, sqlite_db: SqliteDb) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sqlite_db.list_paused_runs(expires_before=datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="workflow_name"):
        wf.list_paused_runs(workflow_name="other")  # type: ignore[call-arg]


def test_a_database_with_tables_but_no_version_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE wf_runs (id INTEGER PRIMARY KEY)")
    raw.commit()
    raw.close()
    with pytest.raises(RuntimeError, match="alembic stamp"):
        SqliteDb(db_file=path).get_run("x")


def test_starting_a_run_with_a_used_run_id(wf: Workflow) -> None:
    from engine import DuplicateRunError

    rec = Recorder()
    dup = approval_workflow("sqlite://", rec, name="bad")
    dup.db = wf.db
    dup.run("first", run_id="fixed-id")
    with pytest.raises(DuplicateRunError, match="run id 'fixed-id' is already used") as info:
        dup.run("second", run_id="fixed-id")
    assert isinstance(info.value, ValueError)
    assert rec.count("prepare") == 1  # refused before any step ran
    assert wf.get_run("fixed-id").input == "first"


def test_two_runs_racing_for_one_run_id(wf: Workflow) -> None:
    import threading

    from engine import DuplicateRunError

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            wf.run("x", run_id="contested")
            outcomes.append("ok")
        except DuplicateRunError:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["duplicate", "ok"]


def test_a_paused_object_without_requirements_is_refused(wf: Workflow) -> None:
    run = wf.run("x")
    run.step_requirements[0].confirm(by="alice")
    wf.continue_run(run)
    torn = wf.get_run(run.run_id)
    assert torn is not None
    torn.status = run.status.__class__.paused  # status says paused, nothing to answer
    with pytest.raises(RunNotPausedError, match="alice"):
        wf.continue_run(torn)
