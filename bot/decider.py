"""Decisions from Slack, handed to the engine: the pause looked up and checked, the answer
validated, the pause claimed at once (exactly once, in the database) and the remaining
steps run in the background, never on Slack's ack path."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot import blocks, policies
from bot.decisions import DecisionAction, DecisionResult, resolving_decision
from bot.forms import closing_notices
from bot.kinds import InboxState, OutboxKind
from bot.outbox_queue import OutboxQueue
from bot.permissions import Permissions
from bot.publisher import resolve_item
from bot.routing import SlackRoute
from bot.store import InboxItem, OutboxItem, PauseRef
from engine import (
    AlreadyDecidedError,
    DeciderNotAllowedError,
    Decision,
    DecisionTooLateError,
    EngineError,
    RequirementKind,
    RunNotPausedError,
    RunStatus,
    StepApprovalProgressEvent,
    StepRequirement,
    UnknownChoiceError,
    UserInputValidationError,
    Workflow,
    WorkflowRunEvent,
    WorkflowRunOutput,
)
from engine.db.base import claim_hook

if TYPE_CHECKING:
    from bot.outbox import OutboxWorker
    from bot.service import Signoff

log = logging.getLogger("signoff.decider")
# The inbox row a decision being applied came from: marked done in the claim's transaction.
_INBOX_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "signoff_inbox_key", default=None
)


class Decider:
    """Takes decisions on pauses (``decide``) and the inbox's recorded ones."""

    def __init__(
        self,
        signoff: Signoff,
        queue: OutboxQueue,
        permissions: Permissions,
        *,
        outbox: OutboxWorker,
    ) -> None:
        self.routes = signoff.routes
        self.db = signoff.db
        self.store = signoff.store
        self.queue = queue
        self.permissions = permissions
        self.clock = signoff.clock
        self.executor = signoff.executor
        self.forms = signoff.forms
        self.pressure = signoff.pressure
        # A decision's own message update: handed to the outbox's fast lane as it commits.
        self.outbox = outbox
        self.urgent_wakeup = signoff.urgent_wakeup
        self.vote_leases = policies.VoteLeases(self.store, self.clock.now)

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
        allowed, why = self.permissions.may_decide(
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

    def _run_rest(self, events: Iterator[WorkflowRunEvent], run_id: str) -> None:
        """Run the steps after a decision (in the background), once requests waiting went."""
        self.pressure.step_aside()
        _drain(events, run_id)

    def _already_decided(self, run_id: str, requirement_id: str) -> str:
        decision = resolving_decision(self.db, run_id, requirement_id)
        if decision is not None:
            return f"Already decided: {_describe(decision)}."
        return "This step is no longer waiting for a decision."

    def form_opened(self, run_id: str, req: StepRequirement) -> None:
        """A form on ``req`` just recorded as open (``OpenForms.opened``): if the pause was
        decided between its load and the record, the decision's event found no form to
        tell, so it is told now (at most once: the form is taken as its notice is queued)."""
        decision = resolving_decision(self.db, run_id, req.requirement_id)
        if decision is None:
            return  # still waiting: the decision's event tells the form
        notices = closing_notices(
            self.forms, req.requirement_id, step_name=req.step_name, decision=decision
        )
        self.queue.enqueue_from(notices, self.clock.now())

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
            extra = self.permissions.extra_deciders(route, fresh, req.step_name)

            def members(group: str) -> frozenset[str]:  # the extra deciders fit any group
                return (self.permissions.groups.members(group) or frozenset()) | extra

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
        self.queue.enqueue(key, run.run_id, OutboxKind.pause_update, {"requirement_id": lead}, now)
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
        taken: list[OutboxItem] = []

        def in_the_claim(conn: Connection) -> None:
            # The message's update (its buttons go) and the inbox row's end commit with the
            # claim: a crash cannot leave live buttons on a decided step, nor a decision
            # applied twice. The update is taken by this replica's fast lane as it commits.
            if run.status is not RunStatus.paused:  # a vote that leaves it open: no update
                item = self.outbox.take_on(conn, resolve_item(run, req, now), now)
                taken.extend([item] if item is not None else [])
            if inbox_key is not None:
                self.store.finish_inbox_on(conn, inbox_key, state=InboxState.done, now=now)

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
        # Not from this thread: the outbox's fast lane updates the message (no Slack call
        # here); what it could not take (an earlier message of the run unsent) a pass sends.
        if taken:
            self.outbox.deliver_taken(taken)
        else:
            self.urgent_wakeup.set()
        if isinstance(first, StepApprovalProgressEvent):
            _drain(events, run.run_id)  # the rest are progress events: nothing runs
            return self._voted(first, act)
        self.executor.submit(self._run_rest, events, run.run_id)
        return DecisionResult(True, f"{_DONE[act]} *{blocks.escape(req.step_name)}*.")

    def _voted(self, event: StepApprovalProgressEvent, act: DecisionAction) -> DecisionResult:
        """A vote recorded, the pause still open: the message shows it now, and the voter is
        told how many more it takes."""
        req, run = event.requirement, event.run_output
        assert req is not None and run is not None
        self.urgent_wakeup.set()  # its pause_update is enqueued: the outbox worker shows it
        approved = act is not DecisionAction.reject
        return DecisionResult(True, policies.vote_recorded(approved, req), tell=True)

    # -- what the inbox worker does with a recorded decision -----------------------------
    def apply_decide(self, item: InboxItem) -> DecisionResult | None:
        """A recorded decision: ``decide`` with the payload as recorded (new actions pass
        through). Done in the claim's transaction when it wins; else done with a reply."""
        kwargs = dict(item.data.get("decide") or {})
        token = kwargs.pop("token", None)
        if not isinstance(item.user_id, str):
            return DecisionResult(False, "This request had no user.")
        form = item.data.get("form")
        if isinstance(form, str):
            # The submitted form closed with its decision: forgotten before the decision's
            # event takes the pause's open forms, so it is not told "already decided".
            self.forms.closed(form)
        key = _INBOX_KEY.set(item.key)
        try:
            result = self.decide(token, user_id=item.user_id, **kwargs)
        finally:
            _INBOX_KEY.reset(key)
        # A vote that does not resolve the pause is told how many more it takes.
        return None if result.ok and not result.tell else result


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


__all__ = ["Decider"]
