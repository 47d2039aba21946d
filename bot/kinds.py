"""The kinds and states of the bot's durable rows (outbox and inbox), as enums.

Their values are what the tables hold (unchanged: no migration); a ``StrEnum`` compares
and stores as its value, so rows read back as plain strings still match.
"""

from __future__ import annotations

from enum import StrEnum


class OutboxKind(StrEnum):
    """What an outbox item posts or updates in the run's channel thread (``bot/outbox.py``);
    the direct-message and App Home kinds are ``NotifyKind``."""

    root = "root"  # the run's root message
    root_update = "root_update"  # the root message re-rendered as the run is now
    pause = "pause"  # a pause message with its buttons
    pause_update = "pause_update"  # a pause still open re-rendered (a vote, a policy change)
    resolve = "resolve"  # a decided pause's message: its outcome in place of the buttons
    note = "note"  # a line in the run's thread
    form_closed = "form_closed"  # an open form of a decided pause replaced by a notice


class NotifyKind(StrEnum):
    """Outbox kinds delivered by ``bot.notify.Notifier`` (there: ``Kind``)."""

    fanout = "notify_fanout"  # one pause event → one item per person it reaches
    dm = "dm_copy"  # a direct copy of a pause message to one approver
    dm_resolve = "dm_resolve"  # every copy of a pause updated with its outcome
    dm_remind = "dm_remind"  # a reminder to one approver
    dm_progress = "dm_progress"  # every copy of a pause re-rendered after a vote (buttons kept)
    home = "home"  # refresh one person's App Home (something it shows changed)
    home_asked = "home_asked"  # publish it now: they opened the tab, or it answers their click


# Kinds that render a whole surface as it is when delivered: the newest of a group's items
# supersedes the older ones, and a new one is not added while one is still pending.
REFRESH_KINDS: frozenset[str] = frozenset({OutboxKind.root_update, NotifyKind.home})


class OutboxState(StrEnum):
    """Where an outbox item is in its delivery."""

    pending = "pending"
    sending = "sending"  # leased by a worker
    sent = "sent"
    failed = "failed"  # given up on


class InboxKind(StrEnum):
    """What a recorded interaction asks for (``bot/inbox.py`` applies it)."""

    decide = "decide"  # a click or a form: ``Decider.decide``
    start = "start"  # ``/signoff run``
    seen = "seen"  # a de-duplication key only, nothing to apply


class InboxState(StrEnum):
    """Where a recorded interaction is."""

    pending = "pending"
    done = "done"
    failed = "failed"


__all__ = [
    "REFRESH_KINDS",
    "InboxKind",
    "InboxState",
    "NotifyKind",
    "OutboxKind",
    "OutboxState",
]
