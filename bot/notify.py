"""Approvers reached where they are: direct messages and the App Home, through the outbox.

- A route (or step) with ``notify="dm"`` or ``"both"`` sends each approver (user-group
  members expanded, the requester left out when they may not decide) a direct copy of the
  pause message. Each copy is one outbox item with its own key (``dm:<pause>:<user>``), so
  it is posted once whatever replica delivers it; each posted copy is recorded
  (``slack_dm_copies``) and every copy is updated when the pause is decided or times out.
- Reminders before a deadline go to each approver too (in the thread of their copy).
- The App Home tab lists what waits for that person, the runs they started and their recent
  decisions; it is published when they open it and refreshed whenever a pause, a decision
  or the end of a run touches them. Refreshes are outbox items grouped per person
  (``home:<user>``): one waits while another is pending, and a person's Home is refreshed
  at most once per ``HOME_REFRESH_INTERVAL`` (a burst of fifty decisions is one render,
  not fifty); opening the tab, or the answer to a click there, is published at once.

Nothing here calls Slack on an event's path: an event adds outbox items (in the bot's
transaction for that event), and delivery expands user groups and calls Slack.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeGuard

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot import blocks
from bot.decisions import resolving_decision
from bot.kinds import NotifyKind as Kind
from bot.kinds import OutboxKind
from bot.outbox import NotBefore, OutboxWorker, post_once
from bot.routing import SlackRoute
from bot.store import OutboxItem, slack_dm_copies, slack_home_users, slack_runs
from engine import (
    Decision,
    Outcome,
    StepApprovalProgressEvent,
    StepContinuedEvent,
    StepRequirement,
    WorkflowCancelledEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowRunEvent,
    WorkflowRunOutput,
)
from engine.db.base import BaseDb
from engine.db.schema import decisions as wf_decisions

if TYPE_CHECKING:
    from bot.outbox_queue import OutboxQueue
    from bot.permissions import Groups, Permissions
    from bot.queries import Queries
    from bot.service import Signoff

log = logging.getLogger("signoff.notify")


class Moment(StrEnum):
    """What happened to a pause, for its fan-out."""

    paused = "paused"
    decided = "decided"
    reminded = "reminded"


def home_group(user_id: str, *, asked: bool = False) -> str:
    """The outbox ``run_id`` a person's App Home refreshes are grouped (and coalesced) under;
    a publish they asked for has a group of its own, so it never waits behind a refresh
    held to ``HOME_REFRESH_INTERVAL`` (both render the Home as it is then)."""
    return f"home_asked:{user_id}" if asked else f"home:{user_id}"


def fanout_group(run_id: str) -> str:
    """The outbox ``run_id`` of a run's fan-outs: apart from its channel messages, which they
    do not need (a route may not post in the channel at all)."""
    return f"notify:{run_id}"[:64]


def dm_group(run_id: str, user_id: str | None = None) -> str:
    """The outbox ``run_id`` of direct messages: apart from the run's channel messages (a
    person who cannot be written to must not hold up the run's thread), in order per person
    (a reminder after its copy); ``user_id`` None: the updates of every copy."""
    return f"dm:{user_id or '*'}:{run_id}"[:64]


class NotifyStore:
    """The two tables of this module: direct-message copies and App Home users."""

    def __init__(self, db: BaseDb) -> None:
        self.db = db
        self.engine: Engine = db.engine

    def _insert_ignore(self, table: Any) -> Any:
        if self.engine.dialect.name == "postgresql":
            return pg_insert(table).on_conflict_do_nothing()
        return sqlite_insert(table).on_conflict_do_nothing()

    def add_copy(
        self,
        *,
        requirement_id: str,
        user_id: str,
        run_id: str,
        channel_id: str,
        message_ts: str,
        now: datetime,
    ) -> None:
        """Record one approver's DM copy of a pause (its channel and ts once posted)."""
        with self.db.write() as conn:
            conn.execute(
                self._insert_ignore(slack_dm_copies),
                {
                    "requirement_id": requirement_id,
                    "user_id": user_id,
                    "run_id": run_id,
                    "channel_id": channel_id,
                    "message_ts": message_ts,
                    "created_at": now,
                },
            )

    def copies(self, requirement_id: str) -> list[tuple[str, str, str]]:
        """(user id, channel id, message ts) of every copy of a pause, in posting order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    slack_dm_copies.c.user_id,
                    slack_dm_copies.c.channel_id,
                    slack_dm_copies.c.message_ts,
                )
                .where(slack_dm_copies.c.requirement_id == requirement_id)
                .order_by(slack_dm_copies.c.created_at, slack_dm_copies.c.user_id)
            ).all()
        return [(r.user_id, r.channel_id, r.message_ts) for r in rows]

    def copy_of(self, requirement_id: str, user_id: str) -> tuple[str, str] | None:
        """(channel id, message ts) of one person's copy, if it was posted."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(slack_dm_copies.c.channel_id, slack_dm_copies.c.message_ts).where(
                    slack_dm_copies.c.requirement_id == requirement_id,
                    slack_dm_copies.c.user_id == user_id,
                )
            ).first()
        return (row.channel_id, row.message_ts) if row else None

    def mark_home(self, user_id: str, now: datetime) -> None:
        """Remember that ``user_id`` opened the App Home (their Home is kept fresh)."""
        with self.db.write() as conn:
            conn.execute(
                self._insert_ignore(slack_home_users), {"user_id": user_id, "published_at": now}
            )
            conn.execute(
                update(slack_home_users)
                .where(slack_home_users.c.user_id == user_id)
                .values(published_at=now)
            )

    def home_published_at(self, user_id: str) -> datetime | None:
        """When ``user_id``'s App Home was last published (None: never)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(slack_home_users.c.published_at).where(slack_home_users.c.user_id == user_id)
            ).scalar_one_or_none()

    def home_users(self) -> list[str]:
        """Everyone who has opened the App Home."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(slack_home_users.c.user_id)).all()
        return [r.user_id for r in rows]

    def recent_decisions(self, user_id: str, limit: int) -> list[tuple[str, Decision]]:
        """(workflow name, decision) of the person's latest decisions, newest first."""
        d = wf_decisions.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    d.run_id,
                    d.requirement_id,
                    d.step_name,
                    d.outcome,
                    d.decided_by,
                    d.decided_at,
                    slack_runs.c.workflow_name,
                )
                .join(slack_runs, slack_runs.c.run_id == d.run_id)
                .where(d.decided_by == user_id)
                .order_by(d.decided_at.desc(), d.id.desc())
                .limit(limit)
            ).all()
        return [
            (
                r.workflow_name,
                Decision(
                    run_id=r.run_id,
                    requirement_id=r.requirement_id,
                    step_name=r.step_name,
                    outcome=Outcome(r.outcome),
                    decided_by=r.decided_by,
                    decided_at=r.decided_at,
                ),
            )
            for r in rows
        ]


class Notifier:
    """DM copies, reminders and the App Home; an observer of the publisher, the deadlines
    and the teller, and a delivery of the outbox worker (wired in ``bot/server.py``)."""

    def __init__(
        self,
        signoff: Signoff,
        queue: OutboxQueue,
        *,
        permissions: Permissions,
        groups: Groups,
        queries: Queries,
    ) -> None:
        self.signoff = signoff
        self.queue = queue
        self.permissions = permissions
        self.groups = groups
        self.queries = queries
        self.store = NotifyStore(signoff.db)

    # -- wiring -----------------------------------------------------------------------------
    def handlers(self) -> dict[str, Callable[[OutboxItem], None]]:
        """The outbox kinds this module delivers."""
        return {
            Kind.fanout: self._deliver_fanout,
            Kind.dm: self._deliver_dm,
            Kind.dm_resolve: self._deliver_dm_resolve,
            Kind.dm_remind: self._deliver_dm_remind,
            Kind.dm_progress: self._deliver_dm_progress,
            Kind.home: self._deliver_home,
            Kind.home_asked: self._deliver_home,
        }

    # -- hooks: what the bot's events cause (no Slack calls here) ------------------------------
    def on_pause_recorded(self, workflow_name: str, req: StepRequirement) -> None:
        """Enqueue the DM copies of a pause just recorded, and refresh who it touches."""
        pause = self.signoff.store.get_pause(req.requirement_id)
        if pause is None:
            return
        self._fanout(pause.run_id, req.requirement_id, Moment.paused, self.signoff.clock.now())

    def on_event(
        self, event: WorkflowRunEvent, route: SlackRoute, run: WorkflowRunOutput, now: datetime
    ) -> None:
        """Update every DM copy when a pause is decided; refresh the Homes it touches."""
        if isinstance(event, StepContinuedEvent) and event.requirement is not None:
            req = event.requirement
            if route.sends_dms(req.step_name):
                self.queue.enqueue(
                    f"{Kind.dm_resolve}:{req.requirement_id}",
                    dm_group(run.run_id),
                    Kind.dm_resolve,
                    {"requirement": req.to_dict()},
                    now,
                )
            self._fanout(run.run_id, req.requirement_id, Moment.decided, now)
        elif isinstance(event, StepApprovalProgressEvent) and event.requirement is not None:
            voters = {*event.requirement.approved_by, *event.requirement.rejected_by}
            for user in voters & set(self.store.home_users()):  # it left their list
                self.request_home(user, reason=f"{run.run_id}:vote:{run.version}", now=now)
            if route.sends_dms(event.requirement.step_name):
                requirement_id = event.requirement.requirement_id
                self.queue.enqueue(
                    f"{Kind.dm_progress}:{requirement_id}:{run.version}",
                    dm_group(run.run_id),
                    Kind.dm_progress,
                    {"requirement_id": requirement_id},
                    now,
                )
        elif (
            isinstance(event, WorkflowCompletedEvent | WorkflowCancelledEvent | WorkflowErrorEvent)
            and run.user_id
        ):
            # "Runs you started" shows how it ended.
            self.request_home(run.user_id, reason=f"{run.run_id}:{run.status.value}", now=now)

    def on_reminded(
        self, route: SlackRoute, run: WorkflowRunOutput, req: StepRequirement, now: datetime
    ) -> None:
        """Send the reminder to each approver's DM copy too (with dm/both)."""
        if route.sends_dms(req.step_name):
            self._fanout(run.run_id, req.requirement_id, Moment.reminded, now)

    def on_untold(self, user_id: str, text: str) -> None:
        """The answer to a click in the App Home (not allowed, already decided…): shown on
        top of the refreshed tab."""
        self.request_home(user_id, reason=f"told:{uuid.uuid4().hex}", notice=text, asked=True)

    def request_home(
        self,
        user_id: str,
        *,
        reason: str,
        notice: str | None = None,
        asked: bool = False,
        now: datetime | None = None,
    ) -> None:
        """Refresh a person's App Home through the outbox (``reason`` makes the key);
        ``asked``: they are looking at it (opened the tab, or this answers their click
        there), so it is published at once, not held to ``HOME_REFRESH_INTERVAL``."""
        if not _is_user_id(user_id):
            return
        data: dict[str, Any] = {"user_id": user_id}
        if notice:
            data["notice"] = notice
        self.queue.enqueue(
            _home_key(user_id, reason),
            home_group(user_id, asked=asked),
            Kind.home_asked if asked else Kind.home,
            data,
            now or self.signoff.clock.now(),
        )

    def deliver_home_now(self, user_id: str, reason: str) -> None:
        """A recorded refresh is wanted now (the person is looking at the tab): wake the
        outbox worker, which publishes it (no Slack call from a listener's thread)."""
        del user_id, reason  # the refresh is already an outbox row
        self.signoff.outbox_wakeup.set()

    def _fanout(self, run_id: str, requirement_id: str, moment: Moment, now: datetime) -> None:
        self.queue.enqueue(
            f"{Kind.fanout}:{requirement_id}:{moment}",
            fanout_group(run_id),
            Kind.fanout,
            {"requirement_id": requirement_id, "moment": moment.value},
            now,
        )

    # -- who a pause reaches ---------------------------------------------------------------------
    def _expand(self, who: Iterable[str]) -> list[str]:
        """User IDs, user groups replaced by their members; in order, once each."""
        seen: dict[str, None] = {}
        for entry in who:
            if entry.startswith("S"):
                for member in sorted(self.groups.known_members(entry)):
                    seen.setdefault(member, None)
            else:
                seen.setdefault(entry, None)
        return list(seen)

    def dm_recipients(self, route: SlackRoute, run: WorkflowRunOutput, step_name: str) -> list[str]:
        """The people who get a direct copy: the step's approvers who may decide it."""
        if not route.sends_dms(step_name):
            return []
        return [
            user
            for user in self._expand(route.approvers_for(step_name))
            if self.permissions.may_decide(user, route, run, step_name)[0]
        ]

    def home_audience(
        self, route: SlackRoute, run: WorkflowRunOutput, step_name: str, decided_by: str | None
    ) -> list[str]:
        """Whose App Home a pause (or its decision) changes: its approvers (or, when anyone
        may decide, everyone with a Home tab), the requester and the decider."""
        approvers = route.approvers_for(step_name)
        people = self._expand(approvers) if approvers else self.store.home_users()
        people.extend(u for u in (run.user_id, decided_by) if u)
        return [u for u in dict.fromkeys(people) if _is_user_id(u)]

    # -- delivery ----------------------------------------------------------------------------------
    def _loaded(
        self, requirement_id: str
    ) -> tuple[SlackRoute, WorkflowRunOutput, Any, StepRequirement | None] | None:
        """(route, run, pause, the requirement if it still waits) of a recorded pause."""
        pause = self.signoff.store.get_pause(requirement_id)
        route = self.signoff.routes.get(pause.workflow_name) if pause else None
        run = route.workflow.get_run(pause.run_id) if route and pause else None
        if pause is None or route is None or run is None:
            return None
        waiting = next(
            (r for r in run.step_requirements if r.requirement_id == requirement_id), None
        )
        return route, run, pause, waiting if run.is_paused else None

    def _deliver_fanout(self, item: OutboxItem) -> None:
        requirement_id = str(item.data["requirement_id"])
        moment = Moment(item.data["moment"])
        loaded = self._loaded(requirement_id)
        if loaded is None:
            return
        route, run, pause, _waiting = loaded
        decision = resolving_decision(self.signoff.db, run.run_id, requirement_id)
        items: list[tuple[str, str, str, dict[str, Any]]] = []
        if moment in (Moment.paused, Moment.reminded):
            kind = Kind.dm if moment is Moment.paused else Kind.dm_remind
            for user in self.dm_recipients(route, run, pause.step_name):
                items.append(
                    (
                        f"{kind}:{requirement_id}:{user}",
                        dm_group(run.run_id, user),
                        kind,
                        {"requirement_id": requirement_id, "user_id": user},
                    )
                )
        if moment is not Moment.reminded:
            decided_by = decision.decided_by if decision else None
            for user in self.home_audience(route, run, pause.step_name, decided_by):
                items.append(
                    (
                        f"{Kind.home}:{user}:{requirement_id}:{moment}",
                        home_group(user),
                        Kind.home,
                        {"user_id": user},
                    )
                )
        if items and self.signoff.store.enqueue_many(items, now=self.signoff.clock.now()):
            self.signoff.outbox_wakeup.set()

    def _deliver_dm(self, item: OutboxItem) -> None:
        requirement_id, user = str(item.data["requirement_id"]), str(item.data["user_id"])
        if self.store.copy_of(requirement_id, user) is not None:
            return  # posted already (a repeat after a lost outcome)
        loaded = self._loaded(requirement_id)
        if loaded is None:
            return
        route, run, pause, waiting = loaded
        if waiting is None:
            return  # decided (or timed out) before its copy went out: nothing to ask
        in_channel = pause.channel if route.posts_in_channel(pause.step_name) else None
        text, message_blocks = blocks.dm_pause_message(
            self.queries.pause_context(route, run, waiting), channel=in_channel
        )
        channel = self.signoff.client.conversations_open(users=user)["channel"]["id"]
        ts, channel = post_once(
            self.signoff, item, channel=channel, text=text, blocks=message_blocks
        )
        self.store.add_copy(
            requirement_id=requirement_id,
            user_id=user,
            run_id=run.run_id,
            channel_id=channel,
            message_ts=ts,
            now=self.signoff.clock.now(),
        )
        if resolving_decision(self.signoff.db, run.run_id, requirement_id) is not None:
            # Decided while this copy was being posted: its update may have missed it.
            self._update_copies(requirement_id)

    def _deliver_dm_resolve(self, item: OutboxItem) -> None:
        req = StepRequirement.from_dict(item.data["requirement"])
        self._update_copies(req.requirement_id, req)

    def _update_copies(self, requirement_id: str, req: StepRequirement | None = None) -> None:
        loaded = self._loaded(requirement_id)
        if loaded is None:
            return
        route, run, pause, _waiting = loaded
        decision = resolving_decision(self.signoff.db, run.run_id, requirement_id)
        req = req or _requirement_of(route, run, pause.step_name)
        if decision is None or req is None:
            return
        text, message_blocks = blocks.resolved_message(
            self.queries.pause_context(route, run, req), decision
        )
        for _user, channel, ts in self.store.copies(requirement_id):
            self.signoff.client.chat_update(
                channel=channel, ts=ts, text=text, blocks=message_blocks
            )

    def _deliver_dm_progress(self, item: OutboxItem) -> None:
        """Every DM copy of a pause still open after a vote, re-rendered as it is now."""
        loaded = self._loaded(str(item.data["requirement_id"]))
        if loaded is None:
            return
        route, run, pause, waiting = loaded
        if waiting is None:
            return  # resolved meanwhile: dm_resolve shows the outcome
        in_channel = pause.channel if route.posts_in_channel(pause.step_name) else None
        text, message_blocks = blocks.dm_pause_message(
            self.queries.pause_context(route, run, waiting), channel=in_channel
        )
        for user, channel, ts in self.store.copies(waiting.requirement_id):
            shown = message_blocks
            if user in (*waiting.approved_by, *waiting.rejected_by):
                # Their own copy: what they gave in place of the buttons.
                shown = blocks.voted_copy_blocks(message_blocks, waiting, user)
            self.signoff.client.chat_update(channel=channel, ts=ts, text=text, blocks=shown)

    def _deliver_dm_remind(self, item: OutboxItem) -> None:
        requirement_id, user = str(item.data["requirement_id"]), str(item.data["user_id"])
        loaded = self._loaded(requirement_id)
        if loaded is None:
            return
        route, _run, _pause, waiting = loaded
        if waiting is None:
            return  # decided meanwhile: nothing to remind of
        copy = self.store.copy_of(requirement_id, user)
        if copy is not None:
            channel, thread_ts = copy[0], copy[1]
        else:
            channel = self.signoff.client.conversations_open(users=user)["channel"]["id"]
            thread_ts = None
        post_once(
            self.signoff,
            item,
            channel=channel,
            thread_ts=thread_ts,
            text=blocks.dm_reminder_text(waiting, route.name),
        )

    def _deliver_home(self, item: OutboxItem) -> None:
        user = str(item.data["user_id"])
        if item.kind == Kind.home:
            published = self.store.home_published_at(user)
            due = published + HOME_REFRESH_INTERVAL if published else None
            if due is not None and due > self.signoff.clock.now():
                raise NotBefore(due)
        view = self.home_view(user, notice=item.data.get("notice"))
        self.signoff.client.views_publish(user_id=user, view=view)
        self.store.mark_home(user, self.signoff.clock.now())

    # -- the App Home ----------------------------------------------------------------------------
    def home_view(self, user_id: str, *, notice: str | None = None) -> Any:
        """The App Home view of ``user_id``: what waits for them, their runs, decisions."""
        waiting: list[tuple[SlackRoute, WorkflowRunOutput]] = []
        for route in self.signoff.routes.values():
            for paused in route.workflow.list_paused_runs(limit=HOME_PAUSED_READ):
                run = paused.run  # read by the query: no second read per run
                if not run.step_requirements:
                    continue
                if not self.permissions.may_decide(user_id, route, run, paused.step_name)[0]:
                    continue
                first = run.step_requirements[0]
                if user_id in (*first.approved_by, *first.rejected_by):
                    continue  # they voted: it waits for others now
                waiting.append((route, run))
        waiting.sort(
            key=lambda item: (
                item[1].step_requirements[0].expires_at is None,
                item[1].step_requirements[0].expires_at or item[1].created_at,
                item[1].created_at,
            )
        )
        # Rendered only for what the tab shows (each may ask Slack for its root's link).
        pending = [
            self.queries.pause_context(route, run, run.step_requirements[0])
            for route, run in waiting[: blocks.HOME_PENDING_MAX]
        ]
        started = [
            blocks.RunCard(
                workflow_name=run.workflow_name or "?",
                run_id=run.run_id,
                status=run.status,
                user_id=run.user_id,
                created_at=run.created_at,
                step_names=[],
                run=run,
            )
            for run in self.signoff.db.list_runs(user_id=user_id, limit=HOME_STARTED_READ)
            if run.workflow_name in self.signoff.routes
        ]
        decided = [
            blocks.HomeDecision(
                workflow_name=name,
                decision=decision,
                root_link=self.queries.root_permalink(decision.run_id),
            )
            for name, decision in self.store.recent_decisions(user_id, blocks.HOME_LIST_MAX)
        ]
        return blocks.home_view(
            pending=pending,
            pending_total=len(waiting),
            started=started[: blocks.HOME_LIST_MAX],
            decided=decided,
            notice=notice,
        )


# How many of the oldest-deadline paused runs (per workflow) the App Home considers, and
# how many of a person's newest runs: bounded reads, whatever the database holds.
HOME_PAUSED_READ = 200
HOME_STARTED_READ = 50
# A Home refresh that nobody asked for waits this long after the person's last publish:
# each render reads their pauses and runs, and Slack rate-limits views.publish per
# workspace, so a busy approver's Home follows a burst of decisions a few seconds late.
HOME_REFRESH_INTERVAL = timedelta(seconds=3)


def _requirement_of(
    route: SlackRoute, run: WorkflowRunOutput, step_name: str
) -> StepRequirement | None:
    """The requirement of a decided step, rebuilt from the workflow (for its message)."""
    return OutboxWorker._requirement_from_decision(route, run, step_name)


EVENT_ID_MAX = 64  # Slack's event ids are about 11 characters


def policy_update_items(
    route: SlackRoute, run: WorkflowRunOutput, req: StepRequirement, why: str
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Outbox items that re-render a pause still open — its channel message and its DM
    copies — after a change of its policy state (``why``: escalated, delegated…): enqueue
    them in the transaction that records the change."""
    lead = run.step_requirements[0].requirement_id if run.step_requirements else None
    items: list[tuple[str, str, str, dict[str, Any]]] = []
    if route.posts_in_channel(req.step_name):
        key = f"pause_update:{lead or req.requirement_id}:{why}"
        items.append((key, run.run_id, OutboxKind.pause_update, {"requirement_id": lead}))
    if route.sends_dms(req.step_name):
        key = f"{Kind.dm_progress}:{req.requirement_id}:{why}"
        data = {"requirement_id": req.requirement_id}
        items.append((key, dm_group(run.run_id), Kind.dm_progress.value, data))
    return items


def home_request(body: Any) -> tuple[str, str] | None:
    """(user id, reason) of an ``app_home_opened`` delivery that opened the Home tab; None
    for the Messages tab or anything malformed (which is then ignored)."""
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(event, dict) or event.get("type") != "app_home_opened":
        return None
    user_id, tab = event.get("user"), event.get("tab", "home")
    event_id = body.get("event_id") or event.get("event_ts")
    if tab != "home" or not _is_user_id(user_id):
        return None
    if not isinstance(event_id, str) or not 0 < len(event_id) <= EVENT_ID_MAX:
        return None
    return user_id, f"opened:{event_id}"


def _home_key(user_id: str, reason: str) -> str:
    return f"{Kind.home}:{user_id}:{reason}"[:200]


USER_ID_MAX = 32  # Slack's are about 11 characters; slack_dm_copies.user_id holds 32
USER_ID_MIN = 2  # a kind letter and at least one more


def _is_user_id(who: object) -> TypeGuard[str]:
    """A Slack user ID (``U…``/``W…``); anything else from a payload is ignored."""
    return (
        isinstance(who, str)
        and USER_ID_MIN <= len(who) <= USER_ID_MAX
        and who[0] in "UW"
        and who[1:].isascii()
        and who[1:].isalnum()
    )


__all__ = [
    "Kind",
    "Moment",
    "Notifier",
    "NotifyStore",
    "dm_group",
    "fanout_group",
    "home_group",
    "home_request",
]
