"""Every kind of human pause on every component that has it, each resolved every way:
confirmation on groups, a Parallel's several requirements, a Router's choice by a person,
output and iteration review, error pauses, timeouts; exactly once across threads and
processes on a nested pause."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import (
    Condition,
    DecisionTooLateError,
    HumanReview,
    Loop,
    ManualClock,
    OnError,
    OnReject,
    Outcome,
    Parallel,
    RequirementsUnresolvedError,
    Router,
    RouterPausedEvent,
    RunNotPausedError,
    RunStatus,
    Step,
    StepErrorPausedEvent,
    StepInput,
    StepOutputReviewPausedEvent,
    StepRequirement,
    Steps,
    UnknownChoiceError,
    Workflow,
    WorkflowConfigError,
    db_from_url,
)
from engine.db.sqlite import SqliteDb
from tests.engine.conftest import Race
from tests.engine.engine_flows import (
    Recorder,
    SideEffects,
    echo,
    gate,
    nested_workflow,
)


# -- confirmation on every group --------------------------------------------------------
@pytest.mark.parametrize("kind", ["steps", "loop", "router", "condition"])
@pytest.mark.parametrize("answer", ["confirm", "reject-skip", "reject-cancel"])
def test_confirmation_before_a_group(sqlite_db: SqliteDb, kind: str, answer: str) -> None:
    rec = Recorder()
    on_reject = "cancel" if answer == "reject-cancel" else "skip"
    common: dict[str, Any] = {
        "name": "g",
        "requires_confirmation": True,
        "confirmation_message": "Go?",
        "on_reject": on_reject,
    }
    group = {
        "steps": lambda: Steps(steps=[echo("inner", rec)], **common),
        "loop": lambda: Loop(steps=[echo("inner", rec)], max_iterations=2, **common),
        "router": lambda: Router(
            choices=[echo("inner", rec)], selector=lambda si: "inner", **common
        ),
        "condition": lambda: Condition(evaluator=True, steps=[echo("inner", rec)], **common),
    }[kind]()
    wf = Workflow(name=f"w_{kind}", db=sqlite_db, steps=[group, echo("after", rec)])
    run = wf.run()
    [req] = run.steps_requiring_confirmation
    assert req.step_name == "g" and req.step_type == group.step_type.value
    assert req.confirmation_message == "Go?" and rec.calls == []
    if answer == "confirm":
        req.confirm(by="alice")
    else:
        req.reject(by="bob")
    run = wf.continue_run(run)
    if answer == "confirm":
        assert run.status is RunStatus.completed
        assert rec.count("inner") == (2 if kind == "loop" else 1) and rec.calls[-1] == "after"
    elif answer == "reject-skip":
        assert run.status is RunStatus.completed and rec.calls == ["after"]
        assert run.step_results[0].skipped
    else:
        assert run.status is RunStatus.cancelled and rec.calls == []


def test_condition_rejection_runs_else_steps_by_default(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    cond = Condition(
        name="c",
        evaluator=True,
        requires_confirmation=True,
        steps=[echo("then", rec)],
        else_steps=[echo("otherwise", rec)],
    )
    assert cond.on_reject is OnReject.else_branch
    wf = Workflow(name="w", db=sqlite_db, steps=[cond])
    run = wf.run()
    run.step_requirements[0].reject(by="bob")
    assert wf.continue_run(run).content == "otherwise<None>"
    run = wf.run()
    run.step_requirements[0].confirm()
    assert wf.continue_run(run).content == "then<None>"
    assert rec.calls == ["otherwise", "then"]


# -- a Parallel's several requirements -------------------------------------------------------
def parallel_workflow(db: Any, rec: Recorder) -> Workflow:
    return Workflow(
        name="fan",
        db=db,
        steps=[
            Parallel(
                gate("a", rec),
                echo("free", rec),
                Steps(name="b", steps=[echo("b_pre", rec), gate("b_gate", rec)]),
                gate("c", rec, on_reject="cancel"),
                name="fan",
            ),
            echo("after", rec),
        ],
    )


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_parallel_pauses_once_with_every_requirement(
    sqlite_db: SqliteDb, order: tuple[int, ...]
) -> None:
    rec = Recorder()
    wf = parallel_workflow(sqlite_db, rec)
    run = wf.run()
    assert run.is_paused
    # The branch that needs no one ran; the three that do wait together.
    assert rec.calls == ["free", "b_pre"]
    reqs = run.step_requirements
    assert [(r.step_name, r.step_path) for r in reqs] == [
        ("a", [0, 0]),
        ("b_gate", [0, 2, 1]),
        ("c", [0, 3]),
    ]
    fresh = parallel_workflow(db_from_url(f"sqlite:///{sqlite_db.db_file}"), rec)
    answers = []
    for i in order:
        req = StepRequirement.from_dict(reqs[i].to_dict())
        req.confirm(by=f"person{i}")
        answers.append(req)
        if len(answers) < 3:
            # Not all answered: refused, and nothing stored.
            with pytest.raises(RequirementsUnresolvedError):
                fresh.continue_run(run_id=run.run_id, step_requirements=list(answers))
            assert wf.get_decisions(run.run_id) == []
    done = fresh.continue_run(run_id=run.run_id, step_requirements=answers)
    assert done.status is RunStatus.completed
    assert sorted(rec.calls) == sorted(["free", "b_pre", "a", "b_gate", "c", "after"])
    assert rec.calls[-1] == "after"
    assert sorted(d.decided_by or "" for d in wf.get_decisions(run.run_id)) == [
        "person0",
        "person1",
        "person2",
    ]
    fan = done.step_results[0]
    assert [s.step_name for s in fan.steps or []] == ["a", "free", "b", "c"]


def test_parallel_branch_rejected_with_cancel_cancels_before_the_others_resume(
    sqlite_db: SqliteDb,
) -> None:
    rec = Recorder()
    wf = parallel_workflow(sqlite_db, rec)
    run = wf.run()
    a, b, c = run.step_requirements
    a.confirm()
    b.confirm()
    c.reject(by="carol", reason="no")
    run = wf.continue_run(run)
    assert run.status is RunStatus.cancelled
    assert run.content == "Run cancelled: step 'c' was rejected by carol: no"
    assert rec.calls == ["free", "b_pre"]  # neither a nor b_gate ran
    assert len(wf.get_decisions(run.run_id)) == 3


def test_parallel_branch_rejected_with_skip(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = parallel_workflow(sqlite_db, rec)
    run = wf.run()
    a, b, c = run.step_requirements
    a.reject()
    b.confirm()
    c.confirm()
    run = wf.continue_run(run)
    assert run.status is RunStatus.completed
    assert "a" not in rec.calls and rec.calls[-1] == "after"
    assert (run.step_results[0].steps or [])[0].skipped


# -- a Router's choice by a person ----------------------------------------------------------
def routed(db: Any, rec: Recorder, *, multiple: bool = False) -> Workflow:
    fast = Step(name="fast", executor=echo("fast", rec).executor, description="the quick path")
    careful = Step(name="careful", executor=echo("careful", rec).executor, description="reviewed")
    return Workflow(
        name="routed",
        db=db,
        steps=[
            Router(
                name="route",
                choices=[fast, careful],
                requires_user_input=True,
                user_input_message="Which path?",
                allow_multiple_selections=multiple,
            ),
            echo("after", rec),
        ],
    )


def test_router_choice_by_a_person(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = routed(sqlite_db, rec)
    events = list(wf.run(stream=True))
    paused = [e for e in events if isinstance(e, RouterPausedEvent)]
    assert len(paused) == 1 and paused[0].available_choices == ["fast", "careful"]
    run = paused[0].run_output
    assert run is not None
    [req] = run.steps_requiring_route
    assert req.available_choices == ["fast", "careful"]
    assert req.choice_descriptions == {"fast": "the quick path", "careful": "reviewed"}
    assert req.user_input_message == "Which path?"
    with pytest.raises(
        UnknownChoiceError, match="no choice 'slow'; choose from: 'fast', 'careful'"
    ):
        req.select("slow")
    assert req.selected_choices is None and req.confirmed is None  # nothing stored
    with pytest.raises(ValueError, match="takes one choice"):
        req.select("fast", "careful")
    with pytest.raises(ValueError, match="does not allow multiple"):
        req.select_multiple(["fast"])
    req.select("careful", by="alice")
    done = wf.continue_run(run)
    assert done.status is RunStatus.completed and rec.calls == ["careful", "after"]
    [decision] = wf.get_decisions(run.run_id)
    assert decision.outcome is Outcome.submitted and decision.values == {
        "selected_choices": ["careful"]
    }


def test_router_multiple_choices_and_rejection(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = routed(sqlite_db, rec, multiple=True)
    run = wf.run()
    run.step_requirements[0].select_multiple(["careful", "fast"])
    assert wf.continue_run(run).content == "after<fast<careful<None>>>"
    run = wf.run()
    run.step_requirements[0].reject(by="bob")
    done = wf.continue_run(run)
    assert done.step_results[0].skipped and done.content == "after<None>"


def test_unknown_choice_from_another_process_stores_nothing(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = routed(sqlite_db, rec)
    run = wf.run()
    forged = StepRequirement.from_dict(run.step_requirements[0].to_dict())
    forged.selected_choices = ["drop_tables"]
    forged.confirmed = True
    with pytest.raises(UnknownChoiceError):
        wf.continue_run(run_id=run.run_id, step_requirements=[forged])
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.is_paused and stored.version == run.version
    assert wf.get_decisions(run.run_id) == [] and rec.calls == []


# -- output review ------------------------------------------------------------------------
def reviewed(db: Any, attempts: list[str | None], **kwargs: Any) -> Workflow:
    def draft(si: StepInput) -> str:
        attempts.append(si.rejection_feedback)
        return f"draft {len(attempts)}"

    return Workflow(
        name="reviewed",
        db=db,
        steps=[
            Step(
                name="draft",
                executor=draft,
                requires_output_review=True,
                output_review_message="Publish this?",
                **kwargs,
            ),
            Step(name="publish", executor=lambda si: f"published {si.previous_step_content}"),
        ],
    )


def test_output_review_approve_and_edit(sqlite_db: SqliteDb) -> None:
    attempts: list[str | None] = []
    wf = reviewed(sqlite_db, attempts)
    events = list(wf.run(stream=True))
    review = [e for e in events if isinstance(e, StepOutputReviewPausedEvent)]
    assert len(review) == 1 and review[0].step_output is not None
    run = review[0].run_output
    assert run is not None
    [req] = run.steps_requiring_output_review
    assert req.step_output is not None and req.step_output.content == "draft 1"
    assert req.output_review_message == "Publish this?" and req.is_post_execution
    req.confirm(by="alice")
    assert wf.continue_run(run).content == "published draft 1"
    run = wf.run()
    run.step_requirements[0].edit("hand-written", by="alice")
    done = wf.continue_run(run)
    assert done.content == "published hand-written"
    assert wf.get_decisions(run.run_id)[0].values == {"edited_output": "hand-written"}
    with pytest.raises(ValueError, match="output review only"):
        StepRequirement(step_name="x").edit("y")


def test_output_review_retry_with_feedback_up_to_the_limit(sqlite_db: SqliteDb) -> None:
    attempts: list[str | None] = []
    wf = reviewed(sqlite_db, attempts, on_reject=OnReject.retry, hitl_max_retries=2)
    run = wf.run()
    for n in range(2):
        run.step_requirements[0].reject(feedback=f"shorter please {n}")
        run = wf.continue_run(run)
        assert run.is_paused and run.step_requirements[0].retry_count == n + 1
    assert attempts == [None, "shorter please 0", "shorter please 1"]
    # The limit is reached: the next rejection skips the step.
    run.step_requirements[0].reject(feedback="still no")
    done = wf.continue_run(run)
    assert done.status is RunStatus.completed
    assert done.step_results[0].skipped and done.content == "published None"
    assert len(attempts) == 3


def test_output_review_reject_skip_cancel_and_predicate(sqlite_db: SqliteDb) -> None:
    attempts: list[str | None] = []
    wf = reviewed(sqlite_db, attempts, on_reject="cancel")
    run = wf.run()
    run.step_requirements[0].reject(reason="bad")
    assert wf.continue_run(run).status is RunStatus.cancelled
    only_long = Workflow(
        name="pred",
        db=sqlite_db,
        steps=[
            Step(
                name="s",
                executor=lambda si: si.input,
                requires_output_review=lambda out: len(str(out.content)) > 5,
            )
        ],
    )
    assert only_long.run("short").status is RunStatus.completed
    assert only_long.run("much longer").is_paused


def test_loop_iteration_review(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Loop(
                name="l",
                steps=[echo("s", rec)],
                max_iterations=3,
                requires_iteration_review=True,
                iteration_review_message="Another round?",
            )
        ],
    )
    run = wf.run()
    [req] = run.steps_requiring_output_review
    assert req.iteration == 1 and req.output_review_message == "Another round?"
    req.confirm()
    run = wf.continue_run(run)
    assert run.is_paused and run.step_requirements[0].iteration == 2
    run.step_requirements[0].reject()  # stop here, keep what the loop made
    done = wf.continue_run(run)
    assert done.status is RunStatus.completed and rec.count("s") == 2
    run = wf.run()
    run.step_requirements[0].edit("edited")
    run = wf.continue_run(run)
    run.step_requirements[0].confirm()
    run = wf.continue_run(run)
    run.step_requirements[0].confirm()
    done = wf.continue_run(run)
    assert done.status is RunStatus.completed
    assert (done.step_results[0].steps or [])[0].content == "edited"


# -- errors --------------------------------------------------------------------------------
def flaky_workflow(db: Any, failures: int, on_error: Any, rec: Recorder) -> Workflow:
    def flaky(si: StepInput) -> str:
        rec.record("flaky")
        if rec.count("flaky") <= failures:
            raise ConnectionError(f"attempt {rec.count('flaky')} failed")
        return "fetched"

    return Workflow(
        name="flaky",
        db=db,
        steps=[
            Steps(name="g", steps=[Step(name="fetch", executor=flaky, on_error=on_error)]),
            echo("after", rec),
        ],
    )


def test_on_error_fail_is_the_default_and_skip_goes_on(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    assert Step(name="x", executor=lambda si: 1).on_error is OnError.fail
    failed = flaky_workflow(sqlite_db, 1, None, rec).run()
    assert failed.status is RunStatus.error and "attempt 1 failed" in str(failed.error)
    rec2 = Recorder()
    skipped = flaky_workflow(sqlite_db, 1, "skip", rec2).run()
    assert skipped.status is RunStatus.completed and rec2.calls == ["flaky", "after"]
    inner = (skipped.step_results[0].steps or [])[0]
    assert inner.skipped and not inner.success and "attempt 1 failed" in str(inner.error)


def test_on_error_pause_retry_then_skip(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = flaky_workflow(sqlite_db, 2, OnError.pause, rec)
    events = list(wf.run(stream=True))
    paused = [e for e in events if isinstance(e, StepErrorPausedEvent)]
    assert len(paused) == 1 and paused[0].error_type == "ConnectionError"
    run = paused[0].run_output
    assert run is not None
    [req] = run.steps_with_errors
    assert run.error_requirements == [req]
    assert "attempt 1 failed" in str(req.error_message) and req.retry_count == 0
    with pytest.raises(ValueError, match="of kind error"):
        StepRequirement(step_name="x").retry()
    req.retry(by="alice")
    run = wf.continue_run(run)
    assert run.is_paused and run.step_requirements[0].retry_count == 1
    run.step_requirements[0].retry()
    done = wf.continue_run(run)
    assert done.status is RunStatus.completed and rec.calls == ["flaky"] * 3 + ["after"]
    rec2 = Recorder()
    wf2 = flaky_workflow(sqlite_db, 5, "pause", rec2)
    run = wf2.run()
    run.step_requirements[0].skip(by="bob")
    done = wf2.continue_run(run)
    assert done.status is RunStatus.completed and rec2.calls == ["flaky", "after"]
    assert [d.outcome for d in wf2.get_decisions(run.run_id)] == [Outcome.rejected]


# -- timeouts ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("on_timeout", "status", "ran"),
    [
        ("approve", RunStatus.completed, True),
        ("skip", RunStatus.completed, False),
        ("cancel", RunStatus.cancelled, False),
    ],
)
def test_hitl_timeout_on_a_nested_pause(
    sqlite_db: SqliteDb, clock: ManualClock, on_timeout: str, status: RunStatus, ran: bool
) -> None:
    rec = Recorder()
    wf = Workflow(
        name="w",
        db=sqlite_db,
        clock=clock,
        steps=[
            Steps(name="g", steps=[gate("deep", rec, hitl_timeout=60, on_timeout=on_timeout)]),
            echo("after", rec),
        ],
    )
    run = wf.run()
    req = run.step_requirements[0]
    assert req.expires_at == clock.now() + timedelta(seconds=60)
    clock.advance(timedelta(seconds=61))
    [expired] = wf.expire_due_runs()
    assert expired.status is status
    assert (rec.count("deep") == 1) is ran
    [decision] = wf.get_decisions(run.run_id)
    assert decision.outcome is Outcome.timed_out


def test_hitl_timeout_defaults_to_cancel_and_pause_timeout_to_on_reject() -> None:
    assert gate("a", hitl_timeout=5).on_timeout is not None
    assert gate("a", hitl_timeout=5).on_timeout.value == "cancel"
    assert gate("a", pause_timeout=timedelta(seconds=5)).on_timeout is None
    with pytest.raises(WorkflowConfigError, match="not both"):
        gate("a", hitl_timeout=5, pause_timeout=5)


def test_a_late_decision_is_refused_before_any_timer_fires(
    sqlite_db: SqliteDb, clock: ManualClock
) -> None:
    rec = Recorder()
    wf = Workflow(
        name="w",
        db=sqlite_db,
        clock=clock,
        steps=[
            Loop(
                name="l",
                max_iterations=1,
                steps=[gate("deep", rec, pause_timeout=timedelta(minutes=5))],
            )
        ],
    )
    run = wf.run()
    clock.advance(timedelta(minutes=5))
    run.step_requirements[0].confirm(by="late-larry")
    with pytest.raises(
        DecisionTooLateError, match=r"after its deadline \(2026-01-01T00:05:00\+00:00\)"
    ) as info:
        wf.continue_run(run)
    assert info.value.step_name == "deep"
    assert rec.calls == [] and wf.get_decisions(run.run_id) == []
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.is_paused and stored.version == run.version
    # The timeout still applies, once.
    assert wf.expire_run(run.run_id).status is RunStatus.completed
    assert [d.outcome for d in wf.get_decisions(run.run_id)] == [Outcome.timed_out]


# -- HumanReview, agno's grouped form ----------------------------------------------------------
def test_human_review_groups_the_settings(sqlite_db: SqliteDb, clock: ManualClock) -> None:
    step = Step(
        name="s",
        executor=lambda si: "x",
        human_review=HumanReview(
            requires_confirmation=True, confirmation_message="Sure?", timeout=30, on_timeout="skip"
        ),
    )
    assert step.requires_confirmation and step.confirmation_message == "Sure?"
    assert step.pause_timeout == timedelta(seconds=30) and step.on_timeout is not None
    loop = Loop(
        name="l", steps=[echo("a")], human_review=HumanReview(requires_iteration_review=True)
    )
    assert loop.requires_iteration_review
    with pytest.raises(WorkflowConfigError, match="requires_output_review not supported"):
        Loop(name="l", steps=[echo("a")], human_review=HumanReview(requires_output_review=True))
    with pytest.raises(WorkflowConfigError, match="requires_iteration_review not supported"):
        Step(
            name="s",
            executor=lambda si: 1,
            human_review=HumanReview(requires_iteration_review=True),
        )
    wf = Workflow(name="w", db=sqlite_db, clock=clock, steps=[step])
    run = wf.run()
    clock.advance(timedelta(seconds=30))
    assert wf.expire_run(run.run_id).step_results[0].skipped


# -- exactly once on a nested pause -------------------------------------------------------------
def test_threads_race_on_a_nested_pause(db_url: str, tmp_path: Path) -> None:
    rec = Recorder()
    wf = nested_workflow(db_url, rec)
    run = wf.run("go")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def contender(who: str) -> None:
        mine = nested_workflow(db_url, rec)
        copy = mine.get_run(run.run_id)
        assert copy is not None
        copy.step_requirements[0].confirm(by=who)
        barrier.wait()
        try:
            mine.continue_run(copy)
            outcomes.append("won")
        except RunNotPausedError:
            outcomes.append("lost")
        finally:
            mine.db.dispose()

    threads = [threading.Thread(target=contender, args=(f"p{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    assert rec.calls == ["gate", "work"]  # the rest of the round ran once; round two waits
    assert len(wf.get_decisions(run.run_id)) == 1
    wf.db.dispose()


def test_processes_race_on_a_nested_pause(db_url: str, tmp_path: Path, race: Race) -> None:
    effects = SideEffects(tmp_path / "effects.log")
    wf = nested_workflow(db_url, effects)
    run = wf.run("go")
    results = race(
        {
            who: ("race_nested", db_url, str(effects.path), run.run_id, who)
            for who in ("alice", "bob")
        }
    )
    assert sorted(r["result"] for r in results) == ["lost", "won"], results
    winner = next(r["who"] for r in results if r["result"] == "won")
    assert [r["decided_by"] for r in results if r["result"] == "lost"] == [winner]
    assert effects.lines() == ["gate", "work"]
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.is_paused  # the second round's pause
    wf.db.dispose()
