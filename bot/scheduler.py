"""Deadlines of pauses, on APScheduler 3 with its jobs in the bot's database.

Each pause with a deadline gets a job ``expire:<requirement id>`` (and, if the route asks,
``remind:<requirement id>``). When a job fires the engine applies ``on_reject`` exactly
once: if two replicas' schedulers both fire, the engine's claim lets one win. At start-up
``reconcile`` gives every paused run with a deadline its job and expires past-due ones.

Jobs reference module-level functions by name (the job store pickles them), which reach
the running bot through ``_ACTIVE``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from engine import StepRequirement

if TYPE_CHECKING:
    from bot.service import Signoff

log = logging.getLogger("signoff.scheduler")
JOBS_TABLE = "signoff_scheduler_jobs"
_ACTIVE: Signoff | None = None


class SharedSQLAlchemyJobStore(SQLAlchemyJobStore):
    """The job store that several replicas share.

    APScheduler 3 assumes one scheduler per store: when two replicas both run a due job,
    the second one's remove or update finds it gone, and the JobLookupError would stop its
    scheduler thread. Here a job already gone is what was wanted; the engine's claim makes
    running the job twice harmless.
    """

    def update_job(self, job: Any) -> None:
        try:
            super().update_job(job)
        except JobLookupError:
            log.debug("job %s was already handled by another replica", job.id)

    def remove_job(self, job_id: str) -> None:
        try:
            super().remove_job(job_id)
        except JobLookupError:
            log.debug("job %s was already removed by another replica", job_id)

    def add_job(self, job: Any) -> None:
        try:
            super().add_job(job)
        except ConflictingIdError:
            # Another replica scheduled the same deadline first: the same job, keep it.
            log.debug("job %s was already scheduled by another replica", job.id)


def _expire_job(workflow_name: str, run_id: str) -> None:
    if _ACTIVE is not None:
        _ACTIVE.expire(workflow_name, run_id)


def _remind_job(workflow_name: str, run_id: str, requirement_id: str) -> None:
    if _ACTIVE is not None:
        _ACTIVE.remind(workflow_name, run_id, requirement_id)


def _sync_job() -> None:
    if _ACTIVE is not None:
        _ACTIVE.sync_paused_runs()
        _ACTIVE.recover_interrupted_runs()
        _ACTIVE.forget_old_requests()


class DeadlineScheduler:
    def __init__(self, signoff: Signoff, *, poll_seconds: float = 5.0) -> None:
        self.signoff = signoff
        self.poll_seconds = poll_seconds
        self.scheduler = BackgroundScheduler(
            jobstores={
                "default": SharedSQLAlchemyJobStore(engine=signoff.db.engine, tablename=JOBS_TABLE),
                "memory": MemoryJobStore(),
            },
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
        )
        signoff.on_pause_recorded.append(self.schedule)

    def start(self, *, paused: bool = False) -> None:
        global _ACTIVE
        _ACTIVE = self.signoff
        # APScheduler creates its table at start without a lock; create it under ours, so
        # replicas starting together on an empty database don't race on it.
        jobs_table = self.scheduler._lookup_jobstore("default").jobs_t
        with self.signoff.db.schema_transaction() as conn:
            jobs_table.create(conn, checkfirst=True)
        self.scheduler.start(paused=paused)
        self.scheduler.add_job(
            _sync_job,
            "interval",
            seconds=self.poll_seconds,
            id="sync",
            jobstore="memory",
            replace_existing=True,
        )
        self.reconcile()

    def stop(self) -> None:
        global _ACTIVE
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if _ACTIVE is self.signoff:
            _ACTIVE = None

    def schedule(self, workflow_name: str, req: StepRequirement) -> None:
        if req.expires_at is None:
            return
        run_id = self._run_id_of(req)
        if run_id is None:
            return
        self.scheduler.add_job(
            _expire_job,
            "date",
            run_date=req.expires_at,
            args=[workflow_name, run_id],
            id=f"expire:{req.requirement_id}",
            replace_existing=True,
        )
        route = self.signoff.routes.get(workflow_name)
        if (
            route
            and route.reminder_before
            and req.expires_at - route.reminder_before
            > (req.paused_at or req.expires_at - route.reminder_before - timedelta(seconds=1))
        ):
            self.scheduler.add_job(
                _remind_job,
                "date",
                run_date=req.expires_at - route.reminder_before,
                args=[workflow_name, run_id, req.requirement_id],
                id=f"remind:{req.requirement_id}",
                replace_existing=True,
            )

    def _run_id_of(self, req: StepRequirement) -> str | None:
        pause = self.signoff.store.get_pause(req.requirement_id)
        return pause.run_id if pause else None

    def reconcile(self) -> int:
        """Post pauses made while the bot was down, recover runs whose process died,
        schedule every deadline, expire the past-due ones at once. Returns how many runs
        it expired."""
        self.signoff.sync_paused_runs()
        self.signoff.recover_interrupted_runs()
        now = self.signoff.clock.now()
        expired = 0
        for name, route in self.signoff.routes.items():
            for paused in route.workflow.list_paused_runs(has_deadline=True):
                req = paused.requirement
                if req.expires_at is not None and req.expires_at <= now:
                    expired += int(self.signoff.expire(name, paused.run_id))
                elif self.scheduler.get_job(f"expire:{req.requirement_id}") is None:
                    self.schedule(name, req)
        return expired

    def run_due(self, now: datetime | None = None) -> int:
        """Run every job due by the injected clock at once (time-skipping, for tests and for
        a clock that is not the wall clock). Returns how many ran."""
        now = now or self.signoff.clock.now()
        ran = 0
        for job in self.scheduler.get_jobs(jobstore="default"):
            if job.next_run_time is not None and job.next_run_time <= now:
                job.remove()
                job.func(*job.args, **job.kwargs)
                ran += 1
        return ran

    def pending_jobs(self) -> list[tuple[str, datetime | None]]:
        return [(j.id, j.next_run_time) for j in self.scheduler.get_jobs(jobstore="default")]
