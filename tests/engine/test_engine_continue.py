"""Continue forms (issue 2, item 5) and one Workflow serving many runs (item 4)."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from engine import (
    RunStatus,
    Step,
    StepInput,
    StepOutput,
    UserInputField,
    Workflow,
)
from engine.db.sqlite import SqliteDb
from tests.engine.engine_flows import (
    Recorder,
    SideEffects,
    approval_workflow,
    child_command,
    child_env,
)


def run_child(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        child_command(*args), env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_continue_with_the_run_output(db_file: Path) -> None:
    rec = Recorder()
    wf = approval_workflow(f"sqlite:///{db_file}", rec)
    run = wf.run("go")
    run.step_requirements[0].confirm(by="alice")
    out = wf.continue_run(run)
    assert out.status is RunStatus.completed
    assert out.content == "notified after deployed after prepared"


def test_continue_by_id_from_a_fresh_process(db_url: str, tmp_path: Path) -> None:
    effects = SideEffects(tmp_path / "effects.log")
    wf = approval_workflow(db_url, effects)
    run = wf.run("go")
    req = run.step_requirements[0]
    req.confirm(by="alice", comment="from the web")
    # What a front-end would send: the answered requirement as JSON.
    payload = json.dumps([r.to_dict() for r in run.step_requirements])

    result = run_child("resume", db_url, str(effects.path), run.run_id, run.session_id, payload)

    assert result == {
        "status": "completed",
        "content": "notified after deployed after prepared",
        "session_last_status": "completed",
        "decided_by": ["alice"],
    }
    assert effects.lines() == ["prepare", "deploy", "notify"]
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.status is RunStatus.completed
    wf.db.dispose()


def test_continue_by_id_in_process_with_a_workflow_that_loaded_nothing(db_file: Path) -> None:
    url = f"sqlite:///{db_file}"
    first = approval_workflow(url, Recorder())
    run = first.run("go")
    run.step_requirements[0].reject(by="bob", reason="no")
    reqs = run.step_requirements

    rec = Recorder()
    fresh = approval_workflow(url, rec)
    out = fresh.continue_run(run_id=run.run_id, session_id=run.session_id, step_requirements=reqs)
    assert out.status is RunStatus.completed
    assert rec.calls == ["notify"]
    assert fresh.get_session().runs[-1].run_id == run.run_id


def test_continue_by_id_with_field_values_set_directly(db_file: Path) -> None:
    url = f"sqlite:///{db_file}"

    def make() -> Workflow:
        return Workflow(
            name="form",
            db=SqliteDb(db_file=db_file),
            steps=[
                Step(
                    name="ask",
                    executor=lambda si: si.user_input,
                    requires_user_input=True,
                    user_input_schema=[UserInputField(name="n", field_type="int")],
                )
            ],
        )

    run = make().run("x")
    loaded = make().get_run(run.run_id)
    assert loaded is not None and url
    loaded.step_requirements[0].user_input_schema[0].value = "5"
    out = make().continue_run(
        run_id=run.run_id, session_id=run.session_id, step_requirements=loaded.step_requirements
    )
    assert out.content == {"n": 5}


def test_continue_a_run_loaded_by_session_and_by_id(db_file: Path) -> None:
    url = f"sqlite:///{db_file}"
    rec = Recorder()
    wf = approval_workflow(url, rec)
    run = wf.run("go", session_id="conversation-1")

    other = approval_workflow(url, rec)
    by_session = other.get_session("conversation-1").runs[-1]
    assert by_session.run_id == run.run_id and by_session.is_paused
    by_session.step_requirements[0].confirm(by="ann")
    assert other.continue_run(by_session).status is RunStatus.completed

    second = wf.run("again", session_id="conversation-1")
    by_id = other.get_run(second.run_id)
    assert by_id is not None and by_id.is_paused
    by_id.step_requirements[0].confirm()
    assert other.continue_run(by_id).status is RunStatus.completed
    assert rec.count("deploy") == 2
    assert [r.status for r in wf.get_session("conversation-1").runs] == [
        RunStatus.completed,
        RunStatus.completed,
    ]


def test_the_run_id_form_without_requirements_uses_stored_answers(db_file: Path) -> None:
    wf = approval_workflow(f"sqlite:///{db_file}", Recorder())
    run = wf.run("go")
    # Unanswered in the database: refused, with the step named.
    with pytest.raises(ValueError, match="'deploy' needs confirm"):
        wf.continue_run(run_id=run.run_id, session_id=run.session_id)


def concurrent_workflow(db: SqliteDb | None) -> Workflow:
    def configure(step_input: StepInput) -> StepOutput:
        n = step_input.additional_data["user_input"]["n"]
        return StepOutput(content=f"{step_input.input}:{n}")

    return Workflow(
        name="shared",
        db=db,
        steps=[
            Step(name="start", executor=lambda si: si.input),
            Step(
                name="configure",
                executor=configure,
                requires_user_input=True,
                user_input_schema=[UserInputField(name="n", field_type="int")],
            ),
        ],
    )


@pytest.mark.parametrize("storage", ["file", "memory"])
def test_one_workflow_serves_concurrent_runs_from_threads(db_file: Path, storage: str) -> None:
    wf = concurrent_workflow(SqliteDb(db_file=db_file) if storage == "file" else None)
    results: dict[int, Any] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for j in range(5):
                n = i * 100 + j
                run = wf.run(f"t{n}")
                req = run.step_requirements[0]
                assert req.user_input is None and req.user_input_schema[0].value is None
                req.set_user_input(n=str(n), by=f"user{i}")
                results[n] = wf.continue_run(run).content
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == {n: f"t{n}:{n}" for n in results} and len(results) == 30
    assert wf.steps[1].user_input_schema[0].value is None  # type: ignore[attr-defined]
    completed = wf.db.list_runs(workflow_name="shared", statuses=[RunStatus.completed], limit=100)
    assert len(completed) == 30
