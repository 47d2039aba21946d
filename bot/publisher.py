"""Engine events to Slack, through the outbox: each run's root message, its pauses, their
outcomes and the thread notes, all that one event causes committed in one transaction.
Also posts pauses made elsewhere (a script calling ``workflow.run``) that have no message.

Observers given at construction are told of each pause recorded (deadline jobs, DM
copies) and of each event after the bot's own handling, inside its transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot import blocks
from bot.forms import closing_notices
from bot.kinds import OutboxKind
from bot.outbox_queue import Item, OutboxQueue
from bot.routing import SlackRoute
from engine import (
    TIMEOUT_ACTOR,
    Decision,
    Outcome,
    StepApprovalProgressEvent,
    StepContinuedEvent,
    StepPausedEvent,
    StepRequirement,
    WorkflowCancelledEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowRunEvent,
    WorkflowRunOutput,
    WorkflowStartedEvent,
)

if TYPE_CHECKING:
    from bot.service import Signoff

log = logging.getLogger("signoff.publisher")
SYNC_PAGE = 500

PauseObserver = Callable[[str, StepRequirement], None]
EventObserver = Callable[[WorkflowRunEvent, SlackRoute, WorkflowRunOutput, datetime], None]


class Publisher:
    """Observes every route's workflow and turns its runs' lifecycle into outbox rows."""

    def __init__(
        self,
        signoff: Signoff,
        queue: OutboxQueue,
        *,
        on_pause_recorded: Sequence[PauseObserver] = (),
        on_event: Sequence[EventObserver] = (),
    ) -> None:
        self.routes = signoff.routes
        self.db = signoff.db
        self.store = signoff.store
        self.queue = queue
        self.channels = signoff.channels
        self.clock = signoff.clock
        self.metrics = signoff.metrics
        self.forms = signoff.forms
        self._pause_observers = tuple(on_pause_recorded)
        self._event_observers = tuple(on_event)
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        """Start observing every route's workflow."""
        for route in self.routes.values():
            self._unsubscribe.append(route.workflow.subscribe(self.on_event))

    def stop(self) -> None:
        """Stop observing."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def on_event(self, event: WorkflowRunEvent) -> None:
        """One engine event: its outbox rows and its observers', in one transaction."""
        run = event.run_output
        route = self.routes.get(event.workflow_name or "")
        if run is None or route is None:
            return
        now = self.clock.now()
        with self.queue.batch(now):
            self._handle_event(event, route, run, now)
            for callback in self._event_observers:
                callback(event, route, run, now)

    def _handle_event(
        self, event: WorkflowRunEvent, route: SlackRoute, run: WorkflowRunOutput, now: datetime
    ) -> None:
        if isinstance(event, WorkflowStartedEvent):
            self._ensure_root(route, run, now=now)
        elif isinstance(event, StepPausedEvent):
            self._post_pause(route, run, event.requirement, now=now)
        elif isinstance(event, StepContinuedEvent) and event.requirement is not None:
            req = event.requirement
            self.metrics.decisions.labels(outcome=event.outcome).inc()
            if req.timed_out:
                self.metrics.timeouts.labels(on_reject=req.on_reject.value).inc()
                # A deadline may pass before any replica posted the pause (paused elsewhere,
                # expired at once): post it now, so its thread shows what timed out.
                self._post_pause(route, run, req, now=now)
            self.queue.enqueue(*resolve_item(run, req, now), now)
            self._enqueue_root_update(run, now)
            if req.timed_out:
                self._note(run, f"timeout:{req.requirement_id}", blocks.timeout_note(req), now)
            self._close_forms(run.run_id, req, now)
        elif isinstance(event, StepApprovalProgressEvent) and event.requirement is not None:
            self._vote_progress(route, run, event.requirement, now)
        elif isinstance(event, WorkflowCompletedEvent):
            self._enqueue_root_update(run, now)
            self._note(run, "completed", blocks.completion_note(run), now)
        elif isinstance(event, WorkflowCancelledEvent):
            self._enqueue_root_update(run, now)
            # A deadline that cancels the run has said so in its timeout note: one notice.
            if event.cancelled_by != TIMEOUT_ACTOR:
                text = blocks.cancelled_note(
                    step_name=event.step_name, cancelled_by=event.cancelled_by, reason=event.reason
                )
                self._note(run, "cancelled", text, now)
        elif isinstance(event, WorkflowErrorEvent):
            self._enqueue_root_update(run, now)
            self._note(run, "failed", blocks.failed_note(event.error), now)

    def _vote_progress(
        self, route: SlackRoute, run: WorkflowRunOutput, req: StepRequirement, now: datetime
    ) -> None:
        """A vote that left the pause open: the pause message re-rendered in place (its
        buttons kept, the progress shown; DM copies follow, bot/notify.py) and one thread
        note per vote."""
        lead = run.step_requirements[0].requirement_id if run.step_requirements else None
        if route.posts_in_channel(req.step_name):  # notify="dm": only the copies show it
            key = f"pause_update:{lead or req.requirement_id}:{run.version}"
            self.queue.enqueue(
                key, run.run_id, OutboxKind.pause_update, {"requirement_id": lead}, now
            )
        votes = [
            d
            for d in self.db.get_decisions(run.run_id)
            if d.requirement_id == req.requirement_id and d.is_vote
        ]
        if votes:
            vote, values = votes[-1], votes[-1].values or {}
            approved = vote.outcome is not Outcome.rejected
            needed = values.get("approvals_needed" if approved else "rejections_needed", 0)
            text = blocks.vote_note(
                req.step_name, vote.decided_by or "", approved=approved, needed=int(needed)
            )
            self._note(run, f"vote:{req.requirement_id}:{vote.decided_by}", text, now)

    def _ensure_root(self, route: SlackRoute, run: WorkflowRunOutput, *, now: datetime) -> None:
        channel = self.channels.channel_for(route, None)
        self.store.record_run(run_id=run.run_id, workflow_name=route.name, channel=channel, now=now)
        self.queue.enqueue(
            f"root:{run.run_id}",
            run.run_id,
            OutboxKind.root,
            {"user_id": run.user_id, "created_at": run.created_at.isoformat()},
            now,
        )

    def _post_pause(
        self, route: SlackRoute, run: WorkflowRunOutput, req: StepRequirement, *, now: datetime
    ) -> None:
        """Record the pause and enqueue its message. A pause with several requirements (a
        Parallel's) is one message: recorded for every requirement at once (each is decided
        on its own, by its own token), posted once for the first."""
        self._ensure_root(route, run, now=now)
        channel = self.channels.channel_for(route, req.step_name)
        ids = [r.requirement_id for r in run.step_requirements]
        group = list(run.step_requirements) if len(ids) > 1 and req.requirement_id in ids else [req]
        lead = group[0]
        if lead.requirement_id != req.requirement_id:
            return  # recorded with the first requirement's event
        recorded = [
            r
            for r in group
            if self.store.record_pause(
                requirement_id=r.requirement_id,
                run_id=run.run_id,
                workflow_name=route.name,
                step_name=r.step_name,
                channel=channel,
                now=now,
            )
        ]
        if not any(r.requirement_id == lead.requirement_id for r in recorded):
            return
        if route.posts_in_channel(lead.step_name):  # notify="dm": only direct messages
            self.queue.enqueue(
                f"pause:{lead.requirement_id}",
                run.run_id,
                OutboxKind.pause,
                {"requirement_id": lead.requirement_id},
                now,
            )
        self._enqueue_root_update(run, now)
        for r in recorded:
            for callback in self._pause_observers:
                callback(route.name, r)

    def _enqueue_root_update(self, run: WorkflowRunOutput, now: datetime) -> None:
        key = f"root_update:{run.run_id}:{run.status.value}:{run.version}:{len(run.step_results)}"
        self.queue.enqueue(key, run.run_id, OutboxKind.root_update, {}, now)

    def _note(self, run: WorkflowRunOutput, what: str, text: str, now: datetime) -> None:
        note_to_thread(self.queue, run, what, text, now)

    def sync_paused_runs(self, *, changed_since: datetime | None = None) -> int:
        """Post pauses made elsewhere (other processes) that have no Slack message yet:
        of every paused run, or of those written since ``changed_since``. Only the runs to
        post are read in full; the rest is an index read and a lookup of known pauses."""
        posted = 0
        now = self.clock.now()
        for route in self.routes.values():
            # One index read of every paused run's pause id (small rows: no run's data), then
            # the known ones looked up a page at a time. Offset pages would re-sort the
            # paused runs for every page.
            waiting = route.workflow.list_paused_requirement_ids(changed_since=changed_since)
            for start in range(0, len(waiting), SYNC_PAGE):
                page = waiting[start : start + SYNC_PAGE]
                known = self.store.known_pause_ids([pid for _, pid in page if pid is not None])
                for run_id, pause_id in page:
                    if pause_id in known:
                        continue
                    run = route.workflow.get_run(run_id)
                    if run is None or not run.is_paused:
                        continue
                    req = run.step_requirements[0]
                    if pause_id is None and self.store.known_pause_ids([req.requirement_id]):
                        continue  # written by an older release: no pause id in its row
                    self._post_pause(route, run, req, now=now)
                    posted += 1
        return posted

    def _close_forms(self, run_id: str, req: StepRequirement, now: datetime) -> None:
        """Replace forms still open on a pause that was just decided (or timed out), opened
        through any replica: taken in this event's transaction, updated by the outbox."""
        decision = Decision.from_requirement(run_id, req, at=now)
        notices = closing_notices(
            self.forms, req.requirement_id, step_name=req.step_name, decision=decision
        )
        self.queue.enqueue_from(notices, now)


def note_to_thread(
    queue: OutboxQueue, run: WorkflowRunOutput, what: str, text: str, now: datetime
) -> None:
    """A note in the run's thread, once per ``what``."""
    queue.enqueue(f"note:{run.run_id}:{what}", run.run_id, OutboxKind.note, {"text": text}, now)


def resolve_item(run: WorkflowRunOutput, req: StepRequirement, now: datetime) -> Item:
    """The outbox item that updates a decided pause's message (key, run id, kind, data). A
    pause with several requirements (a Parallel's) is one message: one update keyed by its
    first requirement, showing every requirement's outcome."""
    group = list(run.step_requirements)
    data: dict[str, Any]
    if len(group) > 1 and any(r.requirement_id == req.requirement_id for r in group):
        lead = group[0]
        data = {
            "requirement": lead.to_dict(),
            "siblings": [r.to_dict() for r in group],
            "decision_at": (lead.decided_at or now).isoformat(),
        }
        return f"resolve:{lead.requirement_id}", run.run_id, OutboxKind.resolve, data
    data = {"requirement": req.to_dict(), "decision_at": (req.decided_at or now).isoformat()}
    return f"resolve:{req.requirement_id}", run.run_id, OutboxKind.resolve, data


__all__ = ["EventObserver", "PauseObserver", "Publisher", "note_to_thread", "resolve_item"]
