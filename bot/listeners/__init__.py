"""Bolt listeners, one module per kind of request."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, delegation, events, views
from bot.service import Signoff


def register(app: App, signoff: Signoff) -> None:
    """Register every listener of the bot on ``app``."""
    commands.register(app, signoff)
    actions.register(app, signoff)
    views.register(app, signoff)
    events.register(app, signoff)
    delegation.register(app, signoff)
