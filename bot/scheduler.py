"""Deadlines of pauses, on APScheduler 3 as it is designed: one scheduler per replica, its
jobs in memory.

APScheduler's rule is that a job store is never shared between schedulers, so nothing
about jobs is kept in the database: the database already says everything a job is made
from (paused runs and their deadlines). Each replica's scheduler rebuilds its jobs from it
at start-up and on each poll, and schedules a pause's jobs as soon as it records one.

Each pause with a deadline gets a job ``expire:<requirement id>`` (and, if the route asks,
``remind:<requirement id>``). Several replicas hold the same jobs and may all fire them:

- an expiry is the engine's claim on the paused run, so one replica applies ``on_reject``
  and the others find the run no longer paused;
- a reminder is an outbox item with a unique key, so it is posted once.

A deadline that passed while no replica was running is expired by the first start-up or
poll that sees it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from engine import PausedRun, StepRequirement, Workflow

if TYPE_CHECKING:
    from bot.deadlines import Deadlines
    from bot.publisher import Publisher
    from bot.service import Signoff

log = logging.getLogger("signoff.scheduler")

#: The job store of the pauses' jobs (``expire:…``, ``remind:…``); the poll has its own.
DEADLINE_JOBSTORE = "deadlines"
POLL_JOB_ID = "poll"
#: A poll between full sweeps reads the paused runs written since the previous poll began,
#: less this (see ``DeadlineScheduler``).
CHANGE_OVERLAP = timedelta(seconds=60)
FULL_SWEEP_INTERVAL = timedelta(minutes=5)
STOP_WAIT = timedelta(seconds=30)  # for a running job at stop (a poll, an expiry)
EXPIRE_PREFIX = "expire:"
REMIND_PREFIX = "remind:"


class PauseJobSource(Protocol):
    """More jobs per pause (bot/escalation.py), added through the ``PauseJobs`` given."""

    def schedule(self, workflow_name: str, req: StepRequirement, jobs: PauseJobs) -> None:
        """Add the jobs of a pause just recorded."""
        ...

    def reconcile(
        self, now: datetime, jobs: PauseJobs, *, changed_since: datetime | None
    ) -> set[str]:
        """Add the jobs open pauses should have (only those written since ``changed_since``
        when given, every one when None); returns the ids of those wanted."""
        ...


class PauseJobs:
    """The jobs of pauses held by one replica (expiry, reminder, the sources' jobs), on
    one APScheduler that also runs the poll (``DeadlineScheduler``)."""

    def __init__(
        self,
        signoff: Signoff,
        deadlines: Deadlines,
        *,
        sources: Sequence[PauseJobSource] = (),
    ) -> None:
        self.routes = signoff.routes
        self.store = signoff.store
        self.clock = signoff.clock
        self.deadlines = deadlines
        self._sources = tuple(sources)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore(), DEADLINE_JOBSTORE: MemoryJobStore()},
            # A job whose time passed while its thread was busy still runs (once).
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
        )
        # Jobs this replica has run, so a poll does not schedule them again; only ids of
        # pauses still waiting are kept (see reconcile), so this stays as small as they are.
        self._fired: set[str] = set()
        self._lock = threading.Lock()
        # Jobs running now, and whether stop() began: see stop().
        self._running = 0
        self._stopping = False
        self._idle = threading.Condition()

    def start(self, *, paused: bool = False) -> None:
        """Start the scheduler thread (``paused``: no job runs by the wall clock)."""
        self.scheduler.start(paused=paused)

    def stop(self) -> None:
        """Stop the scheduler, waiting for a job that is running.

        APScheduler's ``shutdown(wait=True)`` waits for running jobs while it holds its job
        stores' lock, which a running poll or expiry needs (``get_jobs``, ``add_job``): so
        no job starts once stopping begins, the running ones are waited for first, with no
        lock held, and only then is the scheduler shut down."""
        if not self.scheduler.running:
            return
        with self._idle:
            self._stopping = True
            self._idle.wait_for(lambda: self._running == 0, timeout=STOP_WAIT.total_seconds())
        self.scheduler.shutdown(wait=True)

    def tracked(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` as a job: counted while it runs, skipped once stopping began."""

        @functools.wraps(func)
        def job(*args: Any, **kwargs: Any) -> Any:
            with self._idle:
                if self._stopping:
                    return None
                self._running += 1
            try:
                return func(*args, **kwargs)
            finally:
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()

        return job

    def schedule(self, workflow_name: str, req: StepRequirement) -> None:
        """Give a pause just recorded its expiry job (and its reminder job, if its route
        asks), and the sources' jobs."""
        if req.expires_at is not None:
            run_id = self._run_id_of(req)
            if run_id is not None:
                self._add_jobs(workflow_name, run_id, req)
        for source in self._sources:
            source.schedule(workflow_name, req, self)

    def reconcile(self, *, changed_since: datetime | None = None) -> int:
        """Give paused runs with a deadline their jobs, expire the past-due ones at once,
        and drop the jobs of pauses no longer waiting. Returns how many runs this call
        expired.

        With ``changed_since``, only the pauses written since then are read for new jobs
        (the poll's usual case: its cost follows what changed, not how many wait); every
        past-due pause is still expired, and stale jobs are dropped only by a full sweep
        (``changed_since=None``), since only it sees every pause still waiting."""
        full = changed_since is None
        # Jobs that existed before the listing: a pause recorded while it runs is not in it,
        # and its jobs must not be taken for stale ones.
        before = {job.id for job in self.scheduler.get_jobs(jobstore=DEADLINE_JOBSTORE)}
        waiting: set[str] = set()
        now = self.clock.now()
        expired = 0
        for name, route in self.routes.items():
            for paused in _with_deadline(route.workflow, now, changed_since):
                req = paused.requirement
                if req.expires_at is None:
                    continue
                waiting.add(f"{EXPIRE_PREFIX}{req.requirement_id}")
                waiting.add(f"{REMIND_PREFIX}{req.requirement_id}")
                if req.expires_at <= now:
                    expired += int(self.deadlines.expire(name, paused.run_id))
                    continue
                self._add_jobs(name, paused.run_id, req)
        for source in self._sources:
            waiting |= source.reconcile(now, self, changed_since=changed_since)
        if full:
            for job_id in before - waiting:
                self._drop(job_id)
            with self._lock:
                self._fired &= waiting
        return expired

    # -- jobs ------------------------------------------------------------------------------
    def _add_jobs(self, workflow_name: str, run_id: str, req: StepRequirement) -> None:
        if req.expires_at is None:
            return
        expire_id = f"{EXPIRE_PREFIX}{req.requirement_id}"
        self.add_pause_job(expire_id, req.expires_at, self.deadlines.expire, workflow_name, run_id)
        remind_at = self._remind_at(workflow_name, req)
        if remind_at is not None:
            remind_id = f"{REMIND_PREFIX}{req.requirement_id}"
            self.add_pause_job(
                remind_id,
                remind_at,
                self.deadlines.remind,
                workflow_name,
                run_id,
                req.requirement_id,
            )

    def add_pause_job(
        self, job_id: str, run_date: datetime, func: Callable[..., bool], *args: str
    ) -> None:
        """Add one job of a pause (once; not again after it ran on this replica):
        ``func(*args)`` at ``run_date``, noted as fired when it runs."""
        with self._lock:
            if job_id in self._fired:
                return
        if self.scheduler.get_job(job_id, DEADLINE_JOBSTORE) is not None:
            return
        self.scheduler.add_job(
            self.tracked(self._fire),
            "date",
            run_date=run_date,
            args=(func, *args),
            kwargs={"job_id": job_id},
            id=job_id,
            jobstore=DEADLINE_JOBSTORE,
            replace_existing=True,
        )

    def _fire(self, func: Callable[..., bool], *args: str, job_id: str) -> bool:
        # Noted before it runs, as each job did itself before: a poll during the job does
        # not add it again.
        with self._lock:
            self._fired.add(job_id)
        return func(*args)

    def _drop(self, job_id: str) -> None:
        job = self.scheduler.get_job(job_id, DEADLINE_JOBSTORE)
        if job is not None:
            job.remove()

    def _remind_at(self, workflow_name: str, req: StepRequirement) -> datetime | None:
        route = self.routes.get(workflow_name)
        if route is None or not route.reminder_before or req.expires_at is None:
            return None
        remind_at = req.expires_at - route.reminder_before
        # A reminder due before the pause began (a deadline shorter than the lead) is none.
        if req.paused_at is not None and remind_at <= req.paused_at:
            return None
        return remind_at

    def _run_id_of(self, req: StepRequirement) -> str | None:
        pause = self.store.get_pause(req.requirement_id)
        return pause.run_id if pause else None


def _with_deadline(
    workflow: Workflow, now: datetime, changed_since: datetime | None
) -> list[PausedRun]:
    """The workflow's paused runs with a deadline: every one, or those past due plus those
    written since ``changed_since``."""
    if changed_since is None:
        return workflow.list_paused_runs(has_deadline=True)
    due = workflow.list_paused_runs(expires_before=now)
    due_ids = {p.run_id for p in due}
    changed = workflow.list_paused_runs(has_deadline=True, changed_since=changed_since)
    return due + [p for p in changed if p.run_id not in due_ids]


class DeadlineScheduler:
    """One replica's poll of the database, on the pause jobs' scheduler.

    Most polls read only the paused runs written since the previous poll (less
    ``CHANGE_OVERLAP``, for a write that committed late or a writer's clock a little
    behind); every ``FULL_SWEEP_INTERVAL`` one reads them all, which also drops jobs of
    pauses decided elsewhere and catches anything the windows missed.
    """

    def __init__(
        self,
        signoff: Signoff,
        publisher: Publisher,
        jobs: PauseJobs,
        *,
        poll_interval: timedelta = timedelta(seconds=5),
    ) -> None:
        if poll_interval <= timedelta(0):
            raise ValueError("poll_interval must be positive")
        self.signoff = signoff
        self.publisher = publisher
        self.jobs = jobs
        self.poll_interval = poll_interval
        self._polled_at: datetime | None = None  # the last reconcile's start (bot's clock)
        self._swept_at: datetime | None = None  # the last full one's

    @property
    def scheduler(self) -> BackgroundScheduler:
        """The APScheduler holding the poll and the pause jobs."""
        return self.jobs.scheduler

    def start(self, *, paused: bool = False) -> None:
        """Start the scheduler thread and rebuild the jobs from the database.

        ``paused`` keeps the thread from running jobs by the wall clock; tests run them by
        the injected clock with ``bot.testing.run_due_jobs``.
        """
        self.jobs.start(paused=paused)
        self.scheduler.add_job(
            self.jobs.tracked(self.poll),
            "interval",
            seconds=self.poll_interval.total_seconds(),
            id=POLL_JOB_ID,
            replace_existing=True,
        )
        self.reconcile()

    def stop(self) -> None:
        """Stop the scheduler, waiting for a job that is running (``PauseJobs.stop``)."""
        self.jobs.stop()

    def poll(self) -> None:
        """What every replica does periodically: post pauses other processes made, recover
        runs whose process died, drop old request keys, open forms and delivered outbox rows
        past their retention, and rebuild the deadline jobs."""
        try:
            self._reconcile(self._changed_since())
            self.signoff.forget_old_requests()
            self.signoff.forget_old_forms()
            self.signoff.forget_old_outbox()
        except Exception:  # the next poll tries again; the scheduler thread must live on
            log.exception("poll of the database failed")

    def reconcile(self) -> int:
        """A full sweep: post pauses made while the bot was down or elsewhere, recover runs
        whose process died, then rebuild the pause jobs from every paused run
        (``PauseJobs.reconcile``). Returns how many runs this call expired."""
        return self._reconcile(None)

    def _changed_since(self) -> datetime | None:
        """Where this poll's window starts; None: time for a full sweep."""
        now = self.signoff.clock.now()
        if (
            self._polled_at is None
            or self._swept_at is None
            or now - self._swept_at >= FULL_SWEEP_INTERVAL
        ):
            return None
        return self._polled_at - CHANGE_OVERLAP

    def _reconcile(self, changed_since: datetime | None) -> int:
        started = self.signoff.clock.now()
        self.publisher.sync_paused_runs(changed_since=changed_since)
        self.signoff.recover_interrupted_runs()
        expired = self.jobs.reconcile(changed_since=changed_since)
        # Only a pass that finished moves the window: after a failed one the next reads on
        # from where this one started.
        self._polled_at = started
        if changed_since is None:
            self._swept_at = started
        return expired


__all__ = [
    "CHANGE_OVERLAP",
    "DEADLINE_JOBSTORE",
    "EXPIRE_PREFIX",
    "FULL_SWEEP_INTERVAL",
    "REMIND_PREFIX",
    "DeadlineScheduler",
    "PauseJobSource",
    "PauseJobs",
]
