"""Streaming events (item 8), async (item 9) and observers (item 10)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from engine import (
    LIFECYCLE_EVENTS,
    ManualClock,
    OnReject,
    RunNotPausedError,
    RunStatus,
    Step,
    StepCompletedEvent,
    StepContinuedEvent,
    StepInput,
    StepOutput,
    StepPausedEvent,
    StepSkippedEvent,
    StepStartedEvent,
    StepTimedOutEvent,
    UserInputField,
    Workflow,
    WorkflowCancelledEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowRunEvent,
    WorkflowStartedEvent,
)
from engine.db.sqlite import SqliteDb
from tests.engine.engine_flows import AsyncFakeAgent, FakeAgent, run_async


def kinds(events: list[WorkflowRunEvent]) -> list[tuple[str, str | None]]:
    return [(type(e).__name__, getattr(e, "step_name", None)) for e in events]


def three_steps(db: SqliteDb, **gate: Any) -> Workflow:
    gate.setdefault("requires_confirmation", True)
    return Workflow(
        name="events",
        db=db,
        steps=[
            Step(name="a", executor=lambda si: "A"),
            Step(name="b", executor=lambda si: f"B{si.previous_step_content}", **gate),
            Step(name="c", executor=lambda si: f"C{si.previous_step_content}"),
        ],
    )


def test_streamed_events_in_order_through_a_pause(sqlite_db: SqliteDb) -> None:
    wf = three_steps(
        sqlite_db,
        confirmation_message="Go?",
        requires_user_input=True,
        user_input_message="Size?",
        user_input_schema=[UserInputField(name="size", field_type="int")],
        on_reject="cancel",
    )
    events = list(wf.run("in", stream=True, stream_events=True, user_id="u1"))
    assert kinds(events) == [
        ("WorkflowStartedEvent", None),
        ("StepStartedEvent", "a"),
        ("StepCompletedEvent", "a"),
        ("StepPausedEvent", "b"),
    ]
    started = events[0]
    assert isinstance(started, WorkflowStartedEvent)
    assert started.input == "in" and started.user_id == "u1"
    assert isinstance(events[2], StepCompletedEvent) and events[2].content == "A"
    paused = events[-1]
    assert isinstance(paused, StepPausedEvent)
    run_id, session_id = paused.run_id, paused.session_id
    assert all(
        (e.run_id, e.session_id, e.workflow_name) == (run_id, session_id, "events") for e in events
    )
    assert paused.step_name == "b" and paused.step_index == 1 and paused.step_path == [1]
    assert paused.requires_confirmation and paused.confirmation_message == "Go?"
    assert paused.requires_user_input and paused.user_input_message == "Size?"
    assert [(f.name, f.field_type) for f in paused.user_input_schema] == [("size", "int")]
    assert paused.on_reject is OnReject.cancel
    assert paused.expires_at is None
    assert paused.requirement.step_name == "b"

    # After a streamed pause, the session's last run is the paused run.
    run = wf.get_session().runs[-1]
    assert run.run_id == run_id and run.is_paused
    run.step_requirements[0].set_user_input(size=2, by="ann")
    run.step_requirements[0].confirm(by="ann")
    events = list(wf.continue_run(run, stream=True, stream_events=True))
    assert kinds(events) == [
        ("StepContinuedEvent", "b"),
        ("StepStartedEvent", "b"),
        ("StepCompletedEvent", "b"),
        ("StepStartedEvent", "c"),
        ("StepCompletedEvent", "c"),
        ("WorkflowCompletedEvent", None),
    ]
    continued = events[0]
    assert isinstance(continued, StepContinuedEvent)
    assert continued.outcome == "confirmed" and continued.decided_by == "ann"
    done = events[-1]
    assert isinstance(done, WorkflowCompletedEvent)
    assert done.content == "CBA"
    assert [s.step_name for s in done.step_results] == ["a", "b", "c"]
    # The streamed continue updates the caller's object as the non-streamed one does.
    assert run.status is RunStatus.completed and run.content == "CBA"


def test_streamed_skip_cancel_and_error(sqlite_db: SqliteDb) -> None:
    skip = three_steps(sqlite_db)
    run = skip.run("x")
    run.step_requirements[0].reject(by="bob", reason="later")
    events = list(skip.continue_run(run, stream=True, stream_events=True))
    assert kinds(events) == [
        ("StepContinuedEvent", "b"),
        ("StepSkippedEvent", "b"),
        ("StepStartedEvent", "c"),
        ("StepCompletedEvent", "c"),
        ("WorkflowCompletedEvent", None),
    ]
    skipped = events[1]
    assert isinstance(skipped, StepSkippedEvent)
    assert skipped.skipped_by == "bob" and skipped.reason == "later" and not skipped.timed_out

    cancel = three_steps(SqliteDb(db_file=f"{sqlite_db.db_file}-2"), on_reject="cancel")
    run = cancel.run("x")
    run.step_requirements[0].reject(by="bob")
    events = list(cancel.continue_run(run, stream=True, stream_events=True))
    assert kinds(events) == [("StepContinuedEvent", "b"), ("WorkflowCancelledEvent", "b")]
    cancelled = events[-1]
    assert isinstance(cancelled, WorkflowCancelledEvent)
    assert cancelled.cancelled_by == "bob" and "bob" in (cancelled.reason or "")

    def boom(si: StepInput) -> StepOutput:
        raise KeyError("gone")

    failing = Workflow(name="fail", db=sqlite_db, steps=[Step(name="boom", executor=boom)])
    events = list(failing.run("x", stream=True, stream_events=True))
    assert kinds(events) == [
        ("WorkflowStartedEvent", None),
        ("StepStartedEvent", "boom"),
        ("WorkflowErrorEvent", "boom"),
    ]
    assert isinstance(events[-1], WorkflowErrorEvent) and "gone" in events[-1].error


def test_stream_without_step_events_yields_the_workflow_events(sqlite_db: SqliteDb) -> None:
    wf = three_steps(sqlite_db)
    events = list(wf.run("x", stream=True))
    assert kinds(events) == [("WorkflowStartedEvent", None), ("StepPausedEvent", "b")]
    run = wf.get_session().runs[-1]
    run.step_requirements[0].confirm()
    assert kinds(list(wf.continue_run(run, stream=True))) == [("WorkflowCompletedEvent", None)]


def test_streamed_continue_of_a_resolved_pause_is_refused(sqlite_db: SqliteDb) -> None:
    wf = three_steps(sqlite_db)
    run = wf.run("x")
    copy = wf.get_run(run.run_id)
    run.step_requirements[0].confirm(by="alice")
    list(wf.continue_run(run, stream=True, stream_events=True))
    assert copy is not None
    copy.step_requirements[0].confirm(by="bob")
    with pytest.raises(RunNotPausedError, match="alice"):
        list(wf.continue_run(copy, stream=True, stream_events=True))


def async_workflow(db: SqliteDb, agent: AsyncFakeAgent, seen: list[str]) -> Workflow:
    async def fetch(step_input: StepInput) -> StepOutput:
        await asyncio.sleep(0)
        seen.append("fetch")
        return StepOutput(content="fetched")

    async def review(step_input: StepInput) -> StepOutput:
        await asyncio.sleep(0)
        seen.append(f"review {step_input.user_input}")
        return StepOutput(content=f"reviewed {step_input.previous_step_content}")

    return Workflow(
        name="async",
        db=db,
        steps=[
            Step(name="fetch", executor=fetch),
            Step(name="review", executor=review, requires_user_input=True),
            Step(name="write", agent=agent),
        ],
    )


def test_arun_and_acontinue_run_with_async_executors_and_agent(sqlite_db: SqliteDb) -> None:
    agent = AsyncFakeAgent("writer")
    seen: list[str] = []
    wf = async_workflow(sqlite_db, agent, seen)

    async def main() -> Any:
        run = await wf.arun("topic")
        assert run.is_paused and seen == ["fetch"]
        run.step_requirements[0].set_user_input(depth="deep", by="ann")
        return await wf.acontinue_run(run)

    out = run_async(main())
    assert out.status is RunStatus.completed
    assert seen == ["fetch", "review {'depth': 'deep'}"]
    assert agent.async_calls == ["reviewed fetched"] and agent.calls == []
    assert out.content == "async-writer(reviewed fetched)"
    assert wf.get_run(out.run_id).status is RunStatus.completed


def test_async_executors_and_agents_also_run_from_the_sync_api(sqlite_db: SqliteDb) -> None:
    agent = AsyncFakeAgent("writer")
    seen: list[str] = []
    wf = async_workflow(sqlite_db, agent, seen)
    run = wf.run("topic")
    run.step_requirements[0].set_user_input(depth="shallow")
    out = wf.continue_run(run)
    assert out.content == "writer(reviewed fetched)"  # the sync API uses run()


def test_acontinue_run_by_id(sqlite_db: SqliteDb) -> None:
    agent = AsyncFakeAgent("writer")
    wf = async_workflow(sqlite_db, agent, [])
    run = wf.run("topic")
    req = run.step_requirements[0]
    req.set_user_input(depth="x", by="ann")

    async def main() -> Any:
        return await wf.acontinue_run(
            run_id=run.run_id, session_id=run.session_id, step_requirements=[req]
        )

    assert run_async(main()).status is RunStatus.completed


def test_sync_agent_runs_under_arun(sqlite_db: SqliteDb) -> None:
    agent = FakeAgent("plain")
    wf = Workflow(name="w", db=sqlite_db, steps=[Step(name="s", agent=agent)])
    out = run_async(wf.arun("hi"))
    assert out.content == "plain(hi)" and agent.calls == ["hi"]


def test_async_streaming(sqlite_db: SqliteDb) -> None:
    agent = AsyncFakeAgent("writer")
    wf = async_workflow(sqlite_db, agent, [])

    async def main() -> tuple[list[WorkflowRunEvent], list[WorkflowRunEvent]]:
        first = [e async for e in wf.arun("topic", stream=True, stream_events=True)]
        run = wf.get_session().runs[-1]
        run.step_requirements[0].set_user_input(depth="d")
        second = [e async for e in wf.acontinue_run(run, stream=True, stream_events=True)]
        return first, second

    first, second = run_async(main())
    assert kinds(first) == [
        ("WorkflowStartedEvent", None),
        ("StepStartedEvent", "fetch"),
        ("StepCompletedEvent", "fetch"),
        ("StepPausedEvent", "review"),
    ]
    assert kinds(second) == [
        ("StepContinuedEvent", "review"),
        ("StepStartedEvent", "review"),
        ("StepCompletedEvent", "review"),
        ("StepStartedEvent", "write"),
        ("StepCompletedEvent", "write"),
        ("WorkflowCompletedEvent", None),
    ]
    assert isinstance(second[-1], WorkflowCompletedEvent)
    assert second[-1].content == "async-writer(reviewed fetched)"


def test_async_streaming_can_also_be_awaited_first(sqlite_db: SqliteDb) -> None:
    wf = three_steps(sqlite_db)

    async def main() -> list[WorkflowRunEvent]:
        stream = await wf.arun("x", stream=True)
        return [e async for e in stream]

    assert kinds(run_async(main())) == [("WorkflowStartedEvent", None), ("StepPausedEvent", "b")]


def test_async_runs_share_one_workflow_concurrently(tmp_path) -> None:
    async def slow(step_input: StepInput) -> str:
        await asyncio.sleep(0.01)
        return f"done {step_input.input}"

    for db in (SqliteDb(db_file=tmp_path / "a.db"), SqliteDb()):
        wf = Workflow(name="conc", db=db, steps=[Step(name="s", executor=slow)])

        async def main(wf: Workflow = wf) -> list[Any]:
            return list(await asyncio.gather(*(wf.arun(i) for i in range(20))))

        outs = run_async(main())
        assert [o.content for o in outs] == [f"done {i}" for i in range(20)]


def test_observers_see_every_lifecycle_event(sqlite_db: SqliteDb) -> None:
    clock = ManualClock()
    wf = Workflow(
        name="observed",
        db=sqlite_db,
        clock=clock,
        steps=[
            Step(name="a", executor=lambda si: "A"),
            Step(
                name="gate", executor=lambda si: "G", requires_confirmation=True, pause_timeout=60
            ),
            Step(
                name="last", executor=lambda si: "L", requires_confirmation=True, on_reject="cancel"
            ),
        ],
    )
    seen: list[WorkflowRunEvent] = []
    unsubscribe = wf.subscribe(seen.append)

    run = wf.run("x")  # started, paused
    run.step_requirements[0].confirm(by="ann")
    run = wf.continue_run(run)  # resumed, paused again
    run.step_requirements[0].reject(by="bob")
    wf.continue_run(run)  # cancelled

    timed = wf.run("y")
    clock.advance(timedelta(minutes=2))
    wf.expire_run(timed.run_id)  # timed out (skip), then paused at last

    completed = wf.run("z")
    completed.step_requirements[0].confirm()
    completed = wf.continue_run(completed)
    completed.step_requirements[0].confirm()
    wf.continue_run(completed)

    def boom(si: StepInput) -> None:
        raise RuntimeError("x")

    failing = Workflow(name="f", db=sqlite_db, steps=[Step(name="boom", executor=boom)])
    failing_seen: list[WorkflowRunEvent] = []
    failing.subscribe(failing_seen.append)
    failing.run("e")

    lifecycle = [type(e) for e in seen if isinstance(e, LIFECYCLE_EVENTS)]
    for cls in (
        WorkflowStartedEvent,
        StepPausedEvent,
        StepContinuedEvent,
        WorkflowCancelledEvent,
        StepTimedOutEvent,
        WorkflowCompletedEvent,
    ):
        assert cls in lifecycle, cls
    assert any(isinstance(e, StepStartedEvent) for e in seen)  # all events, not only lifecycle
    assert WorkflowErrorEvent in [type(e) for e in failing_seen]
    timed_out = next(e for e in seen if isinstance(e, StepTimedOutEvent))
    assert timed_out.run_id == timed.run_id and timed_out.step_name == "gate"
    assert timed_out.on_reject is OnReject.skip
    assert timed_out.expires_at == clock.now() - timedelta(minutes=1)
    assert all(e.run_output is not None for e in seen)
    # Observers of one workflow see only its runs.
    assert {e.workflow_name for e in seen} == {"observed"}

    unsubscribe()
    count = len(seen)
    wf.run("after unsubscribe")
    assert len(seen) == count


def test_an_observer_that_raises_does_not_break_the_run(sqlite_db: SqliteDb, caplog) -> None:
    wf = three_steps(sqlite_db)
    good: list[str] = []

    def bad(event: WorkflowRunEvent) -> None:
        raise RuntimeError("observer bug")

    wf.subscribe(bad)
    wf.subscribe(lambda e: good.append(e.event))
    run = wf.run("x")
    run.step_requirements[0].confirm()
    out = wf.continue_run(run)
    assert out.status is RunStatus.completed
    assert good[0] == "WorkflowStarted" and good[-1] == "WorkflowCompleted"
    assert "observer bug" in caplog.text


def test_observers_get_events_of_runs_from_threads(tmp_path) -> None:
    import threading

    wf = Workflow(
        name="threads",
        db=SqliteDb(db_file=tmp_path / "t.db"),
        steps=[Step(name="s", executor=lambda si: si.input)],
    )
    completed: list[Any] = []
    wf.subscribe(
        lambda e: completed.append(e.content) if isinstance(e, WorkflowCompletedEvent) else None
    )
    threads = [threading.Thread(target=wf.run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(completed) == list(range(8))


def test_an_agent_whose_run_is_async(sqlite_db: SqliteDb) -> None:
    class AsyncRunAgent:
        def __init__(self) -> None:
            self.calls: list[str] = []

        async def run(self, input: str, **kwargs: Any) -> Any:
            self.calls.append(input)
            return StepOutput(content=f"ar({input})")

    agent = AsyncRunAgent()
    wf = Workflow(name="w", db=sqlite_db, steps=[Step(name="s", agent=agent)])
    assert wf.run("x").content == "ar(x)"
    assert run_async(wf.arun("y")).content == "ar(y)"
    assert agent.calls == ["x", "y"]


def _record(log: list[str], name: str, result: str) -> str:
    log.append(name)
    return result


def test_two_acontinue_run_race_in_one_loop(sqlite_db: SqliteDb) -> None:
    counter: list[str] = []
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Step(
                name="s",
                executor=lambda si: _record(counter, "s", "done"),
                requires_confirmation=True,
            )
        ],
    )
    run = wf.run("x")
    run.step_requirements[0].confirm(by="alice")

    async def main() -> list[Any]:
        return list(
            await asyncio.gather(
                wf.acontinue_run(run), wf.acontinue_run(run), return_exceptions=True
            )
        )

    results = run_async(main())
    assert sorted(type(r).__name__ for r in results) == ["RunNotPausedError", "WorkflowRunOutput"]
    assert counter == ["s"]


def test_a_refused_async_stream_raises_when_iterated(sqlite_db: SqliteDb) -> None:
    wf = three_steps(sqlite_db)
    run = wf.run("x")
    run.step_requirements[0].confirm(by="alice")
    wf.continue_run(run)

    async def main() -> None:
        async for _ in wf.acontinue_run(run, stream=True, stream_events=True):
            pass

    with pytest.raises(RunNotPausedError, match="alice"):
        run_async(main())


def test_an_async_step_that_raises_ends_the_run_as_error(sqlite_db: SqliteDb) -> None:
    async def ok(step_input: StepInput) -> str:
        return "fine"

    async def boom(step_input: StepInput) -> str:
        raise LookupError("no such thing")

    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[Step(name="ok", executor=ok), Step(name="boom", executor=boom)],
    )
    out = run_async(wf.arun("x"))
    assert out.status is RunStatus.error and "no such thing" in (out.error or "")
    stored = wf.get_run(out.run_id)
    assert stored is not None and stored.status is RunStatus.error
    assert stored.step_results[0].content == "fine"


def test_the_sync_api_runs_async_steps_inside_an_event_loop(sqlite_db: SqliteDb) -> None:
    async def step(step_input: StepInput) -> str:
        await asyncio.sleep(0)
        return "from a coroutine"

    wf = Workflow(name="w", db=sqlite_db, steps=[Step(name="s", executor=step)])

    async def main() -> Any:
        return wf.run("x")  # blocking call from async code, e.g. a sync callback

    assert run_async(main()).content == "from a coroutine"
