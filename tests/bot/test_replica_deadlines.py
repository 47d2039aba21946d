"""Two replicas (two ``Runtime``s on one database, each with its own in-memory scheduler) hold
the same deadline jobs and fire them together: one expiry and one reminder per pause.

Time is the shared injected clock; both schedulers are paused and their due jobs run with
``bot.testing.run_due_jobs``, from two threads at once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from bot.sandbox import DEFAULT_CHANNEL_ID, Message, SlackFakeServer
from bot.server import Runtime
from bot.testing import ManualClock, pending_jobs, run_due_jobs
from tests.bot import workflows as test_workflows
from tests.bot.conftest import CAROL

REMINDER = "still waits for a decision"
TIMEOUT_NOTE = re.compile(r"timed out at <!date\^\d+\^.*> — run cancelled")


def in_parallel(*calls: Callable[[], object]) -> None:
    """Run the calls in threads released together; re-raise the first failure."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def wait_delivered(replica: Runtime, timeout: float = 10.0) -> None:
    """Until every outbox item due so far has been sent (by either replica; an App Home
    refresh held to its interval is not due): the outbox is in the database, so this reads
    the database until it says so."""
    deadline = time.monotonic() + timeout
    store, clock = replica.signoff.store, replica.signoff.clock
    while True:
        counts = store.outbox_counts()
        if not store.outbox_unsettled(now=clock.now()):
            return
        assert time.monotonic() < deadline, f"outbox not delivered within {timeout}s: {counts}"
        time.sleep(0.01)


def thread_texts(fake: SlackFakeServer, message: Message) -> list[str]:
    assert message.thread_ts is not None
    return [m.text for m in fake.state.thread(message.channel, message.thread_ts)]


def pause_message(fake: SlackFakeServer, step_name: str) -> Message:
    def find(state: object) -> Message | None:
        for m in fake.state.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False):
            if any(b.get("type") == "actions" for b in m.blocks) and step_name in m.text:
                return m
        return None

    return fake.state.wait_for(find, timeout=10, what=f"pause message for {step_name}")


def test_two_replicas_remind_once_and_expire_once(
    replicas: tuple[SlackFakeServer, ManualClock, Runtime, Runtime],
) -> None:
    fake, clock, first, second = replicas
    run_id = first.signoff.start_run("cancel_me", "", user_id=CAROL)
    message = pause_message(fake, "danger")
    run = first.db.get_run(run_id)
    assert run is not None and run.is_paused
    req = run.step_requirements[0]
    assert req.expires_at is not None
    expected = {
        f"expire:{req.requirement_id}": req.expires_at,
        f"remind:{req.requirement_id}": req.expires_at - timedelta(minutes=10),
    }
    # The replica that recorded the pause scheduled it; the other learns of it by its poll.
    assert pending_jobs(first.scheduler) == expected
    assert pending_jobs(second.scheduler) == {}
    second.scheduler.poll()
    assert pending_jobs(second.scheduler) == expected

    clock.advance(timedelta(minutes=51))
    in_parallel(lambda: run_due_jobs(first.scheduler), lambda: run_due_jobs(second.scheduler))
    # Polls after the reminder went out do not send it again.
    in_parallel(first.scheduler.poll, second.scheduler.poll)
    wait_delivered(first)
    assert sum(REMINDER in t for t in thread_texts(fake, message)) == 1

    clock.advance(timedelta(minutes=10))
    in_parallel(
        lambda: run_due_jobs(first.scheduler),
        lambda: run_due_jobs(second.scheduler),
        second.scheduler.poll,  # a poll that finds it past due races the jobs too
    )
    decisions = first.db.get_decisions(run_id)
    assert [d.outcome.value for d in decisions] == ["timed_out"]
    final = first.db.get_run(run_id)
    assert final is not None and final.status.value == "cancelled"
    wait_delivered(first)
    texts = thread_texts(fake, message)
    assert sum(bool(TIMEOUT_NOTE.search(t)) for t in texts) == 1, texts
    assert sum(REMINDER in t for t in texts) == 1, texts
    assert "after" not in test_workflows.EXECUTIONS
    # Nothing is left to fire on either replica once the pause is resolved.
    for replica in (first, second):
        replica.scheduler.poll()
        assert pending_jobs(replica.scheduler) == {}


def test_a_replica_started_after_the_deadline_expires_it_once(
    replicas: tuple[SlackFakeServer, ManualClock, Runtime, Runtime],
) -> None:
    fake, clock, first, second = replicas
    run_id = first.signoff.start_run("cancel_me", "", user_id=CAROL)
    pause_message(fake, "danger")
    first.stop()  # the replica that scheduled it goes down; its jobs go with it
    clock.advance(timedelta(hours=2))
    in_parallel(second.scheduler.poll, second.scheduler.poll)
    decisions = second.db.get_decisions(run_id)
    assert [d.outcome.value for d in decisions] == ["timed_out"]
