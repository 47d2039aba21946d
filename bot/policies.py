"""Approval policies in Slack: votes on pauses that need several people, and groups with
their own counts (``require=[Approvals(group="S0SRE", count=1), ...]`` on a route or step).

The engine counts votes and claims the pause exactly once (``approvals=N``); this module
decides, before a vote goes to the engine, whether the vote may count toward the route's
groups: every accepted approval must be assignable to a group with room left, one group per
person (a person in two groups counts for one of them), found by bipartite matching, so an
earlier voter is moved to their other group when that makes room. The engine's
``approvals`` of a step with groups is the sum of their counts (set at route load, see
``apply_route_policy``): when the last vote fits, every group's count is met.

Precedence of ``allow_requester``: the stricter wins. A step's own ``allow_requester=False``
is enforced by the engine (in every process); a route's or step route's
``allow_requester=False`` is written onto the step's engine option at route load, so the
engine enforces it too; ``True`` on a route never lifts a step's ``False``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, update

from bot.blocks import mention
from bot.store import BotStore, slack_vote_locks
from bot.text import escape
from engine import AlreadyDecidedError, DeciderNotAllowedError, StepRequirement

if TYPE_CHECKING:
    from bot.routing import SlackRoute

Members = Callable[[str], frozenset[str]]
#: How long a vote lease holds if its holder died mid-vote (a vote takes milliseconds).
VOTE_LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class Approvals:
    """``count`` approvals from members of the Slack user group ``group`` (``S…``), or from
    the user ``group`` itself when it is a user ID (``U…``/``W…``)."""

    group: str
    count: int = 1

    def __post_init__(self) -> None:
        if not self.group or self.group[0] not in "SUW":
            raise ValueError(f"Approvals: {self.group!r} is not a user-group (S…) or user ID")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"Approvals({self.group!r}): count must be an integer >= 1")


def is_member(user_id: str, who: str, members: Members) -> bool:
    """Whether ``user_id`` is ``who`` (a user ID) or in ``who`` (a user group)."""
    if who.startswith("S"):
        return user_id in members(who)
    return user_id == who


def assign(
    voters: Sequence[str], require: Sequence[Approvals], members: Members
) -> dict[str, str] | None:
    """An assignment of each voter to one group (voter -> group) that keeps every group
    within its count, or None if there is none. Augmenting paths (Kuhn's algorithm) over
    group slots: small inputs (a handful of people and groups)."""
    eligible = {v: [a.group for a in require if is_member(v, a.group, members)] for v in voters}
    capacity = {a.group: a.count for a in require}
    holders: dict[str, list[str]] = {a.group: [] for a in require}
    owner: dict[str, str] = {}

    def place(voter: str, seen: set[str]) -> bool:
        for group in eligible[voter]:
            if group in seen:
                continue
            seen.add(group)
            if len(holders[group]) < capacity[group]:
                holders[group].append(voter)
                owner[voter] = group
                return True
            for other in list(holders[group]):
                if place(other, seen):  # moved to another of its groups: room here
                    holders[group].remove(other)
                    holders[group].append(voter)
                    owner[voter] = group
                    return True
        return False

    for voter in dict.fromkeys(voters):
        if not place(voter, set()):
            return None
    return owner


def group_progress(
    approved_by: Sequence[str], require: Sequence[Approvals], members: Members
) -> list[tuple[str, int, list[str]]]:
    """Each group's (group, count, who counts for it) under a current assignment."""
    owner = assign(approved_by, require, members) or {}
    return [
        (a.group, a.count, [v for v in approved_by if owner.get(v) == a.group]) for a in require
    ]


def vote_refusal(
    user_id: str, req: StepRequirement, require: Sequence[Approvals], members: Members
) -> str | None:
    """Why ``user_id``'s approval cannot count toward ``require`` (None: it can)."""
    if not require or user_id in req.approved_by:
        return None
    if not any(is_member(user_id, a.group, members) for a in require):
        groups = ", ".join(mention(a.group) for a in require)
        return f":lock: You are not allowed to decide this: its approvals come from {groups}."
    if assign([*req.approved_by, user_id], require, members) is not None:
        return None
    still = [
        f"{mention(g)} ({count - len(who)} more)"
        for g, count, who in group_progress(req.approved_by, require, members)
        if len(who) < count
    ]
    return (
        "Your approval is not needed: your group's approvals are in"
        + (f"; still needed: {', '.join(still)}." if still else ".")
    )


def may_approve_groups(user_id: str, require: Sequence[Approvals], members: Members) -> bool:
    """Whether ``user_id`` is in one of the groups (or is one of the users) of ``require``."""
    return any(is_member(user_id, a.group, members) for a in require)


def refusal(exc: AlreadyDecidedError | DeciderNotAllowedError) -> str:
    """What to tell a person the engine refused (a second decision, an excluded decider)."""
    if isinstance(exc, AlreadyDecidedError):
        needed = exc.approvals_needed
        more = f"; {needed} more approval{'s' if needed != 1 else ''} needed" if needed else ""
        if exc.decided_by in exc.approved_by:
            return f"You already approved *{escape(exc.step_name)}*: it counts once{more}."
        if exc.decided_by in exc.rejected_by:
            return f"You already rejected *{escape(exc.step_name)}*: it counts once."
        return f"*{escape(exc.step_name)}* already has the approvals it needs{more}."
    return f":lock: You are not allowed to decide *{escape(exc.step_name)}*: {_why(exc)}"


def _why(exc: DeciderNotAllowedError) -> str:
    if exc.decided_by is None:
        return escape(exc.why)
    return (
        "you started this run or decided an earlier step of it, "
        "and this step needs someone else."
    )


def vote_recorded(approved: bool, req: StepRequirement) -> str:
    """The voter's ephemeral after a vote that left the pause open."""
    name = escape(req.step_name)
    if req.quorum_reached:
        verb = "approved" if approved else "rejected"
        return f"You {verb} *{name}*; it is decided, the other steps wait for theirs."
    if approved:
        needed = req.approvals_needed
        return f"You approved *{name}*; {needed} more needed."
    needed = req.rejections_needed
    return f"You rejected *{name}*; {needed} more rejection{'s' if needed != 1 else ''} needed."


def route_require(route: SlackRoute, step_name: str | None) -> tuple[Approvals, ...]:
    """The groups with counts of a step: its own ``require`` if given, else the route's."""
    step = route.steps.get(step_name or "")
    if step is not None and step.require is not None:
        return step.require
    return route.require


def apply_route_policy(route: SlackRoute) -> None:
    """Write the route's policy onto its workflow's top-level steps (engine options), so
    the engine enforces it and claims exactly once: ``allow_requester=False`` (the stricter
    wins) and, for a step with ``require``, ``approvals`` = the sum of the counts."""
    for component in route.workflow.steps:
        name = component.name
        if not hasattr(component, "approvals"):
            continue
        if not route.requester_may_decide(name):
            component.allow_requester = False
        require = route_require(route, name)
        if not require:
            continue
        total = sum(a.count for a in require)
        current = getattr(component, "approvals", 1)
        if current not in (1, total):
            raise ValueError(
                f"route {route.name!r}, step {name!r}: approvals={current} but its groups "
                f"require {total} in all; give one or the other"
            )
        component.approvals = total


def approvers_of(require: Iterable[Approvals]) -> tuple[str, ...]:
    """The user groups and users a ``require`` list names, in order."""
    return tuple(dict.fromkeys(a.group for a in require))


class VoteLeases:
    """One short lease per pause, in the database (``slack_vote_locks``), under which a vote
    is checked against the route's groups and handed to the engine: two approvals at the
    same moment, in any replicas, are checked one after the other against the votes as
    they are. A lease left by a process that died lapses after ``VOTE_LEASE``."""

    def __init__(self, store: BotStore, now: Callable[[], datetime]) -> None:
        self.store = store
        self.now = now

    def acquire(self, requirement_id: str) -> str | None:
        """Take the pause's lease; its holder token, or None while someone else holds it."""
        holder, now = uuid.uuid4().hex, self.now()
        until = now + VOTE_LEASE
        values = {"requirement_id": requirement_id, "holder": holder, "locked_until": until}
        with self.store.db.write() as conn:
            if conn.execute(self.store._insert_ignore(slack_vote_locks), values).first():
                return holder
            taken = conn.execute(
                update(slack_vote_locks)
                .where(
                    slack_vote_locks.c.requirement_id == requirement_id,
                    slack_vote_locks.c.locked_until < now,
                )
                .values(holder=holder, locked_until=until)
            )
            return holder if taken.rowcount == 1 else None

    def release(self, requirement_id: str, holder: str) -> None:
        """Give the lease back (only the holder's)."""
        with self.store.db.write() as conn:
            conn.execute(
                delete(slack_vote_locks).where(
                    slack_vote_locks.c.requirement_id == requirement_id,
                    slack_vote_locks.c.holder == holder,
                )
            )

    @contextmanager
    def held(self, requirement_id: str) -> Iterator[bool]:
        """``with leases.held(id) as ok:`` — ``ok`` False: someone votes at this moment."""
        holder = self.acquire(requirement_id)
        try:
            yield holder is not None
        finally:
            if holder is not None:
                self.release(requirement_id, holder)
