"""Semantics the spec leaves open (issue 2, items 1, 2, 4, 11 and the compatibility list)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from engine import (
    OnReject,
    Outcome,
    RunStatus,
    Step,
    StepInput,
    StepOutput,
    UserInputField,
    Workflow,
)
from engine.db.sqlite import SqliteDb
from tests.engine.engine_flows import FakeAgent, Recorder, approval_workflow


def recording_step(rec: Recorder, name: str, **kwargs: Any) -> Step:
    def execute(step_input: StepInput) -> StepOutput:
        rec.record(name)
        return StepOutput(content=f"{name}<{step_input.previous_step_content}>")

    return Step(name=name, executor=execute, **kwargs)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def test_a_pausing_step_pauses_before_it_runs(sqlite_db: SqliteDb, rec: Recorder) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            recording_step(rec, "a"),
            recording_step(rec, "b", requires_confirmation=True, confirmation_message="ok?"),
            recording_step(rec, "c"),
        ],
    )
    run = wf.run("in")
    assert run.status is RunStatus.paused and run.is_paused
    assert rec.calls == ["a"]
    assert [r.step_name for r in run.step_requirements] == ["b"]
    assert run.step_requirements[0].step_index == 1
    assert run.step_requirements[0].step_path == [1]
    assert run.pause_path == [1]
    assert [s.step_name for s in run.step_results] == ["a"]
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.status is RunStatus.paused
    assert stored.steps_requiring_confirmation[0].confirmation_message == "ok?"


def test_confirm_runs_the_step_and_the_rest(sqlite_db: SqliteDb, rec: Recorder) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            recording_step(rec, "a"),
            recording_step(rec, "b", requires_confirmation=True),
            recording_step(rec, "c"),
        ],
    )
    run = wf.run("in")
    run.steps_requiring_confirmation[0].confirm(by="alice", comment="looks fine")
    out = wf.continue_run(run)
    assert out.status is RunStatus.completed
    assert rec.calls == ["a", "b", "c"]
    assert out.content == "c<b<a<None>>>"
    assert [s.step_name for s in out.step_results] == ["a", "b", "c"]
    # The caller's object follows the run too.
    assert run.status is RunStatus.completed and run.content == out.content


def test_reject_with_skip_records_skipped_and_passes_last_executed_content(
    sqlite_db: SqliteDb, rec: Recorder
) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            recording_step(rec, "a"),
            recording_step(rec, "b", requires_confirmation=True, on_reject=OnReject.skip),
            recording_step(rec, "c"),
        ],
    )
    run = wf.run("in")
    run.steps_requiring_confirmation[0].reject(by="bob", reason="not today")
    out = wf.continue_run(run)
    assert out.status is RunStatus.completed
    assert rec.calls == ["a", "c"]
    assert [(s.step_name, s.skipped) for s in out.step_results] == [
        ("a", False),
        ("b", True),
        ("c", False),
    ]
    assert out.content == "c<a<None>>"
    stored = wf.get_run(out.run_id)
    assert stored is not None
    assert [(s.step_name, s.skipped) for s in stored.step_results][1] == ("b", True)


def test_skip_is_the_default_on_reject(sqlite_db: SqliteDb, rec: Recorder) -> None:
    step = recording_step(rec, "b", requires_confirmation=True)
    assert step.on_reject is OnReject.skip
    wf = Workflow(name="w", db=sqlite_db, steps=[recording_step(rec, "a"), step])
    run = wf.run("x")
    run.step_requirements[0].reject()
    out = wf.continue_run(run)
    assert out.status is RunStatus.completed
    assert out.content == "a<None>"


def test_reject_with_cancel_ends_the_run(sqlite_db: SqliteDb, rec: Recorder) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            recording_step(rec, "a"),
            recording_step(rec, "b", requires_confirmation=True, on_reject="cancel"),
            recording_step(rec, "c"),
            recording_step(rec, "d", requires_confirmation=True),
        ],
    )
    run = wf.run("in")
    run.step_requirements[0].reject(by="bob", reason="too risky")
    out = wf.continue_run(run)
    assert out.status is RunStatus.cancelled and out.is_cancelled
    assert rec.calls == ["a"]
    assert "'b'" in out.content and "bob" in out.content and "too risky" in out.content
    stored = wf.get_run(run.run_id)
    assert stored is not None
    assert stored.status is RunStatus.cancelled
    assert stored.content == out.content
    assert stored.step_requirements == []
    assert [s.step_name for s in stored.step_results] == ["a"]


def test_cancel_without_a_name_still_says_which_step(sqlite_db: SqliteDb, rec: Recorder) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[recording_step(rec, "gate", requires_confirmation=True, on_reject="cancel")],
    )
    run = wf.run("in")
    run.step_requirements[0].reject()
    out = wf.continue_run(run)
    assert out.status is RunStatus.cancelled
    assert "step 'gate'" in out.content and "rejected" in out.content


def test_on_reject_as_string_and_enum(rec: Recorder) -> None:
    assert recording_step(rec, "a", on_reject="cancel").on_reject is OnReject.cancel
    assert recording_step(rec, "b", on_reject="skip").on_reject is OnReject.skip
    assert recording_step(rec, "c", on_reject=OnReject.cancel).on_reject is OnReject.cancel


def test_one_step_can_need_confirmation_and_input(sqlite_db: SqliteDb) -> None:
    seen: list[dict[str, Any]] = []

    def deploy(step_input: StepInput) -> StepOutput:
        seen.append(step_input.additional_data["user_input"])
        return StepOutput(content="deployed")

    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Step(
                name="deploy",
                executor=deploy,
                requires_confirmation=True,
                confirmation_message="Deploy?",
                requires_user_input=True,
                user_input_schema=[UserInputField(name="env", allowed_values=["prod", "dev"])],
            )
        ],
    )
    run = wf.run("x")
    [req] = run.step_requirements
    assert run.steps_requiring_confirmation == [req]
    assert run.steps_requiring_user_input == [req]
    req.set_user_input(env="prod", by="alice")
    # Input alone is not a go-ahead when the step also asks for confirmation.
    assert run.steps_requiring_confirmation == [req]
    assert run.steps_requiring_user_input == []
    with pytest.raises(ValueError, match="confirm"):
        wf.continue_run(run)
    req.confirm(by="alice")
    out = wf.continue_run(run)
    assert out.status is RunStatus.completed
    assert seen == [{"env": "prod"}]
    [decision] = wf.get_decisions(run.run_id)
    assert decision.outcome is Outcome.confirmed
    assert decision.values == {"env": "prod"}


def test_rejecting_a_step_that_also_wants_input_needs_no_input(sqlite_db: SqliteDb) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Step(
                name="s",
                executor=lambda si: "ran",
                requires_confirmation=True,
                requires_user_input=True,
                user_input_schema=[UserInputField(name="x", field_type="int")],
            ),
            Step(name="after", executor=lambda si: f"after {si.previous_step_content}"),
        ],
    )
    run = wf.run("x")
    run.step_requirements[0].reject(by="carol")
    out = wf.continue_run(run)
    assert out.status is RunStatus.completed
    assert out.content == "after None"


def test_a_run_pauses_many_times(sqlite_db: SqliteDb, rec: Recorder) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            recording_step(rec, "a", requires_confirmation=True),
            recording_step(rec, "b"),
            recording_step(rec, "c", requires_user_input=True),
            recording_step(rec, "d", requires_confirmation=True),
            recording_step(rec, "e"),
        ],
    )
    run = wf.run("x")
    pauses = []
    while run.is_paused:
        req = run.step_requirements[0]
        pauses.append(req.step_name)
        if req.requires_user_input:
            req.set_user_input(n=1, by="ann")
        else:
            req.confirm(by="ann")
        run = wf.continue_run(run)
    assert pauses == ["a", "c", "d"]
    assert run.status is RunStatus.completed
    assert rec.calls == ["a", "b", "c", "d", "e"]
    decisions = wf.get_decisions(run.run_id)
    assert [(d.step_name, d.outcome) for d in decisions] == [
        ("a", Outcome.confirmed),
        ("c", Outcome.submitted),
        ("d", Outcome.confirmed),
    ]


def test_decisions_carry_who_and_why_in_the_audit_trail(sqlite_db: SqliteDb) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Step(name="a", executor=lambda si: "a", requires_confirmation=True),
            Step(
                name="b",
                executor=lambda si: "b",
                requires_user_input=True,
                user_input_schema=[UserInputField(name="size", field_type="int")],
            ),
            Step(name="c", executor=lambda si: "c", requires_confirmation=True),
        ],
    )
    before = datetime.now().astimezone()
    run = wf.run("x")
    run.step_requirements[0].confirm(by="alice", comment="ship it")
    run = wf.continue_run(run)
    run.step_requirements[0].set_user_input(size="3", by="bob")
    run = wf.continue_run(run)
    run.step_requirements[0].reject(by="carol", reason="not on a friday")
    run = wf.continue_run(run)

    decisions = wf.get_decisions(run.run_id)
    assert [(d.step_name, d.outcome, d.decided_by, d.comment, d.values) for d in decisions] == [
        ("a", Outcome.confirmed, "alice", "ship it", None),
        ("b", Outcome.submitted, "bob", None, {"size": 3}),
        ("c", Outcome.rejected, "carol", "not on a friday", None),
    ]
    for d in decisions:
        assert d.run_id == run.run_id
        assert d.decided_at.tzinfo is not None
        assert d.decided_at >= before
    assert len({d.requirement_id for d in decisions}) == 3
    # A fresh database object reads the same trail.
    assert SqliteDb(db_file=sqlite_db.db_file).get_decisions(run.run_id) == decisions


def test_schema_objects_on_a_step_are_never_mutated(sqlite_db: SqliteDb) -> None:
    fields = [
        UserInputField(name="threshold", field_type="float"),
        UserInputField(name="mode", allowed_values=["fast", "accurate"]),
    ]
    snapshot = [dataclasses.asdict(f) for f in fields]
    step = Step(
        name="p",
        executor=lambda si: f"{si.user_input}",
        requires_user_input=True,
        user_input_schema=fields,
    )
    step_snapshot = [dataclasses.asdict(f) for f in step.user_input_schema or []]
    wf = Workflow(name="w", db=sqlite_db, steps=[step])

    first = wf.run("1")
    req = first.step_requirements[0]
    assert all(a is not b for a in req.user_input_schema for b in fields)
    assert all(a is not b for a in req.user_input_schema for b in step.user_input_schema or [])
    req.set_user_input(threshold=0.9, mode="fast")
    assert [f.value for f in req.user_input_schema] == [0.9, "fast"]
    req.user_input_schema[1].allowed_values.append("sloppy")

    second = wf.run("2")
    req2 = second.step_requirements[0]
    assert req2.user_input is None
    assert [f.value for f in req2.user_input_schema] == [None, None]
    assert req2.user_input_schema[1].allowed_values == ["fast", "accurate"]
    assert second.steps_requiring_user_input == [req2]

    assert wf.continue_run(first).content == "{'threshold': 0.9, 'mode': 'fast'}"
    assert [dataclasses.asdict(f) for f in fields] == snapshot
    assert [dataclasses.asdict(f) for f in step.user_input_schema or []] == step_snapshot
    assert wf.get_run(second.run_id).steps_requiring_user_input


def test_a_step_that_raises_ends_the_run_as_error(sqlite_db: SqliteDb, rec: Recorder) -> None:
    def explode(step_input: StepInput) -> StepOutput:
        raise RuntimeError("disk on fire")

    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            recording_step(rec, "a"),
            recording_step(rec, "b", requires_confirmation=True),
            Step(name="boom", executor=explode),
            recording_step(rec, "never"),
        ],
    )
    run = wf.run("x")
    run.step_requirements[0].confirm(by="alice")
    out = wf.continue_run(run)
    assert out.status is RunStatus.error
    assert "boom" in (out.error or "") and "disk on fire" in (out.error or "")
    assert rec.calls == ["a", "b"]
    stored = wf.get_run(run.run_id)
    assert stored is not None
    assert stored.status is RunStatus.error
    assert stored.error == out.error
    assert [s.step_name for s in stored.step_results] == ["a", "b", "boom"]
    assert stored.step_results[0].content == "a<None>"
    assert stored.step_results[2].success is False
    assert "disk on fire" in (stored.step_results[2].error or "")
    assert [d.decided_by for d in wf.get_decisions(run.run_id)] == ["alice"]


def test_a_step_that_raises_before_any_pause_is_stored(sqlite_db: SqliteDb) -> None:
    def explode(step_input: StepInput) -> StepOutput:
        raise ValueError("bad data")

    wf = Workflow(name="w", db=sqlite_db, steps=[Step(name="x", executor=explode)])
    out = wf.run("in")
    assert out.status is RunStatus.error
    stored = wf.get_run(out.run_id)
    assert stored is not None and stored.status is RunStatus.error
    assert "ValueError: bad data" in (stored.error or "")


def test_loaded_runs_carry_the_status_enum(sqlite_db: SqliteDb) -> None:
    wf = approval_workflow(f"sqlite:///{sqlite_db.db_file}", Recorder(), name="enum")
    run = wf.run("x")
    loaded = wf.get_run(run.run_id)
    assert loaded is not None
    assert type(loaded.status) is RunStatus and loaded.status is RunStatus.paused
    session = wf.get_session(run.session_id)
    assert session is not None and type(session.runs[-1].status) is RunStatus
    assert {m.value for m in RunStatus} == {
        "pending",
        "running",
        "paused",
        "completed",
        "cancelled",
        "error",
    }


def test_user_input_without_schema_accepts_any_keys(sqlite_db: SqliteDb) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Step(name="free", executor=lambda si: si.user_input, requires_user_input=True),
        ],
    )
    run = wf.run("x")
    values = run.step_requirements[0].set_user_input(anything=1, goes=[1, 2], here="yes")
    assert values == {"anything": 1, "goes": [1, 2], "here": "yes"}
    out = wf.continue_run(run)
    assert out.content == {"anything": 1, "goes": [1, 2], "here": "yes"}


def test_agents_get_user_input_as_name_value_lines(sqlite_db: SqliteDb) -> None:
    writer = FakeAgent("writer")
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Step(name="draft", agent=FakeAgent("draft", reply=lambda m: "a draft")),
            Step(
                name="write",
                agent=writer,
                requires_user_input=True,
                user_input_schema=[
                    UserInputField(name="tone"),
                    UserInputField(name="words", field_type="int"),
                ],
            ),
        ],
    )
    run = wf.run("topic")
    run.step_requirements[0].set_user_input(tone="dry", words="120")
    wf.continue_run(run)
    [message] = writer.calls
    assert message.startswith("a draft")
    lines = message.splitlines()
    assert "tone: dry" in lines and "words: 120" in lines


def test_an_agent_without_input_gets_only_the_user_input(sqlite_db: SqliteDb) -> None:
    agent = FakeAgent("solo")
    wf = Workflow(
        name="w", db=sqlite_db, steps=[Step(name="s", agent=agent, requires_user_input=True)]
    )
    run = wf.run()
    run.step_requirements[0].set_user_input(city="Oslo")
    wf.continue_run(run)
    assert "city: Oslo" in agent.calls[0].splitlines()


def test_step_output_stop_ends_the_run_early(sqlite_db: SqliteDb, rec: Recorder) -> None:
    def stopper(step_input: StepInput) -> StepOutput:
        return StepOutput(content="enough", stop=True)

    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            recording_step(rec, "a"),
            Step(name="stop", executor=stopper),
            recording_step(rec, "z"),
        ],
    )
    out = wf.run("x")
    assert out.status is RunStatus.completed
    assert out.content == "enough"
    assert rec.calls == ["a"]
    assert [s.step_name for s in out.step_results] == ["a", "stop"]


def test_stop_after_a_pause_ends_the_run(sqlite_db: SqliteDb, rec: Recorder) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Step(
                name="gate",
                executor=lambda si: StepOutput(content="halt", stop=True),
                requires_confirmation=True,
            ),
            recording_step(rec, "z", requires_confirmation=True),
        ],
    )
    run = wf.run("x")
    run.step_requirements[0].confirm()
    out = wf.continue_run(run)
    assert out.status is RunStatus.completed and out.content == "halt"
    assert rec.calls == []


def test_step_output_names_its_step_and_plain_returns_are_wrapped(sqlite_db: SqliteDb) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Step(name="plain", executor=lambda si: 41),
            Step(
                name="wrapped", executor=lambda si: StepOutput(content=si.previous_step_content + 1)
            ),
        ],
    )
    out = wf.run("x")
    assert [(s.step_name, s.content) for s in out.step_results] == [("plain", 41), ("wrapped", 42)]
    assert out.content == 42


def test_get_session_without_argument_is_the_last_runs_session(
    sqlite_db: SqliteDb, rec: Recorder
) -> None:
    wf = Workflow(name="w", db=sqlite_db, steps=[recording_step(rec, "a")])
    assert wf.get_session() is None
    first = wf.run("1", session_id="s1")
    second = wf.run("2", session_id="s1")
    session = wf.get_session()
    assert session is not None and session.session_id == "s1"
    assert [r.run_id for r in session.runs] == [first.run_id, second.run_id]
    other = wf.run("3")
    assert wf.get_session().session_id == other.session_id
    assert wf.get_session("s1").runs[-1].run_id == second.run_id


def test_previous_step_outputs_by_name(sqlite_db: SqliteDb) -> None:
    def last(step_input: StepInput) -> str:
        return f"{step_input.get_step_content('one')}+{step_input.get_step_content('two')}"

    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Step(name="one", executor=lambda si: "1"),
            Step(name="two", executor=lambda si: "2"),
            Step(name="last", executor=last),
        ],
    )
    assert wf.run("x").content == "1+2"


def test_bare_functions_become_steps(tmp_path: Path) -> None:
    def first(step_input: StepInput) -> str:
        return "one"

    def second(step_input: StepInput) -> str:
        return f"{step_input.previous_step_content}-two"

    wf = Workflow(name="w", db=SqliteDb(db_file=tmp_path / "w.db"), steps=[first, second])
    assert [s.name for s in wf.steps] == ["first", "second"]
    assert wf.run().content == "one-two"


def test_use_default_db_only_replaces_a_default(tmp_path) -> None:
    from engine import SqliteDb

    first, second = SqliteDb(db_file=tmp_path / "a.db"), SqliteDb(db_file=tmp_path / "b.db")
    served = Workflow(name="served", steps=[Step(name="s", executor=lambda si: "ok")])
    served.use_default_db(first)
    served.use_default_db(second)  # a second front-end in the same process moves it along
    assert served.db is second and not served.has_own_db
    own = Workflow(name="own", db=first, steps=[Step(name="s", executor=lambda si: "ok")])
    own.use_default_db(second)
    assert own.db is first and own.has_own_db
