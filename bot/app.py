"""The Bolt app: listeners and middleware over one ``Signoff`` core."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import listeners
from bot.middleware import InOrder
from bot.middleware.ack_latency import AckLatency
from bot.middleware.dedupe import dedupe_middleware
from bot.middleware.shapes import RequestShapes
from bot.notify import Notifier
from bot.service import Signoff

log = logging.getLogger("signoff.app")


class _DropDeliberateTokenWarnings(logging.Filter):
    """Bolt warns that the token is ignored whenever ``authorize`` is given and a token is
    around (on the client, or in SLACK_BOT_TOKEN, which Bolt reads itself). Here that is the
    design: ``cached_authorization`` hands the token to every request."""

    _MESSAGES = frozenset({warning_token_skipped(), warning_client_prioritized_and_token_skipped()})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self._MESSAGES


_BOLT_LOG = logging.getLogger("signoff.bolt")
_BOLT_LOG.addFilter(_DropDeliberateTokenWarnings())


def cached_authorization(client: WebClient) -> Callable[..., AuthorizeResult]:
    """Single-workspace authorization that needs Slack only once.

    Bolt's default calls auth.test before handling the first request; if Slack is
    unreachable then, requests would be refused. This asks once, caches the answer, and
    until it has one works with the token alone.
    """
    cache: list[AuthorizeResult] = []

    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        if cache:
            return cache[0]
        try:
            auth = client.auth_test()
        except (SlackApiError, OSError) as exc:
            log.warning("auth.test failed (%s); continuing with the token alone", exc)
            return AuthorizeResult(
                enterprise_id=enterprise_id, team_id=team_id, bot_token=client.token
            )
        cache.append(
            AuthorizeResult(
                enterprise_id=auth.get("enterprise_id"),
                team_id=auth.get("team_id"),
                bot_token=client.token,
                bot_id=auth.get("bot_id"),
                bot_user_id=auth.get("user_id"),
            )
        )
        return cache[0]

    return authorize


def build_app(
    signoff: Signoff,
    *,
    signing_secret: str,
    client: WebClient,
    notifier: Notifier | None = None,
) -> App:
    """The Bolt app for ``signoff``: its middleware (ack timing, request shapes, dedupe) and every
    listener, with Bolt's own signature check off because the HTTP edge verifies first."""
    app = App(
        client=client,
        signing_secret=signing_secret,
        authorize=cached_authorization(client),
        # Verified once, at the HTTP edge before any byte is parsed (bot/slack_http.py);
        # Bolt's own check would parse the unverified body first, and skips Socket Mode anyway.
        request_verification_enabled=False,
        # Before authorization, the first of Bolt's middleware to read the payload.
        before_authorize=InOrder(AckLatency(signoff.metrics.ack_seconds), RequestShapes()),
        process_before_response=False,
        # Listeners ack at once and then claim the pause; a bigger pool keeps a burst of
        # clicks from waiting for a thread before they can ack.
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="bolt"),
        logger=_BOLT_LOG,
    )
    app.use(dedupe_middleware(signoff))
    listeners.register(app, signoff)
    if notifier is not None:
        from bot.listeners import home

        home.register(app, notifier)

    @app.error
    def on_error(error: Exception) -> None:
        log.exception("listener failed", exc_info=error)

    return app
