"""Deadlines (issue 2, item 7): pause_timeout, expire_run, expire_due_runs, list_paused_runs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import (
    TIMEOUT_ACTOR,
    ManualClock,
    Outcome,
    RunNotPausedError,
    RunStatus,
    Step,
    Workflow,
    WorkflowConfigError,
    WorkflowRunOutput,
    pause,
)
from engine.db.base import BaseDb
from engine.db.sqlite import SqliteDb
from tests.engine.engine_flows import Recorder


def gated(
    db: BaseDb,
    clock: ManualClock,
    rec: Recorder,
    *,
    name: str = "gated",
    timeout: timedelta | float | None = timedelta(minutes=5),
    on_reject: str = "skip",
) -> Workflow:
    def step(label: str):
        def run(si):
            rec.record(label)
            return f"{label}<{si.previous_step_content}>"

        return run

    return Workflow(
        name=name,
        db=db,
        clock=clock,
        steps=[
            Step(name="before", executor=step("before")),
            Step(
                name="gate",
                executor=step("gate"),
                requires_confirmation=True,
                on_reject=on_reject,
                pause_timeout=timeout,
            ),
            Step(name="after", executor=step("after")),
        ],
    )


def test_pause_timeout_as_timedelta_sets_expires_at(
    sqlite_db: SqliteDb, clock: ManualClock
) -> None:
    wf = gated(sqlite_db, clock, Recorder(), timeout=timedelta(minutes=5))
    run = wf.run("x")
    req = run.step_requirements[0]
    assert req.paused_at == clock.now()
    assert req.expires_at == clock.now() + timedelta(minutes=5)
    assert run.expires_at == req.expires_at
    stored = wf.get_run(run.run_id)
    assert stored is not None
    assert stored.step_requirements[0].expires_at == req.expires_at
    assert stored.step_requirements[0].expires_at.tzinfo is not None


def test_pause_timeout_in_seconds_and_from_the_decorator(
    sqlite_db: SqliteDb, clock: ManualClock
) -> None:
    wf = gated(sqlite_db, clock, Recorder(), timeout=90)
    assert wf.run("x").step_requirements[0].expires_at == clock.now() + timedelta(seconds=90)

    @pause(requires_confirmation=True, pause_timeout=2.5)
    def decorated(si):
        return "ok"

    step = Step(name="d", executor=decorated)
    assert step.pause_timeout == timedelta(seconds=2.5)
    wf2 = Workflow(name="deco", db=sqlite_db, clock=clock, steps=[step])
    assert wf2.run("y").step_requirements[0].expires_at == clock.now() + timedelta(seconds=2.5)


def test_a_pause_without_timeout_has_no_deadline(sqlite_db: SqliteDb, clock: ManualClock) -> None:
    wf = gated(sqlite_db, clock, Recorder(), timeout=None)
    run = wf.run("x")
    assert run.step_requirements[0].expires_at is None
    clock.advance(timedelta(days=365))
    with pytest.raises(RunNotPausedError, match="has no deadline"):
        wf.expire_run(run.run_id)
    assert wf.expire_due_runs() == []
    assert wf.get_run(run.run_id).is_paused


def test_expire_run_before_the_deadline_is_refused(sqlite_db: SqliteDb, clock: ManualClock) -> None:
    wf = gated(sqlite_db, clock, Recorder())
    run = wf.run("x")
    clock.advance(timedelta(minutes=4, seconds=59))
    with pytest.raises(RunNotPausedError, match="is due at"):
        wf.expire_run(run.run_id)
    assert wf.get_run(run.run_id).is_paused
    assert wf.get_decisions(run.run_id) == []


def test_expire_run_applies_skip_decided_by_the_timeout(
    sqlite_db: SqliteDb, clock: ManualClock
) -> None:
    rec = Recorder()
    wf = gated(sqlite_db, clock, rec)
    run = wf.run("x")
    clock.advance(timedelta(minutes=5))  # the deadline itself is due
    out = wf.expire_run(run.run_id)
    assert out.status is RunStatus.completed
    assert rec.calls == ["before", "after"]
    assert [(s.step_name, s.skipped) for s in out.step_results][1] == ("gate", True)
    assert out.content == "after<before<None>>"
    [decision] = wf.get_decisions(run.run_id)
    assert decision.outcome is Outcome.timed_out
    assert decision.decided_by == TIMEOUT_ACTOR
    assert decision.decided_at == clock.now()
    assert "deadline" in (decision.comment or "")
    # The loser of a later attempt learns it timed out.
    with pytest.raises(RunNotPausedError) as info:
        run.step_requirements[0].confirm(by="late-larry")
        wf.continue_run(run)
    assert info.value.decision == "timed_out" and "timed out" in str(info.value)


def test_expire_run_applies_cancel(sqlite_db: SqliteDb, clock: ManualClock) -> None:
    rec = Recorder()
    wf = gated(sqlite_db, clock, rec, on_reject="cancel")
    run = wf.run("x")
    clock.advance(timedelta(hours=1))
    out = wf.expire_run(run.run_id)
    assert out.status is RunStatus.cancelled
    assert "step 'gate' timed out" in out.content
    assert rec.calls == ["before"]
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.status is RunStatus.cancelled
    assert wf.get_decisions(run.run_id)[0].outcome is Outcome.timed_out


def test_expire_due_runs_expires_exactly_the_due_ones(
    sqlite_db: SqliteDb, clock: ManualClock
) -> None:
    rec = Recorder()
    short = gated(sqlite_db, clock, rec, name="due", timeout=60)
    long = gated(sqlite_db, clock, rec, name="due", timeout=600)  # same workflow, other step config
    due = [short.run(f"s{i}") for i in range(3)]
    later = [long.run(f"l{i}") for i in range(2)]
    other = gated(sqlite_db, clock, rec, name="other-workflow", timeout=60)
    foreign = other.run("f")

    clock.advance(timedelta(seconds=61))
    expired = short.expire_due_runs()
    assert sorted(r.run_id for r in expired) == sorted(r.run_id for r in due)
    assert all(r.status is RunStatus.completed for r in expired)
    for r in later:
        assert short.get_run(r.run_id).is_paused
    # Only this workflow's runs.
    assert short.get_run(foreign.run_id).is_paused
    assert short.expire_due_runs() == []
    assert rec.count("after") == 3 and rec.count("gate") == 0


def test_expire_due_runs_respects_its_limit(sqlite_db: SqliteDb, clock: ManualClock) -> None:
    wf = gated(sqlite_db, clock, Recorder(), timeout=1)
    for i in range(5):
        wf.run(str(i))
    clock.advance(timedelta(seconds=2))
    assert len(wf.expire_due_runs(limit=2)) == 2
    assert len(wf.expire_due_runs(now=clock.now())) == 3


def test_two_expirers_race_and_each_run_expires_once(db_url: str, tmp_path: Path) -> None:
    from engine import db_from_url

    clock = ManualClock()
    rec = Recorder()
    name = f"race-{tmp_path.name}"
    first = gated(db_from_url(db_url), clock, rec, name=name, timeout=30)
    second = gated(db_from_url(db_url), clock, rec, name=name, timeout=30)
    runs = [first.run(str(i)) for i in range(6)]
    clock.advance(timedelta(minutes=1))

    barrier = threading.Barrier(2)
    results: dict[str, list[WorkflowRunOutput]] = {}

    def expire(label: str, wf: Workflow) -> None:
        barrier.wait()
        results[label] = wf.expire_due_runs()

    threads = [
        threading.Thread(target=expire, args=(k, w)) for k, w in (("a", first), ("b", second))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expired_ids = [r.run_id for r in results["a"] + results["b"]]
    assert sorted(expired_ids) == sorted(r.run_id for r in runs)  # each once, none missed
    assert rec.count("after") == 6
    for r in runs:
        [decision] = first.get_decisions(r.run_id)
        assert decision.decided_by == TIMEOUT_ACTOR
    first.db.dispose()
    second.db.dispose()


def test_a_person_and_the_timeout_race(sqlite_db: SqliteDb, clock: ManualClock) -> None:
    rec = Recorder()
    wf = gated(sqlite_db, clock, rec, on_reject="cancel")
    winners = set()
    for i in range(6):
        run = wf.run(str(i))
        clock.advance(timedelta(minutes=10))
        run.step_requirements[0].confirm(by="alice")
        barrier = threading.Barrier(2)
        errors: list[RunNotPausedError] = []

        def call(fn, barrier=barrier, errors=errors):
            barrier.wait()
            try:
                fn()
            except RunNotPausedError as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=call, args=(lambda r=run: wf.continue_run(r),)),
            threading.Thread(target=call, args=(lambda r=run: wf.expire_run(r.run_id),)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(errors) == 1
        [decision] = wf.get_decisions(run.run_id)
        winners.add(decision.decided_by)
        status = wf.get_run(run.run_id).status
        if decision.decided_by == "alice":
            assert status is RunStatus.completed
        else:
            assert decision.decided_by == TIMEOUT_ACTOR and status is RunStatus.cancelled
    assert rec.count("gate") == rec.count("after") <= 6


def test_list_paused_runs_orders_by_deadline_and_filters(
    sqlite_db: SqliteDb, clock: ManualClock
) -> None:
    rec = Recorder()
    runs = {}
    for label, timeout in [("t30", 30), ("none", None), ("t10", 10), ("t20", 20)]:
        wf = gated(sqlite_db, clock, rec, name="listed", timeout=timeout)
        runs[label] = wf.run(label, session_id=f"session-{label}", user_id=f"user-{label}")
    other = gated(sqlite_db, clock, rec, name="elsewhere", timeout=5)
    elsewhere = other.run("e")
    done = gated(sqlite_db, clock, rec, name="listed", timeout=1)
    finished = done.run("done")
    finished.step_requirements[0].confirm()
    done.continue_run(finished)

    listed = wf.list_paused_runs()
    assert [p.run_id for p in listed] == [runs[k].run_id for k in ("t10", "t20", "t30", "none")]
    first = listed[0]
    assert first.workflow_name == "listed"
    assert first.session_id == "session-t10" and first.user_id == "user-t10"
    assert first.step_name == "gate"
    assert first.requirement.requires_confirmation
    assert first.paused_at == clock.now()
    assert first.expires_at == clock.now() + timedelta(seconds=10)
    assert first.version >= 1
    assert listed[-1].expires_at is None
    # The whole run, as stored, comes with the row (no second read to show it).
    assert first.run.run_id == first.run_id and first.run.version == first.version
    assert first.run.step_requirements[0].requirement_id == first.requirement.requirement_id

    # Runs by who started them, newest first.
    by_user = sqlite_db.list_runs(user_id="user-t20")
    assert [r.run_id for r in by_user] == [runs["t20"].run_id]
    assert sqlite_db.list_runs(user_id="nobody") == []

    # Across the database: every workflow, ordered by deadline.
    everything = sqlite_db.list_paused_runs()
    assert everything[0].run_id == elsewhere.run_id
    assert {p.workflow_name for p in everything} == {"listed", "elsewhere"}

    assert [p.run_id for p in wf.list_paused_runs(session_id="session-t20")] == [runs["t20"].run_id]
    assert wf.list_paused_runs(step_name="nope") == []
    soon = clock.now() + timedelta(seconds=20)
    assert [p.run_id for p in wf.list_paused_runs(expires_before=soon)] == [
        runs["t10"].run_id,
        runs["t20"].run_id,
    ]
    assert [p.run_id for p in wf.list_paused_runs(has_deadline=False)] == [runs["none"].run_id]
    assert len(wf.list_paused_runs(has_deadline=True)) == 3
    assert len(wf.list_paused_runs(limit=2)) == 2
    assert sqlite_db.list_paused_runs(workflow_name="elsewhere")[0].run_id == elsewhere.run_id


def test_list_paused_runs_on_postgres(pg_db: BaseDb, clock: ManualClock, tmp_path: Path) -> None:
    name = f"pg-listed-{tmp_path.name}"
    rec = Recorder()
    ids = [gated(pg_db, clock, rec, name=name, timeout=t).run(str(t)).run_id for t in (50, 10, 30)]
    gated(pg_db, clock, rec, name=name, timeout=None).run("none")
    listed = pg_db.list_paused_runs(workflow_name=name)
    assert [p.run_id for p in listed][:3] == [ids[1], ids[2], ids[0]]
    assert listed[-1].expires_at is None
    assert listed[0].expires_at == datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=10)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_list_paused_runs_changed_since(
    backend: str, request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> None:
    """Only the paused runs written at or after the time given: what a poll reads between
    full sweeps (the index on status, updated_at)."""
    db: BaseDb = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "pg_db")
    rec = Recorder()
    wf = gated(db, clock, rec, name=f"changed-{tmp_path.name}")
    old = wf.run("old")
    clock.advance(timedelta(seconds=30))
    since = clock.now()
    new = wf.run("new")
    clock.advance(timedelta(seconds=30))
    decided = wf.run("decided")
    assert [p.run_id for p in wf.list_paused_runs(changed_since=since)] == [
        new.run_id,
        decided.run_id,
    ]
    decided.step_requirements[0].confirm()
    wf.continue_run(decided)  # written since, but no longer paused
    assert [p.run_id for p in wf.list_paused_runs(changed_since=since)] == [new.run_id]
    assert [p.run_id for p in wf.list_paused_runs(changed_since=clock.now())] == []
    # The same rows, their pause ids from a column, no run's data read.
    assert wf.list_paused_requirement_ids(changed_since=since) == [
        (new.run_id, new.step_requirements[0].requirement_id)
    ]
    assert wf.list_paused_requirement_ids(limit=1, offset=1) == [
        (new.run_id, new.step_requirements[0].requirement_id)
    ]
    assert {p.run_id for p in wf.list_paused_runs()} == {old.run_id, new.run_id}
    with pytest.raises(ValueError, match="timezone-aware"):
        wf.list_paused_runs(changed_since=datetime(2026, 1, 1))


def test_expire_due_runs_applies_cancel(sqlite_db: SqliteDb, clock: ManualClock) -> None:
    rec = Recorder()
    wf = gated(
        sqlite_db, clock, rec, name="cancelling", timeout=timedelta(hours=1), on_reject="cancel"
    )
    runs = [wf.run(str(i)) for i in range(3)]
    clock.advance(timedelta(hours=1, seconds=1))
    expired = wf.expire_due_runs()
    assert {r.run_id for r in expired} == {r.run_id for r in runs}
    for r in runs:
        stored = wf.get_run(r.run_id)
        assert stored is not None and stored.status is RunStatus.cancelled
        assert "timed out" in stored.content
        assert [d.outcome for d in wf.get_decisions(r.run_id)] == [Outcome.timed_out]
    assert rec.count("gate") == 0 and rec.count("after") == 0


def test_deadlines_with_the_system_clock(sqlite_db: SqliteDb) -> None:
    wf = Workflow(
        name="real-time",
        db=sqlite_db,
        steps=[Step(name="s", executor=lambda si: 1, requires_confirmation=True, pause_timeout=30)],
    )
    before = datetime.now(UTC)
    run = wf.run("x")
    expires_at = run.step_requirements[0].expires_at
    assert expires_at is not None
    assert before + timedelta(seconds=30) <= expires_at <= datetime.now(UTC) + timedelta(seconds=30)
    assert wf.expire_due_runs() == []
    [expired] = wf.expire_due_runs(now=datetime.now(UTC) + timedelta(minutes=1))
    assert expired.status is RunStatus.completed and expired.step_results[0].skipped


def test_expiring_a_run_the_workflow_no_longer_fits_is_refused(
    sqlite_db: SqliteDb, clock: ManualClock
) -> None:
    rec = Recorder()
    old = gated(sqlite_db, clock, rec, name="evolving", timeout=10)
    stranded = old.run("old definition")
    clock.advance(timedelta(seconds=5))
    fine = old.run("also old, but fits")
    # The workflow is redeployed with the gate renamed... and later the old one is back.
    changed = Workflow(
        name="evolving",
        db=sqlite_db,
        clock=clock,
        steps=[
            Step(name="before", executor=lambda si: "b"),
            Step(name="renamed", executor=lambda si: "r", requires_confirmation=True),
            Step(name="after", executor=lambda si: "a"),
        ],
    )
    clock.advance(timedelta(seconds=20))
    with pytest.raises(WorkflowConfigError, match="was the workflow changed"):
        changed.expire_run(stranded.run_id)
    assert changed.expire_due_runs() == []  # logged and left, not raised
    assert sqlite_db.get_run(stranded.run_id).is_paused
    assert sqlite_db.get_decisions(stranded.run_id) == []
    # The original definition still expires both.
    assert {r.run_id for r in old.expire_due_runs()} == {stranded.run_id, fine.run_id}
