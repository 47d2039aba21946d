"""Events API: Slack's word that a user group changed refreshes the cached members at once
(``subteam_members_changed``, ``subteam_updated``); the cache's short TTL is the fallback."""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.listeners.payload import dig
from bot.permissions import Groups


def register(app: App, groups: Groups) -> None:
    """Register the user-group events that keep the cache of their members fresh."""

    @app.event("subteam_members_changed")
    def on_members_changed(event: dict[str, Any]) -> None:
        group = event.get("subteam_id")
        groups.forget(group if isinstance(group, str) else None)

    @app.event("subteam_updated")
    def on_group_updated(event: dict[str, Any]) -> None:
        group = dig(event, "subteam", "id")
        groups.forget(group if isinstance(group, str) else None)
