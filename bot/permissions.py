"""Who may decide a pause or start a run: route approvers and starters, user groups (asked
of Slack, cached) and the policies that add deciders (escalation, delegation) or refuse
one (a delegator), given at construction."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.metrics import Metrics
from bot.routing import SlackRoute
from engine import Clock, WorkflowRunOutput

log = logging.getLogger("signoff.permissions")
GROUP_CACHE_TTL = timedelta(seconds=60)  # the fallback: Slack's subteam events refresh sooner


class GroupCheckError(Exception):
    """Slack did not say who is in a user group (not cached: asked again next time)."""


class ExtraDeciders(Protocol):
    """A policy that lets more people decide a step than its approvers."""

    def deciders(self, route: SlackRoute, run: WorkflowRunOutput, step_name: str) -> frozenset[str]:
        """User IDs who may decide ``step_name`` of ``run`` besides its approvers."""
        ...


class DeciderRefusal(Protocol):
    """A policy that keeps someone who could decide from deciding."""

    def refusal(
        self, user_id: str, route: SlackRoute, run: WorkflowRunOutput, step_name: str
    ) -> str | None:
        """Why ``user_id`` may not decide ``step_name`` of ``run``, or None."""
        ...


class Groups:
    """Members of Slack user groups, cached for ``GROUP_CACHE_TTL``."""

    def __init__(self, client: WebClient, clock: Clock, metrics: Metrics) -> None:
        self.client = client
        self.clock = clock
        self.metrics = metrics
        self._cache: dict[str, tuple[datetime, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group_id: str, *, cached_only: bool = False) -> frozenset[str] | None:
        """The members of a user group: cached for ``GROUP_CACHE_TTL`` (refreshed sooner
        by Slack's subteam events). A failure is never cached: an ``ok: false`` answer
        raises ``GroupCheckError``; a timeout or 5xx propagates (the inbox retries it).
        ``cached_only``: None instead of asking Slack."""
        with self._lock:
            cached = self._cache.get(group_id)
            if cached and self.clock.now() - cached[0] < GROUP_CACHE_TTL:
                return cached[1]
        if cached_only:
            return None
        try:
            response = self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            self.metrics.record_slack_error("usergroups.users.list", exc)
            status = getattr(exc.response, "status_code", HTTPStatus.OK)
            if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                raise
            error = str(exc.response.get("error") or "unknown")
            log.warning("cannot list members of %s: %s", group_id, error)
            raise GroupCheckError(error) from exc
        members = frozenset(response.get("users") or [])
        with self._lock:
            self._cache[group_id] = (self.clock.now(), members)
        return members

    def known_members(self, group_id: str) -> frozenset[str]:
        """The members of a user group, for fan-out (DMs, Home refreshes): empty if Slack
        cannot say now (the cache is not touched by a failure)."""
        try:
            return self.members(group_id) or frozenset()
        except (GroupCheckError, SlackApiError, OSError) as exc:
            log.warning("members of group %s unknown for now: %s", group_id, exc)
            return frozenset()

    def forget(self, group_id: str | None) -> None:
        """A group changed (``subteam_members_changed`` / ``subteam_updated``): ask again;
        None: every group."""
        with self._lock:
            if group_id is None:
                self._cache.clear()
            else:
                self._cache.pop(group_id, None)


class Permissions:
    """Whether someone may decide a step or start a run."""

    def __init__(
        self,
        groups: Groups,
        *,
        extra: Sequence[ExtraDeciders] = (),
        refusals: Sequence[DeciderRefusal] = (),
    ) -> None:
        self.groups = groups
        self._extra = tuple(extra)
        self._refusals = tuple(refusals)

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
        for policy in self._refusals:
            why = policy.refusal(user_id, route, run, step_name)
            if why is not None:
                return False, why
        approvers = route.approvers_for(step_name)
        if not approvers or user_id in approvers:
            return True, ""
        unchecked = []
        for group in (a for a in approvers if a.startswith("S")):
            try:
                members = self.groups.members(group, cached_only=cached_only)
            except GroupCheckError as exc:
                unchecked.append((group, str(exc)))
                continue
            if members is None:
                return True, ""  # not known before the ack: the worker decides
            if user_id in members:
                return True, ""
        if user_id in self.extra_deciders(route, run, step_name):
            return True, ""
        if unchecked:
            groups = ", ".join(blocks.mention(g) for g, _ in unchecked)
            return False, (
                f"Signoff could not check who is in {groups} (Slack said "
                f"`{blocks.escape(unchecked[0][1])}`); please try again."
            )
        who = ", ".join(blocks.mention(a) for a in approvers)
        return False, f"only {who} may decide this step."

    def extra_deciders(
        self, route: SlackRoute, run: WorkflowRunOutput, step_name: str
    ) -> frozenset[str]:
        """Who may decide this step beyond its approvers (escalation, delegation)."""
        found: frozenset[str] = frozenset()
        for policy in self._extra:
            found |= policy.deciders(route, run, step_name)
        return found

    def can_start(self, user_id: str, route: SlackRoute, *, cached_only: bool = False) -> bool:
        """Whether ``user_id`` may start runs of ``route``; ``cached_only`` (before an ack)
        counts a group not known yet as allowing (the worker checks it for real)."""
        if not route.starters or user_id in route.starters:
            return True
        for group in (g for g in route.starters if g.startswith("S")):
            members = self.groups.members(group, cached_only=cached_only)
            if members is None or user_id in members:
                return True
        return False


__all__ = [
    "GROUP_CACHE_TTL",
    "DeciderRefusal",
    "ExtraDeciders",
    "GroupCheckError",
    "Groups",
    "Permissions",
]
