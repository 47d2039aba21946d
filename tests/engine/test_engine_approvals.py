"""Approval policies: ``approvals=N`` distinct approvers, vetoes and ``reject_quorum``,
``excluded_deciders`` (the requester, ``distinct_from`` earlier steps), progress on the
requirement, every vote in the audit trail, and the last approval claiming the pause
exactly once under threads and processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import (
    AlreadyDecidedError,
    DeciderNotAllowedError,
    Decision,
    Loop,
    ManualClock,
    Outcome,
    Parallel,
    RequirementsUnresolvedError,
    RunNotPausedError,
    RunStatus,
    Step,
    StepApprovalProgressEvent,
    StepInput,
    StepOutput,
    StepRequirement,
    Steps,
    Workflow,
    WorkflowConfigError,
)
from engine.db.base import BaseDb
from engine.db.sqlite import SqliteDb
from engine.run.workflow import WorkflowRunOutput
from tests.engine.conftest import Race
from tests.engine.engine_flows import Recorder, SideEffects, approval_workflow, echo, gate


def quorum_workflow(db: BaseDb, rec: Recorder, **policy: Any) -> Workflow:
    return Workflow(name="q", db=db, steps=[gate("deploy", rec, **policy), echo("after", rec)])


def vote(wf: Workflow, run_id: str, who: str, *, approve: bool = True) -> WorkflowRunOutput:
    """What a front-end in any process does for one person's click."""
    answer = StepRequirement(step_name="deploy")
    if approve:
        answer.confirm(by=who, comment=f"ok from {who}")
    else:
        answer.reject(by=who, reason=f"no from {who}")
    return wf.continue_run(run_id=run_id, step_requirements=[answer])


# What the audit trail says of each decision: its outcome, or that it was one vote.
APPROVAL_VOTE = "approval vote"
REJECTION_VOTE = "rejection vote"


def kind(decision: Decision) -> str:
    if decision.is_vote:
        return APPROVAL_VOTE if decision.outcome is Outcome.confirmed else REJECTION_VOTE
    return decision.outcome.value


def outcomes(wf: Workflow, run_id: str) -> list[tuple[str | None, str]]:
    return [(d.decided_by, kind(d)) for d in wf.get_decisions(run_id)]


# -- quorum ------------------------------------------------------------------------------
@pytest.mark.parametrize("order", list(itertools.permutations(["alice", "bob", "carol"])))
def test_quorum_is_reached_at_the_third_distinct_approver_in_any_order(
    sqlite_db: SqliteDb, order: tuple[str, str, str]
) -> None:
    rec = Recorder()
    wf = quorum_workflow(sqlite_db, rec, approvals=3)
    run = wf.run("x", user_id="U0")
    req = run.step_requirements[0]
    assert (req.approvals_required, req.approvals_needed, req.approved_by) == (3, 3, [])
    first, second, third = order
    after_one = vote(wf, run.run_id, first)
    assert after_one.is_paused and rec.calls == []
    assert after_one.step_requirements[0].approved_by == [first]
    assert after_one.step_requirements[0].approvals_needed == 2
    after_two = vote(wf, run.run_id, second)
    assert after_two.is_paused and after_two.step_requirements[0].approvals_needed == 1
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.step_requirements[0].approved_by == [first, second]
    done = vote(wf, run.run_id, third)
    assert done.status is RunStatus.completed
    assert rec.calls == ["deploy", "after"]
    assert outcomes(wf, run.run_id) == [
        (first, APPROVAL_VOTE),
        (second, APPROVAL_VOTE),
        (third, Outcome.confirmed),
    ]
    assert [d.comment for d in wf.get_decisions(run.run_id)] == [f"ok from {who}" for who in order]
    one, two, last = wf.get_decisions(run.run_id)
    assert one.values == {
        "vote": True,
        "approved_by": [first],
        "rejected_by": [],
        "approvals_needed": 2,
        "rejections_needed": 1,
    }
    assert two.values is not None and two.values["approvals_needed"] == 1
    assert not last.is_vote and last.values is None
    assert "one vote" in one.describe() and "one vote" not in last.describe()
    history = done.requirement_history[-1]
    assert history.approved_by == list(order) and history.approvals_needed == 0


def test_the_in_memory_run_object_carries_the_progress_between_votes(
    sqlite_db: SqliteDb,
) -> None:
    rec = Recorder()
    wf = quorum_workflow(sqlite_db, rec, approvals=2)
    run = wf.run()
    run.step_requirements[0].confirm(by="alice")
    events = list(wf.continue_run(run, stream=True, stream_events=True))
    [progress] = [e for e in events if isinstance(e, StepApprovalProgressEvent)]
    assert (progress.approved_by, progress.approvals_needed) == (["alice"], 1)
    assert run.is_paused and run.step_requirements[0].approved_by == ["alice"]
    assert run.step_requirements[0].confirmed is None  # open for the next person
    run.step_requirements[0].confirm(by="bob")
    assert wf.continue_run(run).status is RunStatus.completed
    assert rec.calls == ["deploy", "after"]


def test_a_vote_leaves_the_run_paused_and_unleased(sqlite_db: SqliteDb) -> None:
    from sqlalchemy import select

    from engine.db.schema import runs

    wf = quorum_workflow(sqlite_db, Recorder(), approvals=2)
    run = wf.run()
    vote(wf, run.run_id, "alice")
    with sqlite_db.engine.connect() as conn:
        row = conn.execute(
            select(
                runs.c.status, runs.c.version, runs.c.lease_owner, runs.c.paused_step_name
            ).where(runs.c.run_id == run.run_id)
        ).one()
    assert (row.status, row.version, row.lease_owner, row.paused_step_name) == (
        "paused",
        2,
        None,
        "deploy",
    )
    assert [p.run_id for p in wf.list_paused_runs()] == [run.run_id]


def test_the_same_person_twice_counts_once_and_is_told_so(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = quorum_workflow(sqlite_db, rec, approvals=2)
    run = wf.run()
    vote(wf, run.run_id, "alice")
    with pytest.raises(AlreadyDecidedError) as info:
        vote(wf, run.run_id, "alice")
    assert info.value.decision == "approved" and info.value.decided_by == "alice"
    assert info.value.approvals_needed == 1 and info.value.approved_by == ["alice"]
    with pytest.raises(AlreadyDecidedError) as again:
        vote(wf, run.run_id, "alice", approve=False)  # changing one's mind is not a 2nd vote
    assert again.value.decision == "approved"
    assert outcomes(wf, run.run_id) == [("alice", APPROVAL_VOTE)]
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.is_paused
    assert stored.step_requirements[0].approved_by == ["alice"]


def test_an_approval_without_a_person_is_refused_where_people_are_counted(
    sqlite_db: SqliteDb,
) -> None:
    wf = quorum_workflow(sqlite_db, Recorder(), approvals=2)
    run = wf.run()
    run.step_requirements[0].confirm()
    with pytest.raises(DeciderNotAllowedError, match="by="):
        wf.continue_run(run)
    assert wf.get_decisions(run.run_id) == []


def test_continuing_without_any_answer_still_says_what_is_missing(sqlite_db: SqliteDb) -> None:
    wf = quorum_workflow(sqlite_db, Recorder(), approvals=2)
    run = wf.run()
    vote(wf, run.run_id, "alice")
    stored = wf.get_run(run.run_id)
    assert stored is not None
    with pytest.raises(RequirementsUnresolvedError, match="1 more approval"):
        wf.continue_run(stored)


# -- veto and reject quorum -----------------------------------------------------------------
@pytest.mark.parametrize("on_reject", ["skip", "cancel"])
def test_one_rejection_vetoes_at_once(sqlite_db: SqliteDb, on_reject: str) -> None:
    rec = Recorder()
    wf = quorum_workflow(sqlite_db, rec, approvals=3, on_reject=on_reject)
    run = wf.run()
    vote(wf, run.run_id, "alice")
    done = vote(wf, run.run_id, "bob", approve=False)
    expected = RunStatus.completed if on_reject == "skip" else RunStatus.cancelled
    assert done.status is expected
    assert rec.calls == (["after"] if on_reject == "skip" else [])
    assert outcomes(wf, run.run_id) == [
        ("alice", APPROVAL_VOTE),
        ("bob", Outcome.rejected),
    ]
    assert wf.get_decisions(run.run_id)[-1].comment == "no from bob"
    with pytest.raises(RunNotPausedError) as info:
        vote(wf, run.run_id, "carol")
    assert info.value.decided_by == "bob"


def test_reject_quorum_counts_rejections_until_it_is_reached(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = quorum_workflow(sqlite_db, rec, approvals=3, reject_quorum=2)
    run = wf.run()
    one = vote(wf, run.run_id, "alice", approve=False)
    assert one.is_paused
    req = one.step_requirements[0]
    assert (req.rejected_by, req.rejections_needed, req.approvals_needed) == (["alice"], 1, 3)
    vote(wf, run.run_id, "bob")
    done = vote(wf, run.run_id, "carol", approve=False)
    assert done.status is RunStatus.completed and rec.calls == ["after"]  # skipped
    assert outcomes(wf, run.run_id) == [
        ("alice", REJECTION_VOTE),
        ("bob", APPROVAL_VOTE),
        ("carol", Outcome.rejected),
    ]


def test_approvals_can_still_win_under_a_reject_quorum(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = quorum_workflow(sqlite_db, rec, approvals=2, reject_quorum=2)
    run = wf.run()
    vote(wf, run.run_id, "alice", approve=False)
    vote(wf, run.run_id, "bob")
    done = vote(wf, run.run_id, "carol")
    assert done.status is RunStatus.completed and rec.calls == ["deploy", "after"]
    assert outcomes(wf, run.run_id)[-1] == ("carol", Outcome.confirmed)


# -- who may decide --------------------------------------------------------------------------
@pytest.mark.parametrize("approvals", [1, 2])
def test_the_requester_is_excluded_with_allow_requester_false(
    sqlite_db: SqliteDb, approvals: int
) -> None:
    rec = Recorder()
    wf = quorum_workflow(sqlite_db, rec, approvals=approvals, allow_requester=False)
    run = wf.run("x", user_id="U_REQ")
    assert run.step_requirements[0].excluded_deciders == ["U_REQ"]
    with pytest.raises(DeciderNotAllowedError) as info:
        vote(wf, run.run_id, "U_REQ")
    assert info.value.decided_by == "U_REQ"
    assert wf.get_decisions(run.run_id) == []
    for who in ["alice", "bob"][:approvals]:
        last = vote(wf, run.run_id, who)
    assert last.status is RunStatus.completed and rec.calls == ["deploy", "after"]


def test_the_requester_may_decide_by_default(sqlite_db: SqliteDb) -> None:
    wf = quorum_workflow(sqlite_db, Recorder())
    run = wf.run("x", user_id="U_REQ")
    assert run.step_requirements[0].excluded_deciders == []
    assert vote(wf, run.run_id, "U_REQ").status is RunStatus.completed


def four_eyes_workflow(db: BaseDb, rec: Recorder, *, build_approvals: int = 1) -> Workflow:
    return Workflow(
        name="four_eyes",
        db=db,
        steps=[
            gate("build_approval", rec, approvals=build_approvals),
            Steps(
                name="release",
                requires_confirmation=True,
                distinct_from=["build_approval"],
                steps=[echo("deploy", rec)],
            ),
        ],
    )


def answer(wf: Workflow, run_id: str, step: str, who: str) -> WorkflowRunOutput:
    req = StepRequirement(step_name=step)
    req.confirm(by=who)
    return wf.continue_run(run_id=run_id, step_requirements=[req])


def test_four_eyes_across_steps_excludes_the_earlier_decider(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = four_eyes_workflow(sqlite_db, rec)
    run = wf.run("x", user_id="U_REQ")
    second = answer(wf, run.run_id, "build_approval", "alice")
    assert second.paused_step_name == "release"
    assert second.step_requirements[0].excluded_deciders == ["alice"]
    with pytest.raises(DeciderNotAllowedError):
        answer(wf, run.run_id, "release", "alice")
    done = answer(wf, run.run_id, "release", "bob")
    assert done.status is RunStatus.completed and rec.calls == ["build_approval", "deploy"]
    assert [d.decided_by for d in wf.get_decisions(run.run_id)] == ["alice", "bob"]


def test_four_eyes_excludes_every_approver_of_an_earlier_quorum(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = four_eyes_workflow(sqlite_db, rec, build_approvals=2)
    run = wf.run()
    answer(wf, run.run_id, "build_approval", "alice")
    second = answer(wf, run.run_id, "build_approval", "bob")
    assert sorted(second.step_requirements[0].excluded_deciders) == ["alice", "bob"]
    for who in ("alice", "bob"):
        with pytest.raises(DeciderNotAllowedError):
            answer(wf, run.run_id, "release", who)
    assert answer(wf, run.run_id, "release", "carol").status is RunStatus.completed


def test_distinct_from_must_name_steps_of_the_workflow(sqlite_db: SqliteDb) -> None:
    with pytest.raises(WorkflowConfigError, match="build_aproval"):
        Workflow(
            name="typo",
            db=sqlite_db,
            steps=[gate("build_approval"), gate("release", distinct_from=["build_aproval"])],
        )


# -- output review, groups, deadlines, async -------------------------------------------------------
def test_an_output_review_needs_its_approvals_and_a_rejection_retries(
    sqlite_db: SqliteDb,
) -> None:
    attempts: list[str | None] = []

    def draft(step_input: StepInput) -> StepOutput:
        attempts.append(step_input.additional_data.get("rejection_feedback"))
        return StepOutput(content=f"draft {len(attempts)}")

    wf = Workflow(
        name="review",
        db=sqlite_db,
        steps=[
            Step(
                name="deploy",
                executor=draft,
                requires_output_review=True,
                on_reject="retry",
                approvals=2,
            )
        ],
    )
    run = wf.run()
    assert run.step_requirements[0].approvals_required == 2
    assert vote(wf, run.run_id, "alice").is_paused
    retried = vote(wf, run.run_id, "bob", approve=False)  # a veto: the step runs again
    assert retried.is_paused and attempts == [None, "no from bob"]
    assert retried.step_requirements[0].approved_by == []  # a fresh review, fresh votes
    vote(wf, run.run_id, "alice")
    done = vote(wf, run.run_id, "bob")
    assert done.status is RunStatus.completed and done.content == "draft 2"


def test_a_group_confirmation_takes_approvals_too(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = Workflow(
        name="g",
        db=sqlite_db,
        steps=[
            Steps(name="deploy", requires_confirmation=True, approvals=2, steps=[echo("a", rec)])
        ],
    )
    run = wf.run()
    assert vote(wf, run.run_id, "alice").is_paused and rec.calls == []
    assert vote(wf, run.run_id, "bob").status is RunStatus.completed and rec.calls == ["a"]


def parallel_workflow(db: BaseDb, rec: Recorder) -> Workflow:
    """deploy (2 approvals) beside notify (1), then end."""
    return Workflow(
        name="p",
        db=db,
        steps=[Parallel(gate("deploy", rec, approvals=2), gate("notify", rec)), echo("end", rec)],
    )


def test_a_parallel_pause_resolves_when_its_quorum_and_its_other_branch_are_answered(
    sqlite_db: SqliteDb,
) -> None:
    rec = Recorder()
    wf = parallel_workflow(sqlite_db, rec)
    run = wf.run()
    assert [r.approvals_required for r in run.step_requirements] == [2, 1]
    deploy, notify = run.step_requirements
    deploy.confirm(by="alice")
    notify.confirm(by="alice")
    after_one = wf.continue_run(run)
    assert after_one.is_paused and rec.calls == []
    kept = wf.get_run(run.run_id)
    assert kept is not None and kept.step_requirements[1].confirmed is True  # kept, not lost
    done = vote(wf, run.run_id, "bob")
    assert done.status is RunStatus.completed
    assert sorted(rec.calls) == ["deploy", "end", "notify"]
    assert [(d.step_name, d.decided_by, kind(d)) for d in wf.get_decisions(run.run_id)] == [
        ("deploy", "alice", APPROVAL_VOTE),
        ("deploy", "bob", "confirmed"),
        ("notify", "alice", "confirmed"),
    ]


def test_a_step_whose_quorum_is_reached_takes_no_more_votes_while_the_pause_waits(
    sqlite_db: SqliteDb,
) -> None:
    rec = Recorder()
    wf = parallel_workflow(sqlite_db, rec)
    run = wf.run()
    vote(wf, run.run_id, "alice")
    waiting = vote(wf, run.run_id, "bob")  # deploy's quorum: the pause waits for notify
    assert waiting.is_paused and waiting.step_requirements[0].quorum_reached
    with pytest.raises(AlreadyDecidedError, match="already approved by alice, bob") as info:
        vote(wf, run.run_id, "carol")
    assert info.value.decided_by == "carol" and info.value.approvals_needed == 0
    notify = StepRequirement(step_name="notify")
    notify.confirm(by="carol")
    done = wf.continue_run(run_id=run.run_id, step_requirements=[notify])
    assert done.status is RunStatus.completed
    assert sorted(rec.calls) == ["deploy", "end", "notify"]
    assert [(d.step_name, d.decided_by, kind(d)) for d in wf.get_decisions(run.run_id)] == [
        ("deploy", "alice", APPROVAL_VOTE),
        ("deploy", "bob", "confirmed"),
        ("notify", "carol", "confirmed"),
    ]


def test_a_loop_iteration_review_takes_approvals(sqlite_db: SqliteDb) -> None:
    rec = Recorder()
    wf = Workflow(
        name="l",
        db=sqlite_db,
        steps=[
            Loop(
                name="deploy",
                steps=[echo("round", rec)],
                max_iterations=2,
                requires_iteration_review=True,
                approvals=2,
            )
        ],
    )
    run = wf.run()
    assert run.step_requirements[0].approvals_required == 2
    assert vote(wf, run.run_id, "alice").is_paused and rec.calls == ["round"]
    second_round = vote(wf, run.run_id, "bob")
    assert second_round.is_paused and rec.calls == ["round", "round"]
    assert second_round.step_requirements[0].approved_by == []


def test_a_deadline_resolves_a_pause_with_votes_recorded(
    sqlite_db: SqliteDb, clock: ManualClock
) -> None:
    rec = Recorder()
    wf = Workflow(
        name="t",
        db=sqlite_db,
        clock=clock,
        steps=[gate("deploy", rec, approvals=2, pause_timeout=timedelta(minutes=5))],
    )
    run = wf.run()
    vote(wf, run.run_id, "alice")
    clock.advance(timedelta(minutes=6))
    [expired] = wf.expire_due_runs()
    assert expired.status is RunStatus.completed and rec.calls == []  # skipped
    assert [o for _, o in outcomes(wf, run.run_id)] == [APPROVAL_VOTE, Outcome.timed_out]


def after_the_first_run_read(
    db: BaseDb, action: Callable[[], WorkflowRunOutput]
) -> list[WorkflowRunOutput]:
    """Run ``action`` (another process's vote) once, right after ``db`` first reads a run:
    between a drive's load and its write. Returns where the action's result goes."""
    from sqlalchemy import event

    landed: list[WorkflowRunOutput] = []

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not landed and "FROM wf_runs" in statement and "wf_runs.data" in statement:
            landed.append(action())

    event.listen(db.engine, "after_cursor_execute", hook)
    return landed


def test_the_last_two_approvals_at_once_one_tallies_again_and_continues(
    db_file: Path,
) -> None:
    """Alice loads the run (one vote of three in); before her write, Bob's vote lands.
    Both thought they were second: Alice's write loses, she tallies again on the fresh
    run, is third, and runs the step — once; no vote lost, the pause not left open."""

    rec = Recorder()
    alice_db, bob_db = SqliteDb(db_file=db_file), SqliteDb(db_file=db_file)
    alice_wf = quorum_workflow(alice_db, rec, approvals=3)
    bob_wf = quorum_workflow(bob_db, rec, approvals=3)
    run = alice_wf.run()
    vote(alice_wf, run.run_id, "carol")
    landed = after_the_first_run_read(alice_db, lambda: vote(bob_wf, run.run_id, "bob"))
    done = vote(alice_wf, run.run_id, "alice")
    assert landed[0].is_paused and landed[0].step_requirements[0].approved_by == ["carol", "bob"]
    assert done.status is RunStatus.completed and rec.calls == ["deploy", "after"]
    assert outcomes(alice_wf, run.run_id) == [
        ("carol", APPROVAL_VOTE),
        ("bob", APPROVAL_VOTE),
        ("alice", Outcome.confirmed),
    ]
    assert done.requirement_history[-1].approved_by == ["carol", "bob", "alice"]
    alice_db.dispose()
    bob_db.dispose()


def test_a_vote_landing_between_the_deadlines_load_and_claim_does_not_stop_it(
    db_file: Path,
) -> None:
    """The timer loads the run; before it claims, a vote (given before the deadline, in
    another process) lands and moves the version. The timer tallies again and decides."""

    rec = Recorder()
    start = ManualClock()
    steps = [gate("deploy", rec, approvals=3, pause_timeout=timedelta(minutes=5))]
    voter_db, timer_db = SqliteDb(db_file=db_file), SqliteDb(db_file=db_file)
    voters = Workflow(name="q", db=voter_db, clock=start, steps=steps)
    timer = Workflow(
        name="q", db=timer_db, clock=ManualClock(start.now() + timedelta(minutes=6)), steps=steps
    )
    run = voters.run()
    vote(voters, run.run_id, "alice")
    landed = after_the_first_run_read(timer_db, lambda: vote(voters, run.run_id, "bob"))
    done = timer.expire_run(run.run_id)
    assert len(landed) == 1 and landed[0].is_paused
    assert done.status is RunStatus.completed and rec.calls == []
    assert outcomes(voters, run.run_id) == [
        ("alice", APPROVAL_VOTE),
        ("bob", APPROVAL_VOTE),
        ("engine:timeout", Outcome.timed_out),
    ]
    voter_db.dispose()
    timer_db.dispose()


def test_votes_through_the_async_api(sqlite_db: SqliteDb) -> None:
    from tests.engine.engine_flows import run_async

    rec = Recorder()
    wf = quorum_workflow(sqlite_db, rec, approvals=2)
    run = wf.run()

    async def both() -> tuple[WorkflowRunOutput, WorkflowRunOutput]:
        first = StepRequirement(step_name="deploy")
        first.confirm(by="alice")
        one = await wf.acontinue_run(run_id=run.run_id, step_requirements=[first])
        second = StepRequirement(step_name="deploy")
        second.confirm(by="bob")
        two = await wf.acontinue_run(run_id=run.run_id, step_requirements=[second])
        return one, two

    one, two = run_async(both())
    assert one.is_paused and two.status is RunStatus.completed
    assert rec.calls == ["deploy", "after"]


@pytest.mark.parametrize(
    "policy", [{"approvals": 0}, {"reject_quorum": 0}, {"approvals": True}, {"approvals": "2"}]
)
def test_bad_policies_are_refused(policy: dict[str, Any]) -> None:
    with pytest.raises(WorkflowConfigError):
        gate("deploy", **policy)


def test_a_step_asking_for_input_takes_it_from_one_person() -> None:
    with pytest.raises(WorkflowConfigError, match="one person"):
        Step(name="s", executor=lambda si: 1, requires_user_input=True, approvals=2)


# -- exactly once under races ----------------------------------------------------------------
def race_threads(
    wf: Workflow, run_id: str, voters: list[str], *, barrier: threading.Barrier | None = None
) -> list[Any]:
    """Every voter approves at the same moment, from its own thread."""
    barrier = barrier or threading.Barrier(len(voters))
    results: list[Any] = [None] * len(voters)

    def one(i: int, who: str) -> None:
        answer = StepRequirement(step_name="deploy")
        answer.confirm(by=who)
        barrier.wait()
        try:
            results[i] = wf.continue_run(run_id=run_id, step_requirements=[answer]).status
        except (RunNotPausedError, AlreadyDecidedError) as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i, w)) for i, w in enumerate(voters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in results), results  # a thread died of something else
    return results


def test_twenty_threads_all_needed_every_vote_recorded_one_continuation(
    any_db: BaseDb,
) -> None:
    rec = Recorder()
    voters = [f"U{i:02d}" for i in range(20)]
    wf = quorum_workflow(any_db, rec, approvals=20)
    run = wf.run()
    results = race_threads(wf, run.run_id, voters)
    assert results.count(RunStatus.completed) == 1
    assert results.count(RunStatus.paused) == 19
    assert rec.calls == ["deploy", "after"]
    decisions = wf.get_decisions(run.run_id)
    assert sorted(d.decided_by or "" for d in decisions) == voters
    assert [kind(d) for d in decisions] == [APPROVAL_VOTE] * 19 + [Outcome.confirmed]
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.status is RunStatus.completed


def test_twenty_threads_race_the_last_approval(any_db: BaseDb) -> None:
    rec = Recorder()
    wf = quorum_workflow(any_db, rec, approvals=3)
    run = wf.run()
    vote(wf, run.run_id, "first")
    voters = [f"U{i:02d}" for i in range(20)]
    results = race_threads(wf, run.run_id, voters)
    # The second approval and the third land; everyone after them finds the pause resolved.
    assert results.count(RunStatus.completed) == 1
    assert results.count(RunStatus.paused) == 1
    assert sum(isinstance(r, RunNotPausedError) for r in results) == 18
    assert rec.calls == ["deploy", "after"]
    decisions = wf.get_decisions(run.run_id)
    assert [kind(d) for d in decisions] == [
        APPROVAL_VOTE,
        APPROVAL_VOTE,
        Outcome.confirmed,
    ]
    winner = voters[results.index(RunStatus.completed)]
    second = voters[results.index(RunStatus.paused)]
    assert [d.decided_by for d in decisions] == ["first", second, winner]


def test_one_person_clicking_in_ten_places_at_once_counts_once(any_db: BaseDb) -> None:
    rec = Recorder()
    wf = quorum_workflow(any_db, rec, approvals=2)
    run = wf.run()
    results = race_threads(wf, run.run_id, ["alice"] * 10)
    assert results.count(RunStatus.paused) == 1
    assert sum(isinstance(r, AlreadyDecidedError) for r in results) == 9
    assert outcomes(wf, run.run_id) == [("alice", APPROVAL_VOTE)]
    assert vote(wf, run.run_id, "bob").status is RunStatus.completed
    assert rec.calls == ["deploy", "after"]


def test_a_deadline_racing_votes_leaves_the_pause_resolved_exactly_once(
    any_db: BaseDb,
) -> None:
    """Voters whose clock is before the deadline race a timer whose clock is after it
    (two processes' views of time): whatever lands first, the pause ends resolved once."""
    rec = Recorder()
    start = ManualClock()
    late = ManualClock(start.now() + timedelta(minutes=10))
    steps = [gate("deploy", rec, approvals=10, pause_timeout=timedelta(minutes=5))]
    voters_wf = Workflow(name="q", db=any_db, clock=start, steps=steps)
    timer_wf = Workflow(name="q", db=any_db, clock=late, steps=steps)
    run = voters_wf.run()
    voters = [f"U{i:02d}" for i in range(10)]
    barrier = threading.Barrier(len(voters) + 1)
    expired: list[WorkflowRunOutput] = []

    def timer() -> None:
        barrier.wait()
        expired.extend(timer_wf.expire_due_runs())

    thread = threading.Thread(target=timer)
    thread.start()
    results = race_threads(voters_wf, run.run_id, voters, barrier=barrier)
    thread.join()
    stored = voters_wf.get_run(run.run_id)
    assert stored is not None and stored.status is RunStatus.completed
    finals = [d for d in voters_wf.get_decisions(run.run_id) if not d.is_vote]
    assert len(finals) == 1
    assert rec.count("deploy") == (1 if finals[0].outcome is Outcome.confirmed else 0)
    assert len(expired) == (1 if finals[0].outcome is Outcome.timed_out else 0)
    votes = [d for d in voters_wf.get_decisions(run.run_id) if d.is_vote]
    assert results.count(RunStatus.paused) == len(votes)


def test_two_processes_give_the_last_two_approvals_at_once(
    db_url: str, tmp_path: Path, race: Race
) -> None:
    effects = SideEffects(tmp_path / "effects.log")
    wf = approval_workflow(db_url, effects, approvals=3)
    run = wf.run("go")
    first = StepRequirement(step_name="deploy")
    first.confirm(by="carol")
    assert wf.continue_run(run_id=run.run_id, step_requirements=[first]).is_paused
    log = str(effects.path)
    results = race(
        {who: ("race_vote", db_url, log, run.run_id, "3", who) for who in ("alice", "bob")}
    )
    assert sorted(r["result"] for r in results) == ["completed", "paused"], results
    assert effects.lines() == ["prepare", "deploy", "notify"]
    decisions = wf.get_decisions(run.run_id)
    assert sorted(d.decided_by or "" for d in decisions) == ["alice", "bob", "carol"]
    assert [kind(d) for d in decisions] == [APPROVAL_VOTE, APPROVAL_VOTE, Outcome.confirmed]
    winner = next(r["who"] for r in results if r["result"] == "completed")
    assert decisions[-1].decided_by == winner
    wf.db.dispose()


# -- the migration ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_run_paused_by_the_previous_release_continues_after_the_upgrade(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from sqlalchemy import create_engine, insert, inspect, text

    from engine.db.base import SET_COLUMNS
    from engine.db.migrations import upgrade
    from engine.db.schema import SCHEMA_REVISION, decisions, runs, sessions

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("pg_database_factory")()
    old = create_engine(url)
    upgrade(old, "0002_run_leases")  # the previous release's schema
    # The previous release's rows: a run paused at a plain confirmation (stored in the
    # same shape then as now: none of the new keys), and an earlier decision.
    effects = Recorder()
    scratch = approval_workflow("sqlite://", effects)
    paused = scratch.run("go", user_id="U_REQ")
    stored = paused.to_dict()
    new_keys = {"approvals_required", "reject_quorum", "approved_by", "excluded_deciders"}
    assert not new_keys & set(stored["step_requirements"][0])
    state = dict(zip(SET_COLUMNS, BaseDb._run_state(paused, version=1), strict=True))
    del state["paused_requirement_id"]  # a column of 0005
    common = {
        "session_id": paused.session_id,
        "workflow_name": paused.workflow_name,
        "user_id": "U_REQ",
        "created_at": paused.created_at,
    }
    with old.begin() as conn:
        conn.execute(insert(sessions).values(**common))
        conn.execute(insert(runs).values(run_id=paused.run_id, **common, **state))
        conn.execute(
            insert(decisions).values(
                run_id="an-older-run",
                requirement_id="an-older-requirement",
                step_name="deploy",
                outcome="confirmed",
                decided_by="dave",
                decided_at=paused.created_at,
            )
        )
    old.dispose()
    scratch.db.dispose()

    wf = approval_workflow(url, effects)  # the new release: upgrades on first use
    # 0005 filled in the pause each paused run waits at, from the run's data.
    assert wf.list_paused_requirement_ids() == [
        (paused.run_id, paused.step_requirements[0].requirement_id)
    ]
    answer = StepRequirement(step_name="deploy")
    answer.confirm(by="alice")
    done = wf.continue_run(run_id=paused.run_id, step_requirements=[answer])
    assert done.status is RunStatus.completed
    assert effects.calls == ["prepare", "deploy", "notify"]
    assert outcomes(wf, paused.run_id) == [("alice", Outcome.confirmed)]
    assert outcomes(wf, "an-older-run") == [("dave", Outcome.confirmed)]
    with wf.db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            SCHEMA_REVISION
        )
    names = {i["name"] for i in inspect(wf.db.engine).get_indexes("wf_decisions")}
    assert "ux_wf_decisions_requirement_decider" in names
    # The upgraded table takes several people's votes on one pause.
    quorum = approval_workflow(url, effects, name="quorum_after_upgrade", approvals=2)
    run = quorum.run("again")
    vote(quorum, run.run_id, "alice")
    assert vote(quorum, run.run_id, "bob").status is RunStatus.completed
    assert [o for _, o in outcomes(quorum, run.run_id)] == [
        APPROVAL_VOTE,
        Outcome.confirmed,
    ]
    quorum.db.dispose()
    wf.db.dispose()


def test_the_migration_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, inspect

    from engine.db.migrations import upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'both.db'}")
    upgrade(engine)
    from alembic import command

    from engine.db.migrations import alembic_config

    command.downgrade(alembic_config(engine), "0002_run_leases")  # type: ignore[arg-type]
    uniques = inspect(engine).get_unique_constraints("wf_decisions")
    assert [u["column_names"] for u in uniques] == [["requirement_id"]]
    upgrade(engine)
    assert inspect(engine).get_unique_constraints("wf_decisions") == []
    engine.dispose()
