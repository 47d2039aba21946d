"""Escalation: a pause still open ``escalate_after`` its start is escalated, once.

The users and user groups of the route's (or step route's) ``escalate_to`` are mentioned in
the run's thread, sent a direct copy of the pause with ``notify`` dm/both, and may decide it
from then on (next to its approvers; the requester rule still applies). Each replica's
scheduler holds a job ``escalate:<requirement id>`` per such pause, built from the database
like the deadlines (``bot/scheduler.py``): any replica may fire it, and the row in
``slack_escalations`` (its primary key is the pause) is the claim — the replica whose insert
made it enqueues the thread note and the copies in the same transaction, under unique outbox
keys. The row is also the escalation's audit record (``/signoff audit``, ``signoff runs``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot import blocks
from bot.kinds import OutboxKind
from bot.notify import Kind, NotifyStore, dm_group, home_group, policy_update_items
from bot.store import slack_escalations
from engine import StepRequirement, WorkflowRunOutput

if TYPE_CHECKING:
    from bot.permissions import Groups
    from bot.routing import SlackRoute
    from bot.scheduler import PauseJobs
    from bot.service import Signoff

log = logging.getLogger("signoff.escalation")
ESCALATE_PREFIX = "escalate:"


@dataclass(frozen=True)
class Escalation:
    """One escalated pause: to whom, and when."""

    requirement_id: str
    run_id: str
    step_name: str
    escalated_to: tuple[str, ...]
    escalated_at: datetime


class Escalator:
    """The escalation jobs of one replica and what firing one does."""

    def __init__(self, signoff: Signoff, groups: Groups) -> None:
        self.signoff = signoff
        self.groups = groups
        self.engine = signoff.store.engine
        self.db = signoff.db
        self._notify_store = NotifyStore(signoff.db)

    # -- jobs ----------------------------------------------------------------------------------
    def due_at(self, route: SlackRoute, req: StepRequirement) -> datetime | None:
        """When ``req``'s pause escalates (None: its route does not escalate it)."""
        after, to = route.escalation_for(req.step_name)
        if after is None or not to or req.paused_at is None:
            return None
        return req.paused_at + after

    def schedule(self, workflow_name: str, req: StepRequirement, jobs: PauseJobs) -> None:
        """Give a pause just recorded its escalation job, if its route escalates it."""
        route = self.signoff.routes.get(workflow_name)
        due = self.due_at(route, req) if route else None
        if due is None:
            return  # no query for a pause that never escalates
        pause = self.signoff.store.get_pause(req.requirement_id)
        if pause is None:
            return
        jobs.add_pause_job(
            f"{ESCALATE_PREFIX}{req.requirement_id}",
            due,
            self.escalate,
            workflow_name,
            pause.run_id,
            req.requirement_id,
        )

    def reconcile(
        self, now: datetime, jobs: PauseJobs, *, changed_since: datetime | None
    ) -> set[str]:
        """Jobs for every open pause (or those written since ``changed_since``) that
        escalates and has not yet; past-due ones now. Returns the ids of the jobs still
        wanted. A pause not read here keeps the job it was given when first seen."""
        wanted: set[str] = set()
        for name, route in self.signoff.routes.items():
            if not _escalates(route):
                continue
            paused = route.workflow.list_paused_runs(changed_since=changed_since)
            done = self.escalated_ids([p.requirement.requirement_id for p in paused])
            for item in paused:
                req = item.requirement
                due = self.due_at(route, req)
                if due is None or req.requirement_id in done:
                    continue
                if due <= now:
                    self.escalate(name, item.run_id, req.requirement_id)
                    continue
                job_id = f"{ESCALATE_PREFIX}{req.requirement_id}"
                wanted.add(job_id)
                jobs.add_pause_job(
                    job_id, due, self.escalate, name, item.run_id, req.requirement_id
                )
        return wanted

    # -- firing ----------------------------------------------------------------------------------
    def escalate(self, workflow_name: str, run_id: str, requirement_id: str) -> bool:
        """Escalate the pause if it still waits and nobody escalated it yet (any replica);
        returns whether this call did."""
        route = self.signoff.routes.get(workflow_name)
        run = route.workflow.get_run(run_id) if route else None
        if route is None or run is None or not run.is_paused:
            return False
        req = next((r for r in run.step_requirements if r.requirement_id == requirement_id), None)
        if req is None:
            return False
        after, to = route.escalation_for(req.step_name)
        if after is None or not to:
            return False
        now = self.signoff.clock.now()
        items = [self._note_item(run, req, to, after)]
        if route.notify_for(req.step_name).dms:
            items.extend(self._copy_items(run, requirement_id, to))
        items.extend(policy_update_items(route, run, req, "escalated"))
        items.extend(self._home_items(run, requirement_id, to))
        if not self._record(run_id, req, to, now, items):
            return False
        self.signoff.outbox_wakeup.set()
        log.info("pause %s of run %s escalated to %s", req.step_name, run_id, ", ".join(to))
        return True

    def _record(
        self,
        run_id: str,
        req: StepRequirement,
        to: tuple[str, ...],
        now: datetime,
        items: list[tuple[str, str, str, dict[str, Any]]],
    ) -> bool:
        """The claim and its outbox rows, in one transaction; False if another replica (or
        an earlier call) escalated this pause."""
        store = self.signoff.store
        with self.db.write() as conn:
            row = conn.execute(
                store._insert_ignore(slack_escalations),
                {
                    "requirement_id": req.requirement_id,
                    "run_id": run_id,
                    "step_name": req.step_name,
                    "escalated_to": json.dumps(list(to)),
                    "escalated_at": now,
                },
            ).first()
            if row is None:
                return False
            store.enqueue_on(conn, items, now=now)
        return True

    def _note_item(
        self, run: WorkflowRunOutput, req: StepRequirement, to: tuple[str, ...], after: timedelta
    ) -> tuple[str, str, str, dict[str, Any]]:
        text = blocks.escalation_note(req.step_name, to, after)
        key = f"note:{run.run_id}:escalated:{req.requirement_id}"
        return (key, run.run_id, OutboxKind.note, {"text": text})

    def _copy_items(
        self, run: WorkflowRunOutput, requirement_id: str, to: tuple[str, ...]
    ) -> list[tuple[str, str, str, dict[str, Any]]]:
        return [
            (
                f"{Kind.dm}:{requirement_id}:{user}",
                dm_group(run.run_id, user),
                Kind.dm.value,
                {"requirement_id": requirement_id, "user_id": user},
            )
            for user in self._expand(to)
            if user != run.user_id
        ]

    def _home_items(
        self, run: WorkflowRunOutput, requirement_id: str, to: tuple[str, ...]
    ) -> list[tuple[str, str, str, dict[str, Any]]]:
        """Refresh the App Home of each escalation person who has one: the pause is theirs
        to decide now ("Waiting for you")."""
        homes = set(self._notify_store.home_users())
        return [
            (
                f"{Kind.home}:{user}:{requirement_id}:escalated",
                home_group(user),
                Kind.home.value,
                {"user_id": user},
            )
            for user in self._expand(to)
            if user in homes
        ]

    # -- who may decide ----------------------------------------------------------------------------
    def deciders(self, route: SlackRoute, run: WorkflowRunOutput, step_name: str) -> frozenset[str]:
        """The people an escalation of this run's pause lets decide it (none before)."""
        after, to = route.escalation_for(step_name)
        if after is None or not to:
            return frozenset()  # no query for a step that never escalates
        req = next((r for r in run.step_requirements if r.step_name == step_name), None)
        if req is None or not run.is_paused:
            return frozenset()
        found = self.get(req.requirement_id)
        return frozenset(self._expand(found.escalated_to)) if found else frozenset()

    def notes(self, route: SlackRoute, run: WorkflowRunOutput, req: StepRequirement) -> list[str]:
        """The pause message's line about its escalation, once escalated."""
        after, to = route.escalation_for(req.step_name)
        if after is None or not to or not run.is_paused:
            return []
        found = self.get(req.requirement_id)
        if found is None:
            return []
        who = ", ".join(blocks.mention(w) for w in found.escalated_to)
        return [f":arrow_double_up: Escalated to {who} {blocks.slack_date(found.escalated_at)}"]

    def _expand(self, who: tuple[str, ...]) -> list[str]:
        people: dict[str, None] = {}
        for entry in who:
            members = sorted(self.groups.known_members(entry)) if entry[0] == "S" else [entry]
            for member in members:
                people.setdefault(member, None)
        return list(people)

    # -- records ---------------------------------------------------------------------------------
    def get(self, requirement_id: str) -> Escalation | None:
        """The escalation of this pause, if it was escalated."""
        query = select(slack_escalations).where(
            slack_escalations.c.requirement_id == requirement_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _escalation(row._mapping) if row is not None else None

    def escalated_ids(self, requirement_ids: list[str]) -> set[str]:
        """Which of these pauses were escalated."""
        if not requirement_ids:
            return set()
        column = slack_escalations.c.requirement_id
        with self.engine.connect() as conn:
            rows = conn.execute(select(column).where(column.in_(requirement_ids))).all()
        return {str(r[0]) for r in rows}

    def for_run(self, run_id: str) -> list[Escalation]:
        """Every escalation of a run, oldest first (the audit)."""
        return escalations_of(self.engine, run_id)


def escalations_of(engine: Any, run_id: str) -> list[Escalation]:
    """Every escalation of a run, oldest first, read from ``slack_escalations``."""
    query = (
        select(slack_escalations)
        .where(slack_escalations.c.run_id == run_id)
        .order_by(slack_escalations.c.escalated_at)
    )
    with engine.connect() as conn:
        return [_escalation(r._mapping) for r in conn.execute(query).all()]


def _escalation(row: Any) -> Escalation:
    return Escalation(
        requirement_id=str(row["requirement_id"]),
        run_id=str(row["run_id"]),
        step_name=str(row["step_name"]),
        escalated_to=tuple(json.loads(row["escalated_to"])),
        escalated_at=row["escalated_at"],
    )


def _escalates(route: SlackRoute) -> bool:
    if route.escalate_after is not None and route.escalate_to:
        return True
    return any(s.escalate_after is not None for s in route.steps.values())
