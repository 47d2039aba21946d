"""The Bolt app: listeners and middleware over one ``Signoff`` core."""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_sdk import WebClient

from bot import listeners
from bot.middleware.dedupe import dedupe_middleware
from bot.service import Signoff

log = logging.getLogger("signoff.app")


def build_app(signoff: Signoff, *, signing_secret: str, client: WebClient) -> App:
    app = App(
        client=client,
        signing_secret=signing_secret,
        # auth.test at start-up would make Slack's reachability a start-up condition.
        token_verification_enabled=False,
        process_before_response=False,
        logger=logging.getLogger("signoff.bolt"),
    )
    app.use(dedupe_middleware(signoff))
    listeners.register(app, signoff)

    @app.error
    def on_error(error: Exception) -> None:
        log.exception("listener failed", exc_info=error)

    return app
