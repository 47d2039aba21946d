"""Testing a Signoff bot without waiting for time (as ``temporalio.testing`` is for Temporal).

Build the ``Runtime`` with a ``ManualClock`` and ``scheduler_paused=True``: its scheduler
then keeps the deadline jobs without running them by the wall clock, and the test moves
time itself::

    clock = ManualClock()
    runtime = Runtime(settings, clock=clock, scheduler_paused=True)
    runtime.start()
    ...
    clock.advance(timedelta(hours=1))
    assert run_due_jobs(runtime.scheduler) == 1   # the deadline, applied exactly once
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

from bot.scheduler import DEADLINE_JOBSTORE, DeadlineScheduler
from engine.clock import Clock, ManualClock

if TYPE_CHECKING:
    from bot.server import Runtime


def pending_jobs(scheduler: DeadlineScheduler) -> dict[str, datetime]:
    """The deadline jobs the replica holds: job id (``expire:…``, ``remind:…``) → when."""
    return {
        job.id: job.next_run_time
        for job in scheduler.scheduler.get_jobs(jobstore=DEADLINE_JOBSTORE)
        if job.next_run_time is not None
    }


def run_due_jobs(scheduler: DeadlineScheduler, *, now: datetime | None = None) -> int:
    """Run, in this thread and soonest first, every deadline job due by ``now`` (default: the
    bot's injected clock), as the scheduler would have when that time came. Returns how
    many ran."""
    now = now or scheduler.signoff.clock.now()
    due = sorted(
        (
            job
            for job in scheduler.scheduler.get_jobs(jobstore=DEADLINE_JOBSTORE)
            if job.next_run_time is not None and job.next_run_time <= now
        ),
        key=lambda job: job.next_run_time,
    )
    for job in due:
        job.remove()  # a date job is done once run, as in the scheduler itself
        job.func(*job.args, **job.kwargs)
    return len(due)


def drain_inbox(runtime: Runtime, *, timeout: float = 10.0) -> int:
    """Apply, in this thread, every recorded interaction that is due by the bot's clock
    (clicks, forms, commands recorded before their acks), then wait until none is being
    applied by the worker either. Returns how many this call applied. After it, every
    acknowledged interaction has been applied (or is waiting for a retry time not come)."""
    from bot.inbox import drain

    applied = drain(runtime.signoff, runtime.inbox, timeout=timeout)
    store = runtime.signoff.store
    deadline = time.monotonic() + timeout
    while store.inbox_in_flight(now=runtime.signoff.clock.now()):
        if time.monotonic() > deadline:
            raise TimeoutError("an interaction is still being applied")
        time.sleep(0.005)
    return applied


def wait_outbox_idle(runtime: Runtime, *, timeout: float = 10.0) -> dict[str, int]:
    """Wait until the outbox has nothing due and nothing being delivered; returns its
    counts by state."""
    store = runtime.signoff.store
    deadline = time.monotonic() + timeout
    while store.outbox_unsettled(now=runtime.signoff.clock.now()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the outbox is not idle: {store.outbox_counts()}")
        time.sleep(0.005)
    return store.outbox_counts()


__all__ = [
    "Clock",
    "ManualClock",
    "drain_inbox",
    "pending_jobs",
    "run_due_jobs",
    "wait_outbox_idle",
]
