"""The App Home: ``app_home_opened`` publishes the person's Home tab (through the outbox)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from bot.notify import Notifier

log = logging.getLogger("signoff.home")
EVENT_ID_MAX = 64  # Slack's event ids are about 11 characters


def register(app: App, notifier: Notifier) -> None:
    @app.event("app_home_opened")
    def on_app_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        # Bolt has acknowledged the event; repeats were dropped by the dedupe middleware.
        user_id = event.get("user")
        if event.get("tab", "home") != "home" or not isinstance(user_id, str):
            return
        reason = body.get("event_id") or event.get("event_ts")
        if not isinstance(reason, str) or not reason or len(reason) > EVENT_ID_MAX:
            log.warning("app_home_opened without event_id or event_ts; ignored")
            return
        notifier.request_home(user_id, reason=f"opened:{reason}")  # wakes the outbox
