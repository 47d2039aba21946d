"""Exactly once (issue 2, item 6): of two continue_run calls on one pause — same object, two
loaded copies, two processes — one runs the rest, the other gets RunNotPausedError naming
who resolved the pause; a stale copy never revives a finished run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from engine import RunNotPausedError, RunStatus, Workflow, WorkflowRunOutput
from tests.engine.conftest import Race
from tests.engine.engine_flows import (
    Recorder,
    SideEffects,
    approval_workflow,
)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Start every call at the same moment in its own thread; return results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def target(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def split(results: list[Any]) -> tuple[list[WorkflowRunOutput], list[RunNotPausedError]]:
    won = [r for r in results if isinstance(r, WorkflowRunOutput)]
    lost = [r for r in results if isinstance(r, RunNotPausedError)]
    assert len(won) + len(lost) == len(results), results
    return won, lost


def test_two_threads_continue_the_same_object(db_url: str) -> None:
    rec = Recorder()
    wf = approval_workflow(db_url, rec, name="same-object")
    for round_ in range(8):
        run = wf.run(f"r{round_}")
        run.step_requirements[0].confirm(by="alice")
        won, lost = split(race(partial(wf.continue_run, run), partial(wf.continue_run, run)))
        assert len(won) == 1 and len(lost) == 1
        error = lost[0]
        assert error.run_id == run.run_id
        assert error.decided_by == "alice" and error.decision == "confirmed"
        assert "alice" in str(error) and "'deploy'" in str(error)
        assert won[0].status is RunStatus.completed
    assert (rec.count("prepare"), rec.count("deploy"), rec.count("notify")) == (8, 8, 8)
    assert all(
        len(wf.get_decisions(r.run_id)) == 1 for r in wf.db.list_runs(workflow_name="same-object")
    )
    wf.db.dispose()


def test_two_loaded_copies_with_opposite_decisions(db_url: str) -> None:
    rec = Recorder()
    wf = approval_workflow(db_url, rec, name="two-copies", on_reject="cancel")
    outcomes = set()
    for round_ in range(8):
        run = wf.run(f"r{round_}")
        a, b = wf.get_run(run.run_id), wf.get_run(run.run_id)
        assert a is not None and b is not None and a is not b
        a.step_requirements[0].confirm(by="alice")
        b.step_requirements[0].reject(by="bob", reason="nope")
        results = race(partial(wf.continue_run, a), partial(wf.continue_run, b))
        won, lost = split(results)
        assert len(won) == 1 and len(lost) == 1
        winner = "alice" if results[0] is won[0] else "bob"
        outcomes.add(winner)
        assert lost[0].decided_by == winner and winner in str(lost[0])
        stored = wf.get_run(run.run_id)
        assert stored is not None
        expected = RunStatus.completed if winner == "alice" else RunStatus.cancelled
        assert stored.status is expected and won[0].status is expected
        [decision] = wf.get_decisions(run.run_id)
        assert decision.decided_by == winner
    deploys = rec.count("deploy")
    assert deploys == sum(
        1 for r in wf.db.list_runs(workflow_name="two-copies") if r.status is RunStatus.completed
    )
    assert rec.count("notify") == deploys and rec.count("prepare") == 8
    wf.db.dispose()


def test_a_stale_copy_cannot_revive_a_completed_run(db_url: str) -> None:
    rec = Recorder()
    wf = approval_workflow(db_url, rec, name="stale-completed")
    run = wf.run("x")
    stale = wf.get_run(run.run_id)
    run.step_requirements[0].confirm(by="alice")
    wf.continue_run(run)
    version = wf.get_run(run.run_id).version

    assert stale is not None and stale.is_paused
    stale.step_requirements[0].reject(by="mallory")
    with pytest.raises(RunNotPausedError) as info:
        wf.continue_run(stale)
    assert info.value.status == "completed" and info.value.decided_by == "alice"
    assert "the run is completed" in str(info.value)
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.status is RunStatus.completed
    assert stored.version == version
    assert rec.calls == ["prepare", "deploy", "notify"]
    assert [d.decided_by for d in wf.get_decisions(run.run_id)] == ["alice"]
    # The caller's run object, already completed, is refused too.
    with pytest.raises(RunNotPausedError, match="completed"):
        wf.continue_run(run)
    wf.db.dispose()


def test_a_stale_copy_cannot_revive_a_cancelled_run(db_url: str) -> None:
    rec = Recorder()
    wf = approval_workflow(db_url, rec, name="stale-cancelled", on_reject="cancel")
    run = wf.run("x")
    stale = wf.get_run(run.run_id)
    run.step_requirements[0].reject(by="bob", reason="no")
    assert wf.continue_run(run).status is RunStatus.cancelled

    assert stale is not None
    stale.step_requirements[0].confirm(by="mallory")
    with pytest.raises(RunNotPausedError) as info:
        wf.continue_run(stale)
    assert info.value.status == "cancelled" and info.value.decided_by == "bob"
    assert wf.get_run(run.run_id).status is RunStatus.cancelled
    assert rec.calls == ["prepare"]
    wf.db.dispose()


def test_a_stale_copy_of_an_earlier_pause_is_refused(tmp_path: Path) -> None:
    from engine import Step
    from engine.db.sqlite import SqliteDb

    wf = Workflow(
        name="two-gates",
        db=SqliteDb(db_file=tmp_path / "w.db"),
        steps=[
            Step(name="one", executor=lambda si: 1, requires_confirmation=True),
            Step(name="two", executor=lambda si: 2, requires_confirmation=True),
        ],
    )
    run = wf.run("x")
    stale = wf.get_run(run.run_id)
    run.step_requirements[0].confirm(by="alice")
    run = wf.continue_run(run)
    assert run.paused_step_name == "two"
    assert stale is not None
    stale.step_requirements[0].confirm(by="bob")
    with pytest.raises(RunNotPausedError) as info:
        wf.continue_run(stale)
    assert "now waits at step 'two'" in str(info.value)
    assert info.value.status == "paused"
    # The current pause is untouched and still answerable.
    run.step_requirements[0].confirm(by="carol")
    assert wf.continue_run(run).content == 2


def race_in_processes(
    db_url: str, tmp_path: Path, race: Race, actions: list[tuple[str, str]]
) -> None:
    effects = SideEffects(tmp_path / "effects.log")
    wf = approval_workflow(db_url, effects)
    run = wf.run("go")
    log = str(effects.path)
    results = race({who: ("race", db_url, log, run.run_id, who, action) for who, action in actions})

    won = [r for r in results if r["result"] == "won"]
    lost = [r for r in results if r["result"] == "lost"]
    assert len(won) == 1 and len(lost) == len(actions) - 1, results
    winner = won[0]["who"]
    for r in lost:
        assert r["error"] == "RunNotPausedError"
        assert r["decided_by"] == winner and winner in r["message"]
    stored = wf.get_run(run.run_id)
    assert stored is not None
    assert [d.decided_by for d in wf.get_decisions(run.run_id)] == [winner]
    if dict(actions)[winner] == "confirm":
        assert stored.status is RunStatus.completed
        assert effects.lines() == ["prepare", "deploy", "notify"]
    else:
        assert stored.status is RunStatus.completed
        assert effects.lines() == ["prepare", "notify"]
    wf.db.dispose()


def test_two_processes_race_on_one_pause(db_url: str, tmp_path: Path, race: Race) -> None:
    race_in_processes(db_url, tmp_path, race, [("alice", "confirm"), ("bob", "confirm")])


def test_two_processes_race_with_opposite_decisions(
    db_url: str, tmp_path: Path, race: Race
) -> None:
    race_in_processes(db_url, tmp_path, race, [("alice", "confirm"), ("bob", "reject")])
