"""The parts of a running bot that Slack's listeners use, as ``Runtime`` wired them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.decider import Decider
    from bot.delegation import Delegator
    from bot.notify import Notifier
    from bot.permissions import Permissions
    from bot.queries import Queries
    from bot.service import Signoff
    from bot.teller import Teller


@dataclass(frozen=True)
class Parts:
    """What listeners are given: each takes the parts it needs from here."""

    signoff: Signoff  # shared resources: routes, database, store, forms, inbox writer
    permissions: Permissions
    decider: Decider
    queries: Queries
    teller: Teller
    delegator: Delegator
    notifier: Notifier | None = None  # DMs and the App Home (its listener), if wired


__all__ = ["Parts"]
