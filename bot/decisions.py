"""What a person can do to a pause: the actions ``Decider.decide`` takes.

Listeners parse a Slack payload into one of these and JSON-able keyword arguments, so a
decision can be stored (the durable inbox) and applied later by ``decide(**payload)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine import Decision
    from engine.db.base import BaseDb


class DecisionAction(StrEnum):
    """What a person did to a pause; the one vocabulary of listeners, inbox and ``decide``."""

    confirm = "confirm"  # Approve: a confirmation, an output review, a tool call
    reject = "reject"  # Reject (with an optional reason / feedback)
    input = "input"  # the input modal's values (and, with confirmation, the go-ahead)
    select = "select"  # a Router's route(s), with ``choices``
    edit = "edit"  # an output review accepted with ``output`` in place of the step's
    retry = "retry"  # an error pause: run the step again
    skip = "skip"  # an error pause: record the step as failed and go on

    @classmethod
    def parse(cls, value: object) -> DecisionAction | None:
        """The action named ``value``, or None for anything else (hostile input included)."""
        if isinstance(value, cls):
            return value
        try:
            return cls(value) if isinstance(value, str) else None
        except ValueError:
            return None


@dataclass(frozen=True)
class DecisionResult:
    """What happened to a decision; ``message`` is what to tell the person (ephemerally)."""

    ok: bool
    message: str
    errors: dict[str, str] | None = None  # for modals: field errors keyed by block id
    # An ok result the person is told too: a vote that left the pause open ("1 more needed").
    tell: bool = False


__all__ = ["DecisionAction", "DecisionResult"]


def resolving_decision(db: BaseDb, run_id: str, requirement_id: str) -> Decision | None:
    """The decision that resolved a pause (a vote only counts towards one), or None while
    it waits."""
    return next(
        (
            d
            for d in db.get_decisions(run_id)
            if d.requirement_id == requirement_id and not d.is_vote
        ),
        None,
    )
