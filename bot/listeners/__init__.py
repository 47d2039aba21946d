"""Bolt listeners, one module per kind of request."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, delegation, events, views
from bot.parts import Parts


def register(app: App, parts: Parts) -> None:
    """Register every listener of the bot on ``app``."""
    commands.register(app, parts)
    actions.register(app, parts)
    views.register(app, parts)
    events.register(app, parts.permissions.groups)
    delegation.register(app, parts)
