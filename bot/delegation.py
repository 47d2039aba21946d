"""Delegation: an approver hands a pending decision to someone else, with a reason, where
the route (or step route) says ``allow_delegation=True``.

The pause message's overflow menu "Delegate…" opens a modal with a user picker; on submit
the delegation is recorded (``slack_delegations``, one per delegator and pause: the row and
its thread note commit together) and both people are told. From then on the delegate may
decide the pause in the delegator's place — the delegator no longer may, so one seat stays
one vote — and, on a route with groups, the delegate fits the groups like an escalation's
deciders do. Every delegation is in the audit (``/signoff audit``, ``signoff runs``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot import blocks
from bot.decisions import DecisionResult
from bot.kinds import OutboxKind
from bot.notify import Kind, NotifyStore, home_group, policy_update_items
from bot.store import slack_delegations
from engine import StepRequirement, WorkflowRunOutput

if TYPE_CHECKING:
    from bot.decider import Decider
    from bot.permissions import Permissions
    from bot.routing import SlackRoute
    from bot.service import Signoff
    from bot.teller import Teller

log = logging.getLogger("signoff.delegation")


@dataclass(frozen=True)
class Delegation:
    """One delegation of a pause: who handed it to whom, why and when."""

    requirement_id: str
    delegator_id: str
    delegate_id: str
    run_id: str
    step_name: str
    reason: str | None
    delegated_at: datetime


class Delegations:
    """The delegations of pauses as a policy: delegates may decide, delegators may not any
    more, pause messages show them (all state in the database: any replica agrees)."""

    def __init__(self, signoff: Signoff) -> None:
        self.engine = signoff.store.engine

    # -- who may decide ---------------------------------------------------------------------
    def deciders(self, route: SlackRoute, run: WorkflowRunOutput, step_name: str) -> frozenset[str]:
        """The delegates of this run's open pause at ``step_name``."""
        requirement_id = _waiting_id(run, step_name)
        if requirement_id is None or not route.delegation_allowed(step_name):
            return frozenset()
        return frozenset(d.delegate_id for d in self.of_pause(requirement_id))

    def refusal(
        self, user_id: str, route: SlackRoute, run: WorkflowRunOutput, step_name: str
    ) -> str | None:
        """Why a delegator may not decide any more (None: not a delegator here)."""
        requirement_id = _waiting_id(run, step_name)
        if requirement_id is None or not route.delegation_allowed(step_name):
            return None
        for d in self.of_pause(requirement_id):
            if d.delegator_id == user_id:
                return f"you delegated this decision to {blocks.mention(d.delegate_id)}."
        return None

    def notes(self, route: SlackRoute, run: WorkflowRunOutput, req: StepRequirement) -> list[str]:
        """The pause message's lines about its delegations."""
        if not route.delegation_allowed(req.step_name) or not run.is_paused:
            return []
        return [
            f":handshake: {blocks.mention(d.delegator_id)} delegated to "
            f"{blocks.mention(d.delegate_id)}"
            for d in self.of_pause(req.requirement_id)
        ]

    # -- records ---------------------------------------------------------------------------------
    def of_pause(self, requirement_id: str) -> list[Delegation]:
        """The delegations of one pause."""
        query = select(slack_delegations).where(
            slack_delegations.c.requirement_id == requirement_id
        )
        with self.engine.connect() as conn:
            return [_delegation(r._mapping) for r in conn.execute(query)]


class Delegator:
    """Records delegations from the "Delegate…" modal."""

    def __init__(
        self,
        signoff: Signoff,
        *,
        decider: Decider,
        permissions: Permissions,
        teller: Teller,
    ) -> None:
        self.signoff = signoff
        self.db = signoff.db
        self.decider = decider
        self.permissions = permissions
        self.teller = teller

    def delegate(
        self, token: object, *, user_id: str, delegate_id: str | None, reason: str | None
    ) -> DecisionResult:
        """Record ``user_id``'s delegation of the pause ``token`` to ``delegate_id``."""
        loaded = self.decider.load_pause(token, user_id)
        if isinstance(loaded, DecisionResult):
            return loaded
        pause, route, run, req = loaded
        name = blocks.escape(req.step_name)
        why = self._why_not(route, run, req, user_id=user_id, delegate_id=delegate_id)
        if why is not None or delegate_id is None:
            return DecisionResult(False, why or "Choose a person to delegate to.")
        now = self.signoff.clock.now()
        note = blocks.delegation_note(req.step_name, user_id, delegate_id, reason)
        item = (
            f"note:{run.run_id}:delegated:{req.requirement_id}:{user_id}",
            run.run_id,
            OutboxKind.note,
            {"text": note},
        )
        store = self.signoff.store
        with self.db.write() as conn:
            row = conn.execute(
                store._insert_ignore(slack_delegations),
                {
                    "requirement_id": req.requirement_id,
                    "delegator_id": user_id,
                    "delegate_id": delegate_id,
                    "run_id": run.run_id,
                    "step_name": req.step_name,
                    "reason": reason,
                    "delegated_at": now,
                },
            ).first()
            if row is None:
                return DecisionResult(False, f"You delegated *{name}* already.")
            updates = policy_update_items(route, run, req, f"delegated:{user_id}")
            if delegate_id in NotifyStore(self.db).home_users():
                key = f"{Kind.home}:{delegate_id}:{req.requirement_id}:delegated:{user_id}"
                data = {"user_id": delegate_id}
                updates.append((key, home_group(delegate_id), Kind.home.value, data))
            store.enqueue_on(conn, [item, *updates], now=now)
        self.signoff.outbox_wakeup.set()
        log.info("%s delegated %s of run %s to %s", user_id, req.step_name, run.run_id, delegate_id)
        ref = store.get_run_ref(run.run_id)
        channel = pause.channel_id or pause.channel
        thread = ref.root_ts if ref is not None and pause.channel == ref.channel else None
        self.teller.tell(
            channel=channel,
            user_id=delegate_id,
            thread_ts=thread,
            text=f"{blocks.mention(user_id)} delegated *{name}* of "
            f"*{blocks.escape(route.name)}* to you"
            + (f": {blocks.escape(reason)}" if reason else "")
            + ". You may decide it in its message.",
        )
        return DecisionResult(
            True, f"You delegated *{name}* to {blocks.mention(delegate_id)}.", tell=True
        )

    # One guard per reason a delegation is refused, each returning what to tell the person.
    def _why_not(  # noqa: PLR0911
        self,
        route: SlackRoute,
        run: WorkflowRunOutput,
        req: StepRequirement,
        *,
        user_id: str,
        delegate_id: str | None,
    ) -> str | None:
        name = blocks.escape(req.step_name)
        if not route.delegation_allowed(req.step_name):
            return f"*{name}* cannot be delegated."
        if delegate_id is None:
            return "Choose a person to delegate to."
        if delegate_id == user_id:
            return "Choose someone other than yourself."
        if user_id in (*req.approved_by, *req.rejected_by):
            return f"You already decided *{name}*: it cannot be delegated."
        if run.user_id == delegate_id and not route.requester_may_decide(req.step_name):
            return "The person who started this run may not decide it."
        if delegate_id in req.excluded_deciders:
            return f"{blocks.mention(delegate_id)} may not decide it."
        if self.permissions.may_decide(delegate_id, route, run, req.step_name)[0]:
            return f"{blocks.mention(delegate_id)} may decide *{name}* already."
        return None


def _waiting_id(run: WorkflowRunOutput, step_name: str) -> str | None:
    if not run.is_paused:
        return None
    req = next((r for r in run.step_requirements if r.step_name == step_name), None)
    return req.requirement_id if req else None


def _delegation(row: object) -> Delegation:
    data = dict(row)  # type: ignore[call-overload]
    return Delegation(
        requirement_id=str(data["requirement_id"]),
        delegator_id=str(data["delegator_id"]),
        delegate_id=str(data["delegate_id"]),
        run_id=str(data["run_id"]),
        step_name=str(data["step_name"]),
        reason=data["reason"],
        delegated_at=data["delegated_at"],
    )
