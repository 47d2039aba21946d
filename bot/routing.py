"""Where a workflow's pauses go in Slack and who may decide them: one declarative place.

A workflow module exposes Workflows, SlackRoutes or lists of them; ``SIGNOFF_WORKFLOWS``
names them as ``module:attribute``.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.policies import Approvals as Approvals  # re-exported: routes are written with it
from bot.policies import approvers_of
from engine import Workflow

_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")


class Notify(StrEnum):
    """Where a pause reaches its approvers: the route's channel, a direct message to each
    approver (user-group members expanded), or both."""

    channel = "channel"
    dm = "dm"
    both = "both"

    @property
    def dms(self) -> bool:
        """Whether approvers get direct messages."""
        return self is not Notify.channel


def _notify(value: Notify | str | None, where: str) -> Notify | None:
    if value is None or isinstance(value, Notify):
        return value
    try:
        return Notify(value)
    except ValueError:
        choices = ", ".join(repr(n.value) for n in Notify)
        raise ValueError(f"{where}: notify={value!r} is not one of {choices}") from None


@dataclass(frozen=True)
class StepRoute:
    """Overrides for one step; unset fields fall back to the workflow's route."""

    channel: str | None = None
    approvers: tuple[str, ...] | None = None
    allow_requester: bool | None = None
    notify: Notify | None = None
    require: tuple[Approvals, ...] | None = None
    escalate_after: timedelta | None = None
    escalate_to: tuple[str, ...] | None = None
    allow_delegation: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "notify", _notify(self.notify, "step route"))
        if self.escalate_to is not None:
            object.__setattr__(self, "escalate_to", tuple(self.escalate_to))
        _check_escalation(self.escalate_after, self.escalate_to, "step route")
        if self.require is not None:
            object.__setattr__(self, "require", tuple(self.require))


@dataclass(frozen=True)
class SlackRoute:
    """Slack settings of one workflow.

    ``approvers``: Slack user IDs (``U…``/``W…``) and user-group IDs (``S…``); empty means
    anyone who can see the message. ``allow_requester``: whether the person who started a
    run may decide its pauses. ``reminder_before``: mention the approvers in the thread this
    long before a deadline (and, with ``notify`` dm/both, remind each of them directly).
    ``require``: groups with their own counts (``[Approvals(group="S0SRE", count=1), ...]``):
    each group must sign, a person counts for one group (see ``bot/policies.py``); without
    ``approvers`` the groups are who may decide. ``allow_requester=False`` is written onto
    the steps' engine option at route load (the stricter of the two wins).
    ``escalate_after`` / ``escalate_to``: a pause still open that long after it began is
    escalated, once: the users and user groups of ``escalate_to`` are mentioned in the
    thread (and sent a copy with ``notify`` dm/both) and may decide it too
    (``bot/escalation.py``). ``allow_delegation``: an approver may hand a pending decision
    to someone else (the message's overflow menu; ``bot/delegation.py``).
    ``notify``: ``"channel"`` (default: the pause message in the run's thread), ``"dm"`` (a
    copy of it to each approver, user-group members expanded; the channel keeps the run's
    root message and notes) or ``"both"``. A route with ``"dm"`` and no approvers posts in
    the channel: there is no one to write to.
    """

    workflow: Workflow
    channel: str | None = None
    approvers: tuple[str, ...] = ()
    allow_requester: bool = True
    starters: tuple[str, ...] = ()
    reminder_before: timedelta | None = None
    steps: Mapping[str, StepRoute] = field(default_factory=dict)
    notify: Notify = Notify.channel
    require: tuple[Approvals, ...] = ()
    escalate_after: timedelta | None = None
    escalate_to: tuple[str, ...] = ()
    allow_delegation: bool = False

    def __post_init__(self) -> None:
        notify = _notify(self.notify, f"route {self.workflow.name!r}")
        object.__setattr__(self, "notify", notify or Notify.channel)
        object.__setattr__(self, "require", tuple(self.require))
        object.__setattr__(self, "escalate_to", tuple(self.escalate_to))
        _check_escalation(self.escalate_after, self.escalate_to, f"route {self.workflow.name!r}")
        for who in (*self.approvers, *self.starters):
            if not who or who[0] not in "UWS":
                raise ValueError(
                    f"route {self.workflow.name!r}: {who!r} is not a Slack user "
                    "(U…/W…) or user-group (S…) ID"
                )
        for step_name in self.steps:
            if workflow_step(self.workflow, step_name) is None:
                raise ValueError(f"route {self.workflow.name!r}: no step named {step_name!r}")

    @property
    def name(self) -> str:
        """The workflow's name, which is the route's name."""
        return self.workflow.name

    def channel_for(self, step_name: str | None, default: str) -> str:
        """Where a step's pause goes: its own channel, else the route's, else ``default``."""
        step = self.steps.get(step_name or "")
        return (step.channel if step and step.channel else None) or self.channel or default

    def approvers_for(self, step_name: str | None) -> tuple[str, ...]:
        """Who may decide a step: its own approvers if given, else the route's (empty: anyone)."""
        step = self.steps.get(step_name or "")
        if step and step.approvers is not None:
            return step.approvers
        if step and step.require is not None:
            return approvers_of(step.require)
        return self.approvers or approvers_of(self.require)

    def notify_for(self, step_name: str | None) -> Notify:
        """Where ``step_name``'s pauses reach approvers (the step's setting, else the route's)."""
        step = self.steps.get(step_name or "")
        return step.notify if step and step.notify is not None else self.notify

    def sends_dms(self, step_name: str | None) -> bool:
        """Whether each approver of this step gets a direct message (there must be some)."""
        return self.notify_for(step_name).dms and bool(self.approvers_for(step_name))

    def posts_in_channel(self, step_name: str | None) -> bool:
        """Whether the pause message (with its buttons) goes to the channel."""
        return self.notify_for(step_name) is not Notify.dm or not self.sends_dms(step_name)

    def escalation_for(self, step_name: str | None) -> tuple[timedelta | None, tuple[str, ...]]:
        """When a step's pause escalates and to whom (the step's settings, else the route's)."""
        step = self.steps.get(step_name or "")
        after = step.escalate_after if step and step.escalate_after is not None else None
        to = step.escalate_to if step and step.escalate_to is not None else None
        return (after or self.escalate_after, to if to is not None else self.escalate_to)

    def delegation_allowed(self, step_name: str | None) -> bool:
        """Whether an approver may hand this step's decision to someone else."""
        step = self.steps.get(step_name or "")
        if step and step.allow_delegation is not None:
            return step.allow_delegation
        return self.allow_delegation

    def requester_may_decide(self, step_name: str | None) -> bool:
        """Whether the person who started the run may decide this step too."""
        step = self.steps.get(step_name or "")
        if step and step.allow_requester is not None:
            return step.allow_requester
        return self.allow_requester


def _check_escalation(
    after: timedelta | None, to: tuple[str, ...] | None, where: str
) -> None:
    if after is not None and after <= timedelta(0):
        raise ValueError(f"{where}: escalate_after must be positive, got {after!r}")
    for who in to or ():
        if not who or who[0] not in "UWS":
            raise ValueError(
                f"{where}: escalate_to {who!r} is not a Slack user (U…/W…) or user-group (S…) ID"
            )


def workflow_step(workflow: Workflow, name: str) -> Any:
    """The workflow's top-level step named ``name``, or None."""
    return next((s for s in workflow.steps if s.name == name), None)


def as_routes(obj: Any, *, where: str) -> list[SlackRoute]:
    """Routes from a Workflow, a SlackRoute or a list of them; errors name ``where``."""
    if isinstance(obj, SlackRoute):
        return [obj]
    if isinstance(obj, Workflow):
        return [SlackRoute(workflow=obj)]
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        return [r for item in obj for r in as_routes(item, where=where)]
    raise TypeError(f"{where} is a {type(obj).__name__}, not a Workflow, SlackRoute or a list")


def load_routes(specs: Iterable[str]) -> list[SlackRoute]:
    """Import ``module:attribute`` specs; raise ValueError with one clear line if one is bad."""
    routes: list[SlackRoute] = []
    for spec in specs:
        module_name, _, attribute = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"SIGNOFF_WORKFLOWS: cannot import {module_name!r}: {exc}") from None
        if not hasattr(module, attribute):
            raise ValueError(f"SIGNOFF_WORKFLOWS: {module_name!r} has no attribute {attribute!r}")
        routes.extend(as_routes(getattr(module, attribute), where=spec))
    names = [r.name for r in routes]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"SIGNOFF_WORKFLOWS: workflow names used twice: {sorted(duplicates)}")
    return routes


class ChannelDirectory:
    """Channel names (``#deploys``, ``deploys``) given in routes and ``SIGNOFF_CHANNEL``,
    mapped to channel IDs: permalinks, updates and mentions need IDs.

    ``load`` looks every name up once with ``conversations.list`` (paged) at start-up. A name
    Slack does not know stops start-up (``ValueError`` naming where it was given); Slack not
    answering does not: until a later ``load`` succeeds a name stands for itself (Slack posts
    to ``#name`` too, and each post's answer gives the ID the bot stores).
    """

    def __init__(self, routes: Iterable[SlackRoute], default: str) -> None:
        self.default = default
        self._where = _named_channels(routes, default)
        self._ids: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether every channel name has been looked up and has an ID."""
        with self._lock:
            return len(self._ids) == len(self._where)

    def load(self, client: WebClient) -> None:
        """Look the names up. Raises ``ValueError`` for a name that is not a public channel,
        ``ChannelLookupError`` if Slack could not be asked."""
        if not self._where:
            return
        ids: dict[str, str] = {}
        try:
            for page in client.conversations_list(
                types="public_channel", exclude_archived=True, limit=1000
            ):
                for channel in page.get("channels") or []:
                    ids[str(channel.get("name"))] = str(channel.get("id"))
        except (SlackApiError, OSError) as exc:  # OSError: Slack unreachable, timed out
            response = getattr(exc, "response", None)
            error = response.get("error") if response is not None else exc
            raise ChannelLookupError(
                f"cannot look up the channels {sorted(self._where)} (conversations.list: {error})"
            ) from None
        missing = [name for name in self._where if name.removeprefix("#") not in ids]
        if missing:
            name = missing[0]
            raise ValueError(
                f"{self._where[name]}: no public channel named {name!r} "
                "(give a private channel by its ID)"
            )
        with self._lock:
            self._ids = {name: ids[name.removeprefix("#")] for name in self._where}

    def id_of(self, channel: str) -> str:
        """The ID of ``channel`` (itself if it is an ID or not looked up yet)."""
        with self._lock:
            return self._ids.get(channel, channel)

    def channel_for(self, route: SlackRoute, step_name: str | None) -> str:
        """Where ``route`` posts ``step_name``'s pause (``None``: its root message)."""
        return self.id_of(route.channel_for(step_name, self.default))


class ChannelLookupError(RuntimeError):
    """Slack could not be asked for the channel list (down, timed out, rate-limited)."""


def _named_channels(routes: Iterable[SlackRoute], default: str) -> dict[str, str]:
    """Each channel given by name (not by ID), with where it was given first."""
    where: dict[str, str] = {}

    def add(channel: str | None, place: str) -> None:
        if channel and not _CHANNEL_ID.fullmatch(channel):
            where.setdefault(channel, place)

    add(default, "SIGNOFF_CHANNEL")
    for route in routes:
        add(route.channel, f"route {route.name!r}")
        for name, step in route.steps.items():
            add(step.channel, f"route {route.name!r}, step {name!r}")
    return where
