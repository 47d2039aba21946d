"""The Bolt app: listeners and middleware over the bot's parts (``bot/parts.py``)."""

from __future__ import annotations

import logging
import random
import threading
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
from bot.parts import Parts

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


AUTH_BACKOFF_START = 1.0
AUTH_BACKOFF_MAX = 300.0


class CachedAuthorization:
    """Single-workspace authorization that never makes a request wait on Slack.

    Bolt's default calls auth.test before handling the first request, and again after each
    failure (10 s each when Slack is slow or down). This asks in a background thread, with
    back-off until Slack answers once, and caches that answer; until then every request is
    authorized with the token alone.
    """

    def __init__(self, client: WebClient, *, start: bool = True) -> None:
        self.client = client
        self._cached: AuthorizeResult | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    def start(self) -> None:
        """Ask ``auth.test`` in the background, with back-off, until it answers."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._ask, name="signoff-auth", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop asking."""
        self._stop.set()

    def _ask(self) -> None:
        delay = AUTH_BACKOFF_START
        while not self._stop.is_set():
            if self.refresh():
                return
            self._stop.wait(delay * (0.5 + random.random()))
            delay = min(delay * 2, AUTH_BACKOFF_MAX)

    def refresh(self) -> bool:
        """Ask auth.test once; True if the answer is cached now."""
        try:
            auth = self.client.auth_test()
        except (SlackApiError, OSError) as exc:
            log.warning("auth.test failed (%s); working with the token alone meanwhile", exc)
            return False
        self._cached = AuthorizeResult(
            enterprise_id=auth.get("enterprise_id"),
            team_id=auth.get("team_id"),
            bot_token=self.client.token,
            bot_id=auth.get("bot_id"),
            bot_user_id=auth.get("user_id"),
        )
        return True

    def authorize(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        """Bolt's authorize: the cached ``auth.test`` answer, or the token alone (never a
        Slack call on a request's path)."""
        cached = self._cached
        if cached is not None:
            return cached
        return AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, bot_token=self.client.token
        )


def cached_authorization(client: WebClient) -> Callable[..., AuthorizeResult]:
    """``CachedAuthorization`` asking in the background from now on, as the function Bolt
    calls."""
    return bolt_authorize(CachedAuthorization(client))


def bolt_authorize(cache: CachedAuthorization) -> Callable[..., AuthorizeResult]:
    """``cache`` as the function Bolt calls (it passes arguments by their names)."""

    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return cache.authorize(enterprise_id, team_id)

    return authorize


def build_app(
    parts: Parts,
    *,
    signing_secret: str,
    client: WebClient,
    authorization: CachedAuthorization | None = None,
) -> App:
    """The Bolt app over the bot's ``parts``: its middleware (ack timing, request shapes,
    dedupe) and every listener, with Bolt's own signature check off because the HTTP edge
    verifies first."""
    app = App(
        client=client,
        signing_secret=signing_secret,
        authorize=bolt_authorize(authorization or CachedAuthorization(client)),
        # Verified once, at the HTTP edge before any byte is parsed (bot/slack_http.py);
        # Bolt's own check would parse the unverified body first, and skips Socket Mode anyway.
        request_verification_enabled=False,
        # Before authorization, the first of Bolt's middleware to read the payload.
        before_authorize=InOrder(AckLatency(parts.signoff.metrics.ack_seconds), RequestShapes()),
        # Every listener's work is done by its ack (a durable insert, or reads): run in the
        # request's own thread, with no second thread polling for the ack. What follows an
        # ack (opening a form) is a lazy listener, on the executor below.
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="bolt"),
        logger=_BOLT_LOG,
    )
    app.use(dedupe_middleware(parts.signoff))
    listeners.register(app, parts)
    if parts.notifier is not None:
        from bot.listeners import home

        home.register(app, parts.notifier)

    @app.error
    def on_error(error: Exception) -> None:
        log.exception("listener failed", exc_info=error)

    return app
