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

from datetime import datetime

from bot.scheduler import DEADLINE_JOBSTORE, DeadlineScheduler
from engine.clock import Clock, ManualClock


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


__all__ = ["Clock", "ManualClock", "pending_jobs", "run_due_jobs"]
