"""The App Home: ``app_home_opened`` publishes the person's Home tab, through the outbox.

Record, then acknowledge: Bolt acknowledges an event before its listener runs, so the
refresh is recorded (an outbox row) by the listener's middleware, which runs before that
ack; the listener then publishes it at once instead of at the outbox's next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot.notify import Notifier, home_request

log = logging.getLogger("signoff.home")


def register(app: App, notifier: Notifier) -> None:
    """Register the App Home listener: ``app_home_opened`` recorded before the ack, then the
    person's Home published."""
    def record_home_request(body: dict[str, Any], next: Callable[[], None]) -> None:
        request = home_request(body)
        if request is not None:
            user_id, reason = request
            try:
                notifier.request_home(user_id, reason=reason, asked=True)
            except Exception:  # the next app_home_opened publishes it
                log.exception("could not record the Home tab refresh of %s", user_id)
        next()

    @app.event("app_home_opened", middleware=[record_home_request])
    def on_app_home_opened(body: dict[str, Any]) -> None:
        request = home_request(body)
        if request is not None:
            notifier.deliver_home_now(*request)
