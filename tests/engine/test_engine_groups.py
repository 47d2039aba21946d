"""Groups (Steps, Parallel, Loop, Condition, Router): each alone, nested, how outputs flow,
and pauses inside them at any depth — resumed in a fresh Workflow object, sync, async and
streamed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine import (
    Condition,
    Loop,
    Parallel,
    Router,
    RunStatus,
    Step,
    StepContinuedEvent,
    StepInput,
    StepOutput,
    StepPausedEvent,
    Steps,
    Workflow,
    WorkflowCompletedEvent,
    WorkflowConfigError,
    db_from_url,
)
from engine import workflow as engine_workflow
from engine.db.sqlite import SqliteDb
from engine.workflow.condition import Condition as ConditionFromModule
from engine.workflow.loop import Loop as LoopFromModule
from engine.workflow.parallel import Parallel as ParallelFromModule
from engine.workflow.router import Router as RouterFromModule
from engine.workflow.steps import Steps as StepsFromModule
from tests.engine.engine_flows import Recorder, echo, gate, nested_workflow, run_async


def test_components_import_from_every_path_agno_users_expect() -> None:
    assert Steps is StepsFromModule is engine_workflow.Steps
    assert Parallel is ParallelFromModule is engine_workflow.Parallel
    assert Loop is LoopFromModule is engine_workflow.Loop
    assert Condition is ConditionFromModule is engine_workflow.Condition
    assert Router is RouterFromModule is engine_workflow.Router


# -- each component alone --------------------------------------------------------------
def test_steps_runs_its_sequence_as_one_output(sqlite_db: SqliteDb) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[echo("a"), Steps(name="group", steps=[echo("b"), echo("c")]), echo("d")],
    )
    run = wf.run("in")
    assert run.status is RunStatus.completed
    group = run.step_results[1]
    assert group.step_name == "group" and group.step_type == "Steps"
    assert [s.step_name for s in group.steps or []] == ["b", "c"]
    assert group.content == "c<b<a<None>>>"
    assert run.content == "d<c<b<a<None>>>>"


def test_functions_and_nested_lists_in_steps(sqlite_db: SqliteDb) -> None:
    def first(si: StepInput) -> str:
        return "one"

    def second(si: StepInput) -> str:
        return f"two after {si.previous_step_content}"

    def third(si: StepInput) -> str:
        return f"three after {si.previous_step_content}"

    wf = Workflow(name="w", db=sqlite_db, steps=[first, [second, third]])
    run = wf.run()
    assert run.content == "three after two after one"
    assert run.step_results[1].step_type == "Steps"


def test_parallel_collects_outputs_per_branch(sqlite_db: SqliteDb) -> None:
    def later(si: StepInput) -> StepOutput:
        return StepOutput(content=si.get_step_content("fan"))

    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            echo("start"),
            Parallel(echo("x"), echo("y"), [echo("z1"), echo("z2")], name="fan"),
            Step(name="later", executor=later),
        ],
    )
    run = wf.run()
    fan = run.step_results[1]
    assert fan.step_type == "Parallel"
    # Every branch gets what the Parallel got, not a sibling's output.
    assert [s.content for s in fan.steps or []] == [
        "x<start<None>>",
        "y<start<None>>",
        "z2<z1<start<None>>>",
    ]
    assert "### x (ok)" in str(fan.content)
    assert run.content == {
        "x": "x<start<None>>",
        "y": "y<start<None>>",
        "steps_3": "z2<z1<start<None>>>",
    }


def test_loop_max_iterations_end_condition_and_forwarding(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    counted = Workflow(
        name="a", db=sqlite_db, steps=[Loop(steps=[echo("s", rec)], max_iterations=3)]
    )
    assert counted.run().status is RunStatus.completed
    assert rec.count("s") == 3

    rec2 = Recorder()
    stop_after_two = Loop(
        name="l",
        steps=[echo("s", rec2)],
        max_iterations=5,
        end_condition=lambda outputs: rec2.count("s") >= 2,
    )
    assert (
        Workflow(name="b", db=sqlite_db, steps=[stop_after_two]).run().status is RunStatus.completed
    )
    assert rec2.count("s") == 2

    forwarded = Workflow(
        name="c",
        db=sqlite_db,
        steps=[
            echo("seed"),
            Loop(name="l", steps=[echo("s")], max_iterations=3, forward_iteration_output=True),
        ],
    )
    assert forwarded.run().content == "s<s<s<seed<None>>>>"
    plain = Workflow(
        name="d",
        db=sqlite_db,
        steps=[echo("seed"), Loop(name="l", steps=[echo("s")], max_iterations=3)],
    )
    assert plain.run().content == "s<seed<None>>"


def test_loop_end_condition_as_an_expression(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Loop(
                name="l",
                steps=[echo("s", rec)],
                max_iterations=9,
                end_condition=(
                    'current_iteration >= 2 && all_success && last_step_content.contains("s<")'
                ),
            )
        ],
    )
    wf.run()
    assert rec.count("s") == 2
    with pytest.raises(WorkflowConfigError, match="unknown name 'os'"):
        Loop(name="bad", steps=[echo("s")], end_condition="os == 1")
    with pytest.raises(WorkflowConfigError, match="unsupported call"):
        Loop(name="bad", steps=[echo("s")], end_condition="os.system('x')")
    with pytest.raises(WorkflowConfigError, match="unsupported call"):
        Loop(name="bad", steps=[echo("s")], end_condition="last_step_content.upper() == 'X'")


@pytest.mark.parametrize("flavour", ["bool", "sync", "async"])
def test_condition_evaluators_and_else_steps(sqlite_db: SqliteDb, flavour: str) -> None:
    async def async_yes(si: StepInput) -> bool:
        return si.input == "yes"

    evaluator: Any = {
        "bool": True,
        "sync": lambda si: si.input == "yes",
        "async": async_yes,
    }[flavour]
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Condition(
                name="c", evaluator=evaluator, steps=[echo("then")], else_steps=[echo("otherwise")]
            )
        ],
    )
    assert wf.run("yes").content == "then<None>"
    if flavour != "bool":
        assert wf.run("no").content == "otherwise<None>"
        assert run_async(wf.arun("no")).content == "otherwise<None>"
    no_else = Workflow(
        name="n",
        db=sqlite_db,
        steps=[echo("a"), Condition(name="c", evaluator=False, steps=[echo("then")])],
    )
    run = no_else.run()
    assert run.step_results[1].skipped and run.content == "a<None>"


def test_router_selector_returning_steps_names_or_lists(sqlite_db: SqliteDb) -> None:
    a, b, c = echo("a"), echo("b"), echo("c")
    for picked, expected in [
        (lambda si: b, "b<None>"),
        (lambda si: "c", "c<None>"),
        (lambda si: ["a", c], "c<a<None>>"),
    ]:
        wf = Workflow(
            name="w", db=sqlite_db, steps=[Router(name="r", choices=[a, b, c], selector=picked)]
        )
        assert wf.run().content == expected
    wrong = Workflow(
        name="wrong",
        db=sqlite_db,
        steps=[Router(name="r", choices=[a, b], selector=lambda si: "zzz")],
    )
    run = wrong.run()
    assert run.status is RunStatus.error and "not one of its choices" in str(run.error)


def test_earlier_outputs_are_reachable_by_name_at_any_depth(sqlite_db: SqliteDb) -> None:
    seen: dict[str, Any] = {}

    def look(si: StepInput) -> str:
        seen["inner"] = si.get_step_content("inner")
        seen["deep_output"] = si.get_step_output("inner")
        return "looked"

    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Steps(name="g", steps=[Steps(name="h", steps=[echo("inner")])]),
            Step(name="look", executor=look),
        ],
    )
    wf.run("x")
    assert seen["inner"] == "inner<None>"
    assert seen["deep_output"].step_name == "inner"


def test_sibling_names_must_be_unique_in_every_group() -> None:
    with pytest.raises(WorkflowConfigError, match="step names must be unique"):
        Steps(name="g", steps=[echo("a"), echo("a")])
    with pytest.raises(WorkflowConfigError, match="has no choices"):
        Router(name="r", choices=[], selector=lambda si: None)
    with pytest.raises(WorkflowConfigError, match="needs a selector"):
        Router(name="r", choices=[echo("a")])


# -- pauses inside groups, at any depth ----------------------------------------------------
def test_a_pause_inside_every_kind_of_group_resumes_at_its_position(db_file: Path) -> None:
    url = f"sqlite:///{db_file}"
    groups: dict[str, Any] = {
        "steps": lambda rec: Steps(
            name="g", steps=[echo("pre", rec), gate("gate", rec), echo("post", rec)]
        ),
        "condition": lambda rec: Condition(
            name="g", evaluator=True, steps=[echo("pre", rec), gate("gate", rec), echo("post", rec)]
        ),
        "router": lambda rec: Router(
            name="g",
            choices=[echo("pre", rec), gate("gate", rec), echo("post", rec)],
            selector=lambda si: ["pre", "gate", "post"],
        ),
        "loop": lambda rec: Loop(
            name="g",
            max_iterations=1,
            steps=[echo("pre", rec), gate("gate", rec), echo("post", rec)],
        ),
    }
    for kind, make in groups.items():
        rec = Recorder()

        def build(rec: Recorder = rec, make: Any = make, kind: str = kind) -> Workflow:
            return Workflow(
                name=f"in_{kind}", db=db_from_url(url), steps=[echo("first", rec), make(rec)]
            )

        run = build().run("x")
        assert run.is_paused, kind
        [req] = run.step_requirements
        assert req.step_name == "gate" and req.step_path == [1, 1] and run.pause_path == [1, 1], (
            kind
        )
        assert rec.calls == ["first", "pre"], kind
        req.confirm(by="alice")
        # A fresh Workflow object (what another process builds) continues by id.
        done = build().continue_run(
            run_id=run.run_id, session_id=run.session_id, step_requirements=[req]
        )
        assert done.status is RunStatus.completed, kind
        assert rec.calls == ["first", "pre", "gate", "post"], kind
        assert done.content == "post<gate<pre<first<None>>>>", kind


def test_three_deep_pause_every_loop_round_from_fresh_objects(db_file: Path) -> None:
    url = f"sqlite:///{db_file}"
    rec = Recorder()
    run = nested_workflow(url, rec).run("go")
    for round_ in range(2):
        assert run.is_paused and run.step_requirements[0].step_path == [0, 0, 0, 0, 0], round_
        stored = nested_workflow(url, rec).get_run(run.run_id)
        assert stored is not None and stored.cursor is not None
        stored.step_requirements[0].confirm(by=f"person{round_}")
        run = nested_workflow(url, rec).continue_run(stored)
    assert run.status is RunStatus.completed
    assert rec.calls == ["gate", "work", "gate", "work", "after"]
    decisions = nested_workflow(url, rec).get_decisions(run.run_id)
    assert [d.decided_by for d in decisions] == ["person0", "person1"]
    assert [r.step_name for r in run.requirement_history] == ["gate", "gate"]
    outer = run.step_results[0]
    loop = (outer.steps or [])[0]
    assert loop.step_type == "Loop" and len(loop.steps or []) == 2


def test_nested_pause_rejected_skip_and_cancel(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Steps(name="g", steps=[gate("skip_me", rec), gate("stop_me", rec, on_reject="cancel")]),
            echo("never", rec),
        ],
    )
    run = wf.run()
    run.step_requirements[0].reject(by="bob")
    run = wf.continue_run(run)
    assert run.step_requirements[0].step_name == "stop_me"
    run.step_requirements[0].reject(by="bob", reason="not today")
    run = wf.continue_run(run)
    assert run.status is RunStatus.cancelled
    assert run.content == "Run cancelled: step 'stop_me' was rejected by bob: not today"
    assert rec.calls == []


def test_nested_pause_async_and_streamed(db_file: Path) -> None:
    url = f"sqlite:///{db_file}"
    rec = Recorder()
    wf = nested_workflow(url, rec)

    async def go() -> list[str]:
        run = await wf.arun("x")
        run.step_requirements[0].confirm(by="a")
        run = await wf.acontinue_run(run)
        names = []
        run.step_requirements[0].confirm(by="b")
        async for event in wf.acontinue_run(run, stream=True, stream_events=True):
            names.append(type(event).__name__)
        return names

    names = run_async(go())
    assert (
        names[:2] == ["StepContinuedEvent", "StepStartedEvent"]
        and names[-1] == "WorkflowCompletedEvent"
    )
    assert rec.calls == ["gate", "work", "gate", "work", "after"]

    rec2 = Recorder()
    wf2 = nested_workflow(url, rec2, name="nested_sync_stream")
    events = list(wf2.run("y", stream=True, stream_events=True))
    paused = [e for e in events if isinstance(e, StepPausedEvent)]
    assert len(paused) == 1 and paused[0].step_path == [0, 0, 0, 0, 0]
    run = wf2.get_session().runs[-1]
    run.step_requirements[0].confirm()
    events = list(wf2.continue_run(run, stream=True, stream_events=True))
    assert isinstance(events[0], StepContinuedEvent) and events[0].step_path == [0, 0, 0, 0, 0]
    assert isinstance(events[-1], StepPausedEvent)  # the second round's pause


def test_a_run_stored_by_the_previous_release_loads_and_continues(sqlite_db: SqliteDb) -> None:
    """A paused run exactly as the previous release stored it (no cursor, no kind)."""
    rec = Recorder()
    wf = Workflow(
        name="legacy",
        db=sqlite_db,
        steps=[echo("prepare", rec), gate("deploy", rec), echo("notify", rec)],
    )
    previous_release: dict[str, Any] = {
        "run_id": "r-legacy",
        "session_id": "s-legacy",
        "workflow_name": "legacy",
        "input": "go",
        "user_id": "U1",
        "status": "paused",
        "content": None,
        "step_results": [
            {
                "step_name": "prepare",
                "content": "prepare<None>",
                "success": True,
                "error": None,
                "skipped": False,
                "stop": False,
            }
        ],
        "step_requirements": [
            {
                "requirement_id": "req-1",
                "step_name": "deploy",
                "step_index": 1,
                "step_path": [1],
                "requires_confirmation": True,
                "confirmation_message": "Deploy?",
                "requires_user_input": False,
                "user_input_message": None,
                "user_input_schema": [],
                "on_reject": "skip",
                "paused_at": "2026-01-01T00:00:00+00:00",
                "expires_at": None,
                "confirmed": None,
                "user_input": None,
                "decided_by": None,
                "decided_at": None,
                "comment": None,
                "reason": None,
                "timed_out": False,
            }
        ],
        "pause_path": [1],
        "additional_data": {},
        "error": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    from sqlalchemy import insert

    from engine.db.schema import runs, sessions

    sqlite_db.ensure_schema()
    created = "2026-01-01T00:00:00+00:00"
    with sqlite_db.engine.begin() as conn:
        from datetime import datetime

        at = datetime.fromisoformat(created)
        conn.execute(
            insert(sessions).values(
                session_id="s-legacy", workflow_name="legacy", user_id="U1", created_at=at
            )
        )
        conn.execute(
            insert(runs).values(
                run_id="r-legacy",
                session_id="s-legacy",
                workflow_name="legacy",
                user_id="U1",
                status="paused",
                version=3,
                paused_step_name="deploy",
                paused_at=at,
                expires_at=None,
                created_at=at,
                updated_at=at,
                data=json.dumps(previous_release),
            )
        )
    [paused] = sqlite_db.list_paused_runs()
    assert paused.step_name == "deploy"
    run = wf.get_run("r-legacy")
    assert run is not None and run.is_paused and run.cursor is None
    run.step_requirements[0].confirm(by="alice")
    done = wf.continue_run(run)
    assert done.status is RunStatus.completed
    assert rec.calls == ["deploy", "notify"]
    assert done.content == "notify<deploy<prepare<None>>>"


def test_completed_event_carries_nested_results(sqlite_db: SqliteDb) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[Parallel(Steps(name="s", steps=[echo("a")]), echo("b"), name="p")],
    )
    events = list(wf.run(stream=True))
    completed = events[-1]
    assert isinstance(completed, WorkflowCompletedEvent)
    restored = StepOutput.from_dict(completed.step_results[0].to_dict())
    assert restored.steps is not None and restored.steps[0].steps is not None
    assert restored.steps[0].steps[0].content == "a<None>"
