"""``Signoff``: the bot's core, between the engine and Slack.

- Observes every run of every configured workflow and turns its lifecycle into Slack
  messages, through the durable outbox (``outbox.py`` delivers them).
- Takes decisions from Slack (``decide``) and hands them to the engine: the pause is
  claimed at once (exactly once, in the database) and the remaining steps run in the
  background, never on Slack's ack path.
- Finds pauses made by other processes (a script calling ``workflow.run``) and posts them.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient
from sqlalchemy import Connection

from bot import blocks, policies
from bot.decisions import DecisionAction
from bot.forms import OpenForms
from bot.inbox import START_LEASE, InboxWriter
from bot.metrics import Metrics
from bot.routing import ChannelDirectory, SlackRoute
from bot.store import BotStore, InboxItem, PauseRef
from engine import (
    TIMEOUT_ACTOR,
    AlreadyDecidedError,
    Clock,
    Condition,
    DeciderNotAllowedError,
    Decision,
    DecisionTooLateError,
    EngineError,
    Loop,
    Outcome,
    RequirementKind,
    Router,
    RunNotPausedError,
    RunStatus,
    StepApprovalProgressEvent,
    StepContinuedEvent,
    StepPausedEvent,
    StepRequirement,
    UnknownChoiceError,
    UserInputValidationError,
    Workflow,
    WorkflowCancelledEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowRunEvent,
    WorkflowRunOutput,
    WorkflowStartedEvent,
)
from engine.clock import SYSTEM_CLOCK
from engine.db.base import BaseDb, claim_hook
from engine.errors import DuplicateRunError

log = logging.getLogger("signoff.bot")
GROUP_CACHE_TTL = timedelta(seconds=60)  # the fallback: Slack's subteam events refresh sooner
# Longer than Slack's 5-minute signature window, so every acceptable repeat is still caught.
SEEN_REQUESTS_KEPT = timedelta(hours=1)
ROOT_LINKS_CACHED = 10_000
SYNC_PAGE = 500
# The inbox row a decision being applied came from: marked done in the claim's transaction.
_INBOX_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "signoff_inbox_key", default=None
)


class GroupCheckError(Exception):
    """Slack did not say who is in a user group (not cached: asked again next time)."""


@dataclass(frozen=True)
class DecisionResult:
    """What happened to a decision; ``message`` is what to tell the person (ephemerally)."""

    ok: bool
    message: str
    errors: dict[str, str] | None = None  # for modals: field errors keyed by block id
    # An ok result the person is told too: a vote that left the pause open ("1 more needed").
    tell: bool = False


class Signoff:
    """The bot's core: turns runs into Slack messages and Slack decisions into engine calls."""

    def __init__(
        self,
        *,
        routes: list[SlackRoute],
        db: BaseDb,
        client: WebClient,
        channels: ChannelDirectory,
        clock: Clock | None = None,
        workers: int = 8,
        outbox_retention: timedelta = timedelta(days=7),
    ) -> None:
        self.routes = {r.name: r for r in routes}
        self.db = db
        self.client = client
        self.channels = channels
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.outbox_retention = outbox_retention
        self.store = BotStore(db)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="signoff-run")
        self._unsubscribe: list[Callable[[], None]] = []
        self._group_cache: dict[str, tuple[datetime, frozenset[str]]] = {}
        self._group_lock = threading.Lock()
        self._root_links: dict[str, str] = {}
        self.outbox_wakeup = threading.Event()
        # A decision's own message update: delivered by the outbox's fast lane, not behind
        # the bulk of notes, root updates and App Home refreshes.
        self.urgent_wakeup = threading.Event()
        self.inbox_wakeup = threading.Event()
        self.on_pause_recorded: list[Callable[[str, StepRequirement], None]] = []
        # Called for each event after the bot's own handling, inside the same outbox
        # transaction; and for each reminder sent. Wired by the runtime (bot/notify.py).
        self.on_event_handled: list[
            Callable[[WorkflowRunEvent, SlackRoute, WorkflowRunOutput, datetime], None]
        ] = []
        self.on_reminded: list[
            Callable[[SlackRoute, WorkflowRunOutput, StepRequirement, datetime], None]
        ] = []
        # Told what ``tell`` cannot say ephemerally (a click in a view, e.g. the App Home).
        self.on_untold: list[Callable[[str, str], None]] = []
        self._batch = threading.local()
        self.metrics = Metrics()
        self.forms = OpenForms()
        self.metrics.watch_state(
            self.pending_count, self.store.outbox_counts, self.store.inbox_counts
        )
        self.inbox_writer = InboxWriter(self)
        # What the inbox worker does with each kind of recorded interaction; other
        # listeners add theirs (a handler returns None when it finishes the row itself).
        self.inbox_handlers: dict[str, Callable[[Signoff, InboxItem], DecisionResult | None]] = {
            "decide": _apply_decide,
            "start": _apply_start,
        }
        self.vote_leases = policies.VoteLeases(self.store, self.clock.now)
        # Who may decide a step beyond its approvers (an escalation, a delegation): each
        # gives user IDs for (route, run, step name). Wired by the runtime.
        self.extra_deciders: list[
            Callable[[SlackRoute, WorkflowRunOutput, str], frozenset[str]]
        ] = []
        # Lines a pause message shows about its policy (escalated to…, delegated to…).
        self.pause_notes: list[
            Callable[[SlackRoute, WorkflowRunOutput, StepRequirement], list[str]]
        ] = []
        # Why someone who could decide may not (a delegator): a reason, or None.
        self.decider_refusals: list[
            Callable[[str, SlackRoute, WorkflowRunOutput, str], str | None]
        ] = []
        self.on_event_handled.append(self._on_vote_event)
        for route in routes:
            policies.apply_route_policy(route)  # the engine enforces the route's policy
            wf = route.workflow
            wf.use_default_db(db)  # workflows given without a db get the bot's
            if clock is not None:
                wf.clock = clock

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Create or upgrade the schemas and start observing every route's workflow."""
        self.db.ensure_schema()
        self.store.ensure_schema()
        for route in self.routes.values():
            self._unsubscribe.append(route.workflow.subscribe(self._on_event))

    def stop(self) -> None:
        """Stop observing and wait for the background work in flight."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.inbox_writer.stop()
        self.executor.shutdown(wait=True, cancel_futures=False)

    def workflow(self, name: str) -> Workflow | None:
        """The configured workflow with this name, or None."""
        route = self.routes.get(name)
        return route.workflow if route else None

    # -- starting runs -------------------------------------------------------------------------
    def start_run(
        self,
        workflow_name: str,
        input: Any,
        *,
        user_id: str | None,
        run_id: str | None = None,
        then: Callable[[], None] | None = None,
    ) -> str:
        """Start a run in the background; returns its run id at once. ``then`` is called
        once the run paused, ended or failed (the inbox marks its start done then)."""
        route = self.routes[workflow_name]
        run_id = run_id or new_run_id()
        self.executor.submit(self._run_in_background, route.workflow, input, user_id, run_id, then)
        return run_id

    def _run_in_background(
        self,
        wf: Workflow,
        input: Any,
        user_id: str | None,
        run_id: str,
        then: Callable[[], None] | None = None,
    ) -> None:
        try:
            wf.run(input, user_id=user_id, run_id=run_id)
        except DuplicateRunError:
            log.info("run %s of %s was started already", run_id, wf.name)
        except Exception:
            log.exception("run %s of %s failed outside its steps", run_id, wf.name)
        if then is not None:
            try:
                then()
            except Exception:
                log.warning("after run %s", run_id, exc_info=True)

    # -- events -> Slack (through the outbox) ----------------------------------------------------
    def _on_event(self, event: WorkflowRunEvent) -> None:
        run = event.run_output
        route = self.routes.get(event.workflow_name or "")
        if run is None or route is None:
            return
        now = self.clock.now()
        with self._one_transaction(now):
            self._handle_event(event, route, run, now)
            for callback in self.on_event_handled:
                callback(event, route, run, now)

    @contextmanager
    def _one_transaction(self, now: datetime) -> Iterator[None]:
        """Enqueue everything one event causes in one commit (fewer durable writes)."""
        self._batch.items = []
        try:
            yield
        finally:
            items, self._batch.items = self._batch.items, None
            if items and self.store.enqueue_many(items, now=now):
                self.outbox_wakeup.set()

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
            self._enqueue(*_resolve_item(run, req, now), now)
            self._enqueue_root_update(run, now)
            if req.timed_out:
                self._note(run, f"timeout:{req.requirement_id}", blocks.timeout_note(req), now)
            forms = self.forms.take(req.requirement_id)
            if forms:
                # Not on the decider's path: views.update waits on Slack.
                self.executor.submit(self._close_forms, run.run_id, req, forms, now)
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

    def _on_vote_event(
        self, event: WorkflowRunEvent, route: SlackRoute, run: WorkflowRunOutput, now: datetime
    ) -> None:
        if isinstance(event, StepApprovalProgressEvent) and event.requirement is not None:
            self._vote_progress(route, run, event.requirement, now)

    def _vote_progress(
        self, route: SlackRoute, run: WorkflowRunOutput, req: StepRequirement, now: datetime
    ) -> None:
        """A vote that left the pause open: the pause message re-rendered in place (its
        buttons kept, the progress shown; DM copies follow, bot/notify.py) and one thread
        note per vote."""
        lead = run.step_requirements[0].requirement_id if run.step_requirements else None
        if route.posts_in_channel(req.step_name):  # notify="dm": only the copies show it
            key = f"pause_update:{lead or req.requirement_id}:{run.version}"
            self._enqueue(key, run.run_id, "pause_update", {"requirement_id": lead}, now)
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
        self._enqueue(
            f"root:{run.run_id}",
            run.run_id,
            "root",
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
            self._enqueue(
                f"pause:{lead.requirement_id}",
                run.run_id,
                "pause",
                {"requirement_id": lead.requirement_id},
                now,
            )
        self._enqueue_root_update(run, now)
        for r in recorded:
            for callback in self.on_pause_recorded:
                callback(route.name, r)

    def _enqueue_root_update(self, run: WorkflowRunOutput, now: datetime) -> None:
        key = f"root_update:{run.run_id}:{run.status.value}:{run.version}:{len(run.step_results)}"
        self._enqueue(key, run.run_id, "root_update", {}, now)

    def _note(self, run: WorkflowRunOutput, what: str, text: str, now: datetime) -> None:
        self._enqueue(f"note:{run.run_id}:{what}", run.run_id, "note", {"text": text}, now)

    def enqueue(
        self, key: str, run_id: str, kind: str, data: dict[str, Any], now: datetime
    ) -> None:
        """Add an outbox item (in the current event's transaction, when there is one)."""
        self._enqueue(key, run_id, kind, data, now)

    def _enqueue(
        self, key: str, run_id: str, kind: str, data: dict[str, Any], now: datetime
    ) -> None:
        batch = getattr(self._batch, "items", None)
        if batch is not None:
            batch.append((key, run_id, kind, data))
            return
        if self.store.enqueue(key=key, run_id=run_id, kind=kind, data=data, now=now):
            self.outbox_wakeup.set()

    def sync_paused_runs(self) -> int:
        """Post pauses made elsewhere (other processes) that have no Slack message yet."""
        posted = 0
        now = self.clock.now()
        for route in self.routes.values():
            offset = 0
            while True:  # every paused run, a page at a time: none starves behind others
                paused = route.workflow.list_paused_runs(limit=SYNC_PAGE, offset=offset)
                offset += len(paused)
                known = self.store.known_pause_ids([p.requirement.requirement_id for p in paused])
                for item in paused:
                    if item.requirement.requirement_id in known:
                        continue
                    run = route.workflow.get_run(item.run_id)
                    if run is None or not run.is_paused:
                        continue
                    self._post_pause(route, run, run.step_requirements[0], now=now)
                    posted += 1
                if len(paused) < SYNC_PAGE:
                    break
        return posted

    def recover_interrupted_runs(self) -> None:
        """Runs left running by a process that died (another replica, or this one before a
        restart): each workflow's ``on_interrupted`` policy applies, exactly once. In the
        background: under "resume" recovering a run runs its steps."""
        for route in self.routes.values():
            self.executor.submit(self._recover, route)

    def forget_old_requests(self) -> None:
        """Drop de-duplication keys older than any request that could still be accepted:
        a signature older than 5 minutes is refused before it reaches the bot."""
        self.store.forget_seen_before(self.clock.now() - SEEN_REQUESTS_KEPT)

    def forget_old_outbox(self) -> int:
        """Delete delivered outbox rows older than the retention
        (``SIGNOFF_OUTBOX_RETENTION_DAYS``); returns how many went."""
        cutoff = self.clock.now() - self.outbox_retention
        self.store.forget_failed_before(cutoff)  # given-up interactions: kept as long
        return self.store.forget_sent_before(cutoff)

    def _recover(self, route: SlackRoute) -> None:
        try:
            route.workflow.recover_interrupted_runs(now=self.clock.now())
        except Exception:
            log.exception("recovering interrupted runs of %s failed", route.name)

    # -- permissions ---------------------------------------------------------------------------
    # One early return per reason, each with what to tell the person.
    def may_decide(  # noqa: PLR0911
        self,
        user_id: str,
        route: SlackRoute,
        run: WorkflowRunOutput,
        step_name: str,
        *,
        cached_only: bool = False,
    ) -> tuple[bool, str]:
        """Whether ``user_id`` may decide; ``cached_only`` (before an ack) never asks Slack
        and counts a group not known yet as allowing (the worker checks it for real)."""
        if run.user_id and user_id == run.user_id and not route.requester_may_decide(step_name):
            return False, "you started this run, and its approvals need someone else."
        for refusal in self.decider_refusals:
            why = refusal(user_id, route, run, step_name)
            if why is not None:
                return False, why
        approvers = route.approvers_for(step_name)
        if not approvers or user_id in approvers:
            return True, ""
        unchecked = []
        for group in (a for a in approvers if a.startswith("S")):
            try:
                members = self._group_members(group, cached_only=cached_only)
            except GroupCheckError as exc:
                unchecked.append((group, str(exc)))
                continue
            if members is None:
                return True, ""  # not known before the ack: the worker decides
            if user_id in members:
                return True, ""
        if user_id in self.extra_deciders_of(route, run, step_name):
            return True, ""
        if unchecked:
            groups = ", ".join(blocks.mention(g) for g, _ in unchecked)
            return False, (
                f"Signoff could not check who is in {groups} (Slack said "
                f"`{blocks.escape(unchecked[0][1])}`); please try again."
            )
        who = ", ".join(blocks.mention(a) for a in approvers)
        return False, f"only {who} may decide this step."

    def extra_deciders_of(
        self, route: SlackRoute, run: WorkflowRunOutput, step_name: str
    ) -> frozenset[str]:
        """Who may decide this step beyond its approvers (escalation, delegation)."""
        found: frozenset[str] = frozenset()
        for source in self.extra_deciders:
            found |= source(route, run, step_name)
        return found

    def group_members(self, group_id: str) -> frozenset[str]:
        """The members of a user group, for fan-out (DMs, Home refreshes): empty if Slack
        cannot say now (the cache is not touched by a failure)."""
        try:
            return self._group_members(group_id) or frozenset()
        except (GroupCheckError, SlackApiError, OSError) as exc:
            log.warning("members of group %s unknown for now: %s", group_id, exc)
            return frozenset()

    def _group_members(self, group_id: str, *, cached_only: bool = False) -> frozenset[str] | None:
        """The members of a user group: cached for ``GROUP_CACHE_TTL`` (refreshed sooner
        by Slack's subteam events). A failure is never cached: an ``ok: false`` answer
        raises ``GroupCheckError``; a timeout or 5xx propagates (the inbox retries it).
        ``cached_only``: None instead of asking Slack."""
        with self._group_lock:
            cached = self._group_cache.get(group_id)
            if cached and self.clock.now() - cached[0] < GROUP_CACHE_TTL:
                return cached[1]
        if cached_only:
            return None
        try:
            response = self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            self.record_slack_error("usergroups.users.list", exc)
            status = getattr(exc.response, "status_code", HTTPStatus.OK)
            if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                raise
            error = str(exc.response.get("error") or "unknown")
            log.warning("cannot list members of %s: %s", group_id, error)
            raise GroupCheckError(error) from exc
        members = frozenset(response.get("users") or [])
        with self._group_lock:
            self._group_cache[group_id] = (self.clock.now(), members)
        return members

    def forget_group(self, group_id: str | None) -> None:
        """A group changed (``subteam_members_changed`` / ``subteam_updated``): ask again."""
        with self._group_lock:
            if group_id is None:
                self._group_cache.clear()
            else:
                self._group_cache.pop(group_id, None)

    def can_start(self, user_id: str, route: SlackRoute, *, cached_only: bool = False) -> bool:
        """Whether ``user_id`` may start runs of ``route``; ``cached_only`` (before an ack)
        counts a group not known yet as allowing (the worker checks it for real)."""
        if not route.starters or user_id in route.starters:
            return True
        for group in (g for g in route.starters if g.startswith("S")):
            members = self._group_members(group, cached_only=cached_only)
            if members is None or user_id in members:
                return True
        return False

    # -- decisions ---------------------------------------------------------------------------------
    # One early return per reason a click cannot act, each with what to tell the person.
    def load_pause(  # noqa: PLR0911
        self, token: Any, user_id: str, *, cached_only: bool = False
    ) -> tuple[PauseRef, SlackRoute, WorkflowRunOutput, StepRequirement] | DecisionResult:
        """Look the opaque token up and check the user may act on it (nothing trusted).
        ``cached_only``: reads only, no Slack call (a modal's validation, before its ack)."""
        pause = self.store.get_pause(token) if isinstance(token, str) else None
        route = self.routes.get(pause.workflow_name) if pause else None
        if pause is None or route is None:
            return DecisionResult(False, "This approval request is unknown to Signoff.")
        run = route.workflow.get_run(pause.run_id)
        if run is None:
            return DecisionResult(False, "This run no longer exists.")
        allowed, why = self.may_decide(
            user_id, route, run, pause.step_name, cached_only=cached_only
        )
        if not allowed:
            if why.startswith("Signoff could not check"):
                return DecisionResult(False, f":warning: {why}")
            return DecisionResult(False, f":lock: You are not allowed to decide this: {why}")
        current = next(
            (r for r in run.step_requirements if r.requirement_id == pause.requirement_id), None
        )
        if not run.is_paused or current is None:
            return DecisionResult(False, self._already_decided(run.run_id, pause.requirement_id))
        if len(run.step_requirements) > 1 and not current.unresolved_reasons():
            # Answered, waiting for the pause's other requirements.
            return DecisionResult(False, f"Already decided: {_describe_answer(run, current)}.")
        return pause, route, run, current

    def _already_decided(self, run_id: str, requirement_id: str) -> str:
        for decision in self.db.get_decisions(run_id):
            if decision.requirement_id == requirement_id and not decision.is_vote:
                return f"Already decided: {_describe(decision)}."
        return "This step is no longer waiting for a decision."

    # Each refusal returns at once, with what to tell the person: a guard per reason.
    def decide(  # noqa: PLR0911
        self,
        token: Any,
        *,
        user_id: str,
        action: DecisionAction | str,
        values: dict[str, Any] | None = None,
        reason: str | None = None,
        choices: list[str] | None = None,
        output: str | None = None,
    ) -> DecisionResult:
        """Apply ``action`` (a ``DecisionAction``) from ``user_id`` to the pause ``token``.

        The one entry point for decisions; every argument is JSON-able, so a listener's
        payload can be stored and applied later. Validates, claims the pause (exactly once)
        and continues the run in the background. Input errors come back in ``errors``;
        nothing is stored then.
        """
        act = DecisionAction.parse(action)
        if act is None:
            return DecisionResult(False, "Signoff does not know that action.")
        loaded = self.load_pause(token, user_id)
        if isinstance(loaded, DecisionResult):
            return loaded
        _pause, route, run, req = loaded
        try:
            refused = _answer(
                req, act, by=user_id, values=values, reason=reason, choices=choices, output=output
            )
        except UserInputValidationError as exc:
            return DecisionResult(
                False, str(exc), errors=blocks.errors_for_modal(exc.errors, req.user_input_schema)
            )
        except UnknownChoiceError as exc:
            return DecisionResult(False, f"No such route: {blocks.escape(exc)}.")
        if refused is not None:
            return DecisionResult(False, refused)
        req.decided_at = self.clock.now()  # the bot's clock is the time of record
        waiting = [r for r in run.step_requirements if r is not req and r.unresolved_reasons()]
        if waiting and not req.counts_votes:  # a vote goes to the engine, which counts it
            return self._record_answer(route, run, req, act, left=len(waiting))
        require = policies.route_require(route, req.step_name)
        if not (require and req.counts_votes and req.confirmed is True):
            return self._continue(route.workflow, run, req, act)
        # Check the groups and vote under one lease per pause (any replica): two approvals
        # at once are checked one after the other against the votes as they are.
        with self.vote_leases.held(req.requirement_id) as held:
            if not held:
                return DecisionResult(
                    False, "Someone is deciding this at the same moment: click again."
                )
            fresh = route.workflow.get_run(run.run_id)
            reqs = fresh.step_requirements if fresh is not None else []
            current = next((r for r in reqs if r.requirement_id == req.requirement_id), None)
            if fresh is None or current is None or not fresh.is_paused:
                return DecisionResult(False, self._already_decided(run.run_id, req.requirement_id))
            extra = self.extra_deciders_of(route, fresh, req.step_name)

            def members(group: str) -> frozenset[str]:  # the extra deciders fit any group
                return (self._group_members(group) or frozenset()) | extra

            not_needed = policies.vote_refusal(user_id, current, require, members)
            if not_needed is not None:
                return DecisionResult(False, not_needed)
            current.apply_answer_from(req)
            return self._continue(route.workflow, fresh, current, act)

    def _record_answer(
        self,
        route: SlackRoute,
        run: WorkflowRunOutput,
        req: StepRequirement,
        act: DecisionAction,
        *,
        left: int,
    ) -> DecisionResult:
        """One answer of a pause with several requirements, stored with the paused run
        (compare-and-set on its version: of two answers at once, one is stored and the other
        told to try again); the run goes on when the last one is answered."""
        try:
            route.workflow.db.save_run(run)
        except RunNotPausedError:
            fresh = route.workflow.get_run(run.run_id)
            if fresh is None or not fresh.is_paused:
                return DecisionResult(False, self._already_decided(run.run_id, req.requirement_id))
            return DecisionResult(
                False, "Someone answered another part of this at the same moment: click again."
            )
        lead = run.step_requirements[0].requirement_id
        now = self.clock.now()
        key = f"pause_update:{lead}:{run.version}"
        self._enqueue(key, run.run_id, "pause_update", {"requirement_id": lead}, now)
        self.urgent_wakeup.set()  # the outbox worker updates the message (no Slack call here)
        more = f"{left} more to decide" if left > 1 else "1 more to decide"
        return DecisionResult(True, f"{_DONE[act]} *{blocks.escape(req.step_name)}*; {more}.")

    def input_errors(
        self, req: StepRequirement, values: dict[str, Any], *, user_id: str
    ) -> dict[str, str] | None:
        """A form's field errors by block id, found by the engine's validation on this loaded
        copy of the requirement (nothing is stored): a modal's inline check before its ack."""
        try:
            req.set_user_input(values, by=user_id)
        except UserInputValidationError as exc:
            return blocks.errors_for_modal(exc.errors, req.user_input_schema)
        return None

    def _continue(
        self, wf: Workflow, run: WorkflowRunOutput, req: StepRequirement, act: DecisionAction
    ) -> DecisionResult:
        inbox_key = _INBOX_KEY.get()
        now = self.clock.now()

        def in_the_claim(conn: Connection) -> None:
            # The message's update (its buttons go) and the inbox row's end commit with the
            # claim: a crash cannot leave live buttons on a decided step, nor a decision
            # applied twice.
            if run.status is not RunStatus.paused:  # a vote that leaves it open: no update
                self.store.enqueue_on(conn, [_resolve_item(run, req, now)], now=now)
            if inbox_key is not None:
                self.store.finish_inbox_on(conn, inbox_key, state="done", now=now)

        try:
            with claim_hook(in_the_claim):
                events = wf.continue_run(run, stream=True, stream_events=True)
                first = next(events)  # the claim: raises for everyone but the one winner
        except DecisionTooLateError as exc:
            when = exc.expires_at if isinstance(exc.expires_at, datetime) else req.expires_at
            return DecisionResult(
                False,
                f"Too late: the deadline of *{blocks.escape(req.step_name)}* passed "
                f"{blocks.slack_date(when)}.",
            )
        except RunNotPausedError:
            return DecisionResult(False, self._already_decided(run.run_id, req.requirement_id))
        except (AlreadyDecidedError, DeciderNotAllowedError) as exc:
            return DecisionResult(False, policies.refusal(exc))
        except EngineError as exc:
            return DecisionResult(False, f"Cannot continue: {exc}")
        # Not from this thread: the outbox worker updates the message (no Slack call here).
        self.urgent_wakeup.set()
        if isinstance(first, StepApprovalProgressEvent):
            _drain(events, run.run_id)  # the rest are progress events: nothing runs
            return self._voted(first, act)
        self.executor.submit(_drain, events, run.run_id)
        return DecisionResult(True, f"{_DONE[act]} *{blocks.escape(req.step_name)}*.")

    def _voted(self, event: StepApprovalProgressEvent, act: DecisionAction) -> DecisionResult:
        """A vote recorded, the pause still open: the message shows it now, and the voter is
        told how many more it takes."""
        req, run = event.requirement, event.run_output
        assert req is not None and run is not None
        self.urgent_wakeup.set()  # its pause_update is enqueued: the outbox worker shows it
        approved = act is not DecisionAction.reject
        return DecisionResult(True, policies.vote_recorded(approved, req), tell=True)

    def _close_forms(
        self, run_id: str, req: StepRequirement, forms: list[Any], now: datetime
    ) -> None:
        """Replace forms still open on a pause that was just decided (or timed out)."""
        decision = Decision.from_requirement(run_id, req, at=now)
        if req.timed_out:
            message = f":hourglass_flowing_sand: Too late: {blocks.describe_decision(decision)}."
        else:
            message = f"Already decided: {blocks.describe_decision(decision)}."
        view = blocks.closed_modal(req.step_name.replace("_", " "), message)
        for form in forms:
            try:
                self.client.views_update(view_id=form.view_id, view=view)
            except SlackApiError as exc:  # closed by the person meanwhile: nothing to do
                self.record_slack_error("views.update", exc)
                log.info("views.update of %s: %s", form.view_id, exc.response.get("error"))

    def expire(self, workflow_name: str, run_id: str) -> bool:
        """Apply on_reject to a run whose deadline passed (scheduler jobs call this)."""
        wf = self.workflow(workflow_name)
        if wf is None:
            return False
        try:
            wf.expire_run(run_id, now=self.clock.now())
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
        with self._one_transaction(now):
            self._note(
                run,
                f"reminder:{requirement_id}",
                blocks.reminder_note(req, route.approvers_for(req.step_name)),
                now,
            )
            for callback in self.on_reminded:
                callback(route, run, req, now)
        return True

    def tell(
        self, *, channel: str | None, user_id: str, text: str, thread_ts: str | None = None
    ) -> None:
        """An ephemeral message to one person (in ``thread_ts``'s thread if given); best effort.
        Without a channel (a click in a view), ``on_untold`` is told instead."""
        if not channel:
            for callback in self.on_untold:
                callback(user_id, text)
            return
        try:
            self.client.chat_postEphemeral(
                channel=channel, user=user_id, text=text, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            self.record_slack_error("chat.postEphemeral", exc)
            log.warning("could not tell %s: %s", user_id, exc.response.get("error"))

    def reply_to(self, item: InboxItem, text: str) -> None:
        """Tell the person behind a recorded interaction how it went (best effort): in the
        ack's place for a slash command (its ``response_url``), else ephemerally next to
        what they clicked."""
        reply = item.data.get("reply") or {}
        user_id = item.user_id
        response_url = reply.get("response_url")
        if isinstance(response_url, str) and response_url:
            try:
                WebhookClient(response_url, timeout=10).send(
                    text=text, response_type="ephemeral", replace_original=False
                )
                return
            except Exception:
                log.warning("response_url reply to %s failed", user_id, exc_info=True)
        if isinstance(user_id, str):
            self.tell(
                channel=reply.get("channel"),
                user_id=user_id,
                text=text,
                thread_ts=reply.get("thread_ts"),
            )

    def record_slack_error(self, method: str, exc: SlackApiError) -> None:
        """Count a Slack API error in ``signoff_slack_api_errors``."""
        error = exc.response.get("error") if exc.response is not None else None
        self.metrics.slack_errors.labels(method=method, error=str(error or "unknown")).inc()

    def pending_count(self) -> int:
        """Paused runs of the served workflows: one indexed count, no run's JSON read."""
        return self.db.count_paused_runs(workflow_names=list(self.routes))

    # -- slash command data ------------------------------------------------------------------------
    def pending_for(self, user_id: str) -> list[tuple[str, str, str, datetime | None, str | None]]:
        """What ``user_id`` may decide, for ``/signoff pending``'s ack: database reads only
        (permalinks stored by the outbox when it posted; groups as cached)."""
        items = []
        for route in self.routes.values():
            paused_runs = route.workflow.list_paused_runs(limit=200)
            links = self.store.permalinks([p.requirement.requirement_id for p in paused_runs])
            for paused in paused_runs:
                run = route.workflow.get_run(paused.run_id)
                if run is None:
                    continue
                if not self.may_decide(user_id, route, run, paused.step_name, cached_only=True)[0]:
                    continue
                if user_id in (*paused.requirement.approved_by, *paused.requirement.rejected_by):
                    continue  # voted: it waits for others now
                items.append(
                    (
                        route.name,
                        paused.step_name,
                        paused.run_id,
                        paused.expires_at,
                        links.get(paused.requirement.requirement_id),
                    )
                )
        return items

    def pause_context(
        self,
        route: SlackRoute,
        run: WorkflowRunOutput,
        req: StepRequirement,
        *,
        with_root_link: bool = True,
        siblings: list[StepRequirement] | None = None,
    ) -> blocks.PauseContext:
        """What a pause message shows. ``siblings``: every requirement of a pause with
        several (a Parallel's), in order; by default the run's, while it is paused."""
        if siblings is None and run.is_paused and len(run.step_requirements) > 1:
            siblings = list(run.step_requirements)
        return blocks.PauseContext(
            token=req.requirement_id,
            workflow_name=route.name,
            run=run,
            requirement=req,
            approvers=route.approvers_for(req.step_name),
            root_link=self.root_permalink(run.run_id) if with_root_link else None,
            plan=_plan(route.workflow, req),
            siblings=tuple(siblings or ()),
            groups=self._groups_progress(route, req),
            delegation=route.delegation_allowed(req.step_name),
            notes=tuple(n for notes in self.pause_notes for n in notes(route, run, req)),
        )

    def _groups_progress(
        self, route: SlackRoute, req: StepRequirement
    ) -> tuple[tuple[str, int, list[str]], ...]:
        require = policies.route_require(route, req.step_name)
        if not require:
            return ()
        return tuple(policies.group_progress(req.approved_by, require, self.group_members))

    def root_permalink(self, run_id: str) -> str | None:
        """The permalink of the run's root message, once it is posted (asked once per run;
        only from delivery and after-ack paths, never before an ack)."""
        cached = self._root_links.get(run_id)
        if cached is not None:
            return cached
        ref = self.store.get_run_ref(run_id)
        if ref is None or not ref.root_ts:
            return None
        try:
            link = self.client.chat_getPermalink(
                channel=ref.channel_id or ref.channel, message_ts=ref.root_ts
            ).get("permalink")
        except SlackApiError as exc:
            self.record_slack_error("chat.getPermalink", exc)
            return None
        if isinstance(link, str):
            if len(self._root_links) >= ROOT_LINKS_CACHED:
                self._root_links.pop(next(iter(self._root_links)), None)
            self._root_links[run_id] = link
            return link
        return None


_DONE = {
    DecisionAction.confirm: "Approved",
    DecisionAction.reject: "Rejected",
    DecisionAction.input: "Answered",
    DecisionAction.select: "Route chosen for",
    DecisionAction.edit: "Edited and approved",
    DecisionAction.retry: "Retrying",
    DecisionAction.skip: "Skipped",
}
_ANSWERS: dict[RequirementKind, frozenset[DecisionAction]] = {
    RequirementKind.confirmation: frozenset(
        {DecisionAction.confirm, DecisionAction.reject, DecisionAction.input}
    ),
    RequirementKind.route_selection: frozenset({DecisionAction.select, DecisionAction.reject}),
    RequirementKind.output_review: frozenset(
        {DecisionAction.confirm, DecisionAction.reject, DecisionAction.edit}
    ),
    RequirementKind.iteration_review: frozenset(
        {DecisionAction.confirm, DecisionAction.reject, DecisionAction.edit}
    ),
    RequirementKind.error: frozenset({DecisionAction.retry, DecisionAction.skip}),
    RequirementKind.executor: frozenset({DecisionAction.confirm, DecisionAction.reject}),
}


# One branch per (pause kind, action) pair that the engine answers differently.
def _answer(  # noqa: PLR0911, PLR0912
    req: StepRequirement,
    act: DecisionAction,
    *,
    by: str,
    values: dict[str, Any] | None,
    reason: str | None,
    choices: list[str] | None,
    output: str | None,
) -> str | None:
    """Put the answer on ``req`` (nothing stored yet); a refusal to tell the person, or None."""
    if act not in _ANSWERS[req.kind]:
        return f"*{blocks.escape(req.step_name)}* cannot be answered that way."
    if act is DecisionAction.reject:
        if req.kind is RequirementKind.executor:
            for tool in req.executor_requirements or ():
                tool.reject(reason)
        req.reject(by=by, reason=reason)
    elif act is DecisionAction.skip:
        req.skip(by=by, reason=reason)
    elif act is DecisionAction.retry:
        req.retry(by=by)
    elif act is DecisionAction.select:
        if not choices or not isinstance(choices, list):
            return "Choose a route first."
        if not all(isinstance(c, str) for c in choices):
            return "Choose a route first."
        if len(choices) > 1 and not req.allow_multiple_selections:
            return "Choose one route."
        req.select(*choices, by=by)
    elif act is DecisionAction.edit:
        if not isinstance(output, str):
            return "The edited output is missing."
        req.edit(output, by=by)
    elif act is DecisionAction.input:
        req.set_user_input(values or {}, by=by)
        if req.requires_confirmation:
            req.confirm(by=by)
    elif req.kind is RequirementKind.executor:
        tools = req.executor_requirements or []
        if any(t.requires_user_input for t in tools):
            return "These tool calls need input, which Signoff cannot ask for in Slack yet."
        for tool in tools:
            tool.confirm()
        req.confirm(by=by)
    else:
        if req.requires_user_input:
            return "This step needs input: use *Provide input…*."
        req.confirm(by=by)
    return None


def _plan(wf: Workflow, req: StepRequirement) -> blocks.Plan | None:
    """What runs if a group's confirmation is approved (None for a single step)."""
    if req.kind is not RequirementKind.confirmation:
        return None
    component = wf.locate(req.step_path)
    if component is None or not component.children():
        return None
    if isinstance(component, Condition):
        return blocks.Plan(
            kind=component.step_type.value,
            steps=[c.name for c in component.steps],
            else_steps=[c.name for c in component.else_steps],
        )
    return blocks.Plan(
        kind=component.step_type.value,
        steps=[c.name for c in component.children()],
        iterations=component.max_iterations if isinstance(component, Loop) else None,
        choose_one=isinstance(component, Router),
    )


def _drain(events: Iterator[WorkflowRunEvent], run_id: str) -> None:
    try:
        for _ in events:
            pass
    except Exception:
        log.exception("continuing run %s failed", run_id)


def _describe_answer(run: WorkflowRunOutput, req: StepRequirement) -> str:
    """An answer recorded but not yet in the audit trail (its pause waits for others)."""
    return blocks.describe_decision(Decision.from_requirement(run.run_id, req, at=run.updated_at))


def _describe(decision: Decision) -> str:
    return blocks.describe_decision(decision)


def new_run_id() -> str:
    """A fresh run id (32 hex digits), for a run not started by a keyed interaction."""
    import uuid

    return uuid.uuid4().hex


# -- what the inbox worker does with each recorded kind -------------------------------------------
def _apply_decide(signoff: Signoff, item: InboxItem) -> DecisionResult | None:
    """A recorded decision: ``decide`` with the payload as recorded (new actions pass
    through). Done in the claim's transaction when it wins; else done with a reply."""
    kwargs = dict(item.data.get("decide") or {})
    token = kwargs.pop("token", None)
    if not isinstance(item.user_id, str):
        return DecisionResult(False, "This request had no user.")
    key = _INBOX_KEY.set(item.key)
    try:
        result = signoff.decide(token, user_id=item.user_id, **kwargs)
    finally:
        _INBOX_KEY.reset(key)
    # A vote that does not resolve the pause is told how many more it takes.
    return None if result.ok and not result.tell else result


def _apply_start(signoff: Signoff, item: InboxItem) -> DecisionResult | None:
    """A recorded ``/signoff run``: starts the run under the id its ack announced; done
    once the run paused or ended (a crash before that starts it again, under that id)."""
    data = item.data
    name, run_id = data.get("workflow"), data.get("run_id")
    route = signoff.routes.get(name) if isinstance(name, str) else None
    if route is None or not isinstance(run_id, str) or not isinstance(item.user_id, str):
        return DecisionResult(False, "That workflow is not served any more.")
    try:
        allowed = signoff.can_start(item.user_id, route)
    except GroupCheckError as exc:
        return DecisionResult(
            False,
            f":warning: Signoff could not check whether you may start `{name}` (Slack said "
            f"`{blocks.escape(str(exc))}`); nothing was started. Please try again.",
        )
    if not allowed:
        return DecisionResult(False, f"You may not start `{name}`; nothing was started.")
    if signoff.db.get_run(run_id) is not None:
        return DecisionResult(True, "")  # started before a crash: once is enough
    signoff.store.extend_inbox_lease(item.key, until=signoff.clock.now() + START_LEASE)

    def started() -> None:
        signoff.store.finish_inbox(item.key, state="done", now=signoff.clock.now())

    signoff.start_run(
        str(name), data.get("input"), user_id=item.user_id, run_id=run_id, then=started
    )
    return None


__all__ = ["DecisionResult", "GroupCheckError", "Signoff", "new_run_id"]


def _resolve_item(
    run: WorkflowRunOutput, req: StepRequirement, now: datetime
) -> tuple[str, str, str, dict[str, Any]]:
    """The outbox item that updates a decided pause's message (key, run id, kind, data). A
    pause with several requirements (a Parallel's) is one message: one update keyed by its
    first requirement, showing every requirement's outcome."""
    group = list(run.step_requirements)
    if len(group) > 1 and any(r.requirement_id == req.requirement_id for r in group):
        lead = group[0]
        data = {
            "requirement": lead.to_dict(),
            "siblings": [r.to_dict() for r in group],
            "decision_at": (lead.decided_at or now).isoformat(),
        }
        return f"resolve:{lead.requirement_id}", run.run_id, "resolve", data
    data = {"requirement": req.to_dict(), "decision_at": (req.decided_at or now).isoformat()}
    return f"resolve:{req.requirement_id}", run.run_id, "resolve", data
