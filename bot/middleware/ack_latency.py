"""``signoff_ack_seconds``: from the moment Bolt starts on a request to its acknowledgement,
by kind of request, for every adapter (HTTP and Socket Mode dispatch the same way).

Bolt's synchronous middleware cannot wrap the rest of the chain (``next()`` only marks that
it may go on), so the time is taken where the answer is set: on the request's ``Ack``, which
both the listener's ``ack()`` and Bolt's listener runner write to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram
from slack_bolt import Ack, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

# A label per kind Slack sends us; anything else is "other", so labels stay few.
_KINDS = frozenset(
    {
        "block_actions",
        "view_submission",
        "view_closed",
        "event_callback",
        "url_verification",
        "shortcut",
        "message_action",
        "block_suggestion",
    }
)


def request_kind(body: dict[str, Any]) -> str:
    """The metric's label: the payload's type, ``command`` for slash commands."""
    if "command" in body:
        return "command"
    kind = body.get("type")
    return kind if isinstance(kind, str) and kind in _KINDS else "other"


class _TimedAck(Ack):
    """An ``Ack`` that observes the time to its first response."""

    def __init__(self, observe: Callable[[float], None]) -> None:
        self._observe: Callable[[float], None] | None = observe
        self._started = time.perf_counter()
        super().__init__()  # type: ignore[no-untyped-call]  # Bolt's Middleware is untyped

    @property
    def response(self) -> BoltResponse | None:
        return self._response

    @response.setter
    def response(self, value: BoltResponse | None) -> None:
        self._response = value
        if value is not None and self._observe is not None:
            observe, self._observe = self._observe, None
            observe(time.perf_counter() - self._started)


class AckLatency(Middleware):
    """Times each request's ack into ``signoff_ack_seconds``, by kind of request."""

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        """Put a timed ``Ack`` on the request, then go on."""
        series = self._histogram.labels(kind=request_kind(req.body))
        req.context["ack"] = _TimedAck(series.observe)
        return next()
