"""Deadlines: APScheduler jobs in each replica's memory, rebuilt from the database, driven by
the injected clock (``bot.testing``)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from bot.sandbox import DEFAULT_CHANNEL_ID
from bot.scheduler import FULL_SWEEP_INTERVAL, DeadlineScheduler, PauseJobs
from bot.server import Runtime
from bot.testing import pending_jobs, run_due_jobs
from engine import ManualClock, StepRequirement
from tests.bot import workflows as test_workflows
from tests.bot.conftest import CAROL, BotHarness, make_routes
from tests.bot.test_approval_flow import _start


def test_deadline_job_cancels_exactly_once_and_updates_message(harness: BotHarness) -> None:
    run_id = _start(harness, "cancel_me")
    message = harness.pause_message("danger")
    req = harness.runtime.db.get_run(run_id).step_requirements[0]
    jobs = pending_jobs(harness.runtime.scheduler)
    assert jobs[f"expire:{req.requirement_id}"] == req.expires_at

    assert run_due_jobs(harness.runtime.scheduler) == 0  # not due yet
    harness.clock.advance(timedelta(hours=1, seconds=1))
    assert run_due_jobs(harness.runtime.scheduler) == 2  # the route's reminder, then the deadline
    run = harness.wait_run(run_id, "cancelled")
    assert "timed out" in run.content
    # A second replica's job firing late changes nothing.
    assert harness.runtime.deadlines.expire("cancel_me", run_id) is False
    decisions = harness.runtime.db.get_decisions(run_id)
    assert [d.outcome.value for d in decisions] == ["timed_out"]
    harness.wait(
        lambda s: "Timed out — cancelled" in str(s.message(message.channel, message.ts).blocks),
        "message shows timeout",
    )
    harness.wait(
        lambda s: any("timed out" in m.text for m in s.thread(message.channel, message.thread_ts)),
        "thread told",
    )
    assert "after" not in test_workflows.EXECUTIONS


def test_skip_on_timeout_runs_the_rest(harness: BotHarness) -> None:
    run_id = _start(harness, "skip_on_timeout")
    harness.pause_message("maybe")
    harness.clock.advance(timedelta(minutes=31))
    run_due_jobs(harness.runtime.scheduler)
    run = harness.wait_run(run_id, "completed")
    assert [(s.step_name, s.skipped) for s in run.step_results] == [
        ("maybe", True),
        ("finally", False),
    ]


def test_restart_reconciles_jobs_and_expires_past_due(harness: BotHarness) -> None:
    due_id = _start(harness, "skip_on_timeout")
    later_id = _start(harness, "cancel_me")
    harness.pause_message("maybe")
    harness.pause_message("danger")
    # The bot goes down (its jobs were in its memory: gone) and time passes.
    harness.runtime.stop()
    harness.clock.advance(timedelta(minutes=45))

    restarted = Runtime(
        harness.runtime.settings,
        routes=make_routes(),
        db=harness.runtime.db,
        client=harness.runtime.client,
        clock=harness.clock,
        scheduler_paused=True,
        outbox_poll_interval=0.05,
    )
    restarted.start()
    try:
        harness.runtime = restarted
        harness.wait_run(due_id, "completed")  # 30-minute deadline passed while down
        assert harness.runtime.db.get_run(later_id).is_paused  # 1 hour: not yet
        later_req = harness.runtime.db.get_run(later_id).step_requirements[0]
        assert f"expire:{later_req.requirement_id}" in pending_jobs(restarted.scheduler)
        harness.clock.advance(timedelta(minutes=20))
        run_due_jobs(restarted.scheduler)
        harness.wait_run(later_id, "cancelled")
    finally:
        restarted.stop()
        # The fixture stops the runtime again; stopping twice must be harmless.


def test_clock_is_injected_not_slept(harness: BotHarness) -> None:
    assert isinstance(harness.runtime.signoff.clock, ManualClock)


def test_reminder_mentions_the_approvers_before_the_deadline(harness: BotHarness) -> None:
    run_id = _start(harness, "cancel_me")
    message = harness.pause_message("danger")
    req = harness.runtime.db.get_run(run_id).step_requirements[0]
    assert req.expires_at is not None
    jobs = pending_jobs(harness.runtime.scheduler)
    assert jobs[f"remind:{req.requirement_id}"] == req.expires_at - timedelta(minutes=10)
    harness.clock.advance(timedelta(minutes=51))
    assert run_due_jobs(harness.runtime.scheduler) == 1  # the reminder, not yet the deadline
    note = harness.wait(
        lambda s: [
            m for m in s.thread(message.channel, message.thread_ts) if "still waits" in m.text
        ],
        "reminder in the thread",
    )
    assert "<@U0BOB>" in note[0].text  # the step's approver is mentioned
    assert harness.runtime.db.get_run(run_id).is_paused


def test_a_pause_that_expires_before_any_replica_posted_it_is_posted_as_timed_out(
    harness: BotHarness,
) -> None:
    # Another process (a script) starts the run; this bot has not seen it yet when the
    # deadline job of some replica expires it.
    elsewhere = next(w for w in test_workflows.make_workflows() if w.name == "skip_on_timeout")
    elsewhere.db = harness.runtime.db
    elsewhere.clock = harness.clock
    run_id = elsewhere.run("late", user_id=CAROL).run_id
    harness.clock.advance(timedelta(minutes=31))
    assert harness.runtime.deadlines.expire("skip_on_timeout", run_id) is True
    harness.wait_run(run_id, "completed")
    harness.wait_outbox_idle()
    pause = next(
        m
        for m in harness.state.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False)
        if "maybe" in m.text and m.thread_ts and m.ts != m.thread_ts
    )
    assert "Timed out" in str(pause.blocks) and "actions" not in str(pause.blocks)
    thread = harness.state.thread(DEFAULT_CHANNEL_ID, pause.thread_ts)
    assert sum("timed out" in m.text and not m.blocks for m in thread) == 1


def test_stop_while_a_poll_runs_waits_for_it_and_returns(harness: BotHarness) -> None:
    # APScheduler's shutdown holds its job stores' lock while it waits for running jobs; a
    # poll needs that lock to finish (it drops stale jobs). Stopping must wait for the poll
    # first, then shut down.
    entered, release = threading.Event(), threading.Event()

    class SlowSource:  # a pause-job source whose reconcile blocks, once armed
        armed = False

        def schedule(self, workflow_name: str, req: StepRequirement, jobs: PauseJobs) -> None:
            pass

        def reconcile(
            self, now: datetime, jobs: PauseJobs, *, changed_since: datetime | None
        ) -> set[str]:
            if self.armed:
                entered.set()
                release.wait()
            return set()  # the job below is stale: the poll will drop it

    runtime = harness.runtime
    slow = SlowSource()
    jobs = PauseJobs(runtime.signoff, runtime.deadlines, sources=(slow,))
    scheduler = DeadlineScheduler(
        runtime.signoff, runtime.publisher, jobs, poll_interval=timedelta(hours=1)
    )
    scheduler.start()
    jobs.add_pause_job("expire:stale", datetime.now(UTC) + timedelta(days=1), lambda **_: True)
    slow.armed = True
    harness.clock.advance(FULL_SWEEP_INTERVAL)  # so the poll is a full sweep, which drops
    poll_job = scheduler.scheduler.get_job("poll")
    assert poll_job is not None
    poll_job.modify(next_run_time=datetime.now(UTC))  # the scheduler's own thread runs it
    assert entered.wait(10)
    stopper = threading.Thread(target=scheduler.stop)
    stopper.start()
    with jobs._idle:  # stop() has begun
        assert jobs._idle.wait_for(lambda: jobs._stopping, timeout=10)
    release.set()
    stopper.join(30)
    assert not stopper.is_alive(), "stop() and the running poll wait for each other"
    assert not scheduler.scheduler.running
