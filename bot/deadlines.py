"""What a pause's deadline jobs do (``bot/scheduler.py`` holds the jobs): expire the pause
(its ``on_reject`` applies, in the engine) or post a reminder in its thread."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot import blocks
from bot.outbox_queue import OutboxQueue
from bot.publisher import note_to_thread
from bot.routing import SlackRoute
from engine import EngineError, RunNotPausedError, StepRequirement, WorkflowRunOutput

if TYPE_CHECKING:
    from bot.service import Signoff

log = logging.getLogger("signoff.deadlines")

ReminderObserver = Callable[[SlackRoute, WorkflowRunOutput, StepRequirement, datetime], None]


class Deadlines:
    """Expiry and reminders of pauses; ``on_reminded`` observers add to a reminder (in its
    transaction), e.g. the approvers' direct messages."""

    def __init__(
        self,
        signoff: Signoff,
        queue: OutboxQueue,
        *,
        on_reminded: Sequence[ReminderObserver] = (),
    ) -> None:
        self.routes = signoff.routes
        self.clock = signoff.clock
        self.queue = queue
        self._reminded = tuple(on_reminded)

    def expire(self, workflow_name: str, run_id: str) -> bool:
        """Apply on_reject to a run whose deadline passed (scheduler jobs call this)."""
        route = self.routes.get(workflow_name)
        if route is None:
            return False
        try:
            route.workflow.expire_run(run_id, now=self.clock.now())
        except RunNotPausedError as exc:
            log.info("deadline of run %s: nothing to do (%s)", run_id, exc.resolution)
            return False
        except EngineError as exc:
            log.info("deadline of run %s: %s", run_id, exc)
            return False
        return True

    def remind(self, workflow_name: str, run_id: str, requirement_id: str) -> bool:
        """Post a reminder in the pause's thread if the run still waits at that requirement."""
        route = self.routes.get(workflow_name)
        run = route.workflow.get_run(run_id) if route else None
        if route is None or run is None or not run.is_paused:
            return False
        req = run.step_requirements[0]
        if req.requirement_id != requirement_id:
            return False
        now = self.clock.now()
        with self.queue.batch(now):
            note_to_thread(
                self.queue,
                run,
                f"reminder:{requirement_id}",
                blocks.reminder_note(req, route.approvers_for(req.step_name)),
                now,
            )
            for callback in self._reminded:
                callback(route, run, req, now)
        return True


__all__ = ["Deadlines", "ReminderObserver"]
