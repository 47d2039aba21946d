"""Refuse, with a 400, any request not shaped like one Slack sends (``bot.request_shapes``),
before Bolt's own middleware and the listeners read it. Runs for HTTP and Socket Mode alike."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.request_shapes import request_problem

log = logging.getLogger("signoff.shapes")


class RequestShapes(Middleware):
    """Answers a 400 to a request not shaped like one Slack sends."""

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        """Refuse a malformed request with a 400 naming the problem; let the others through."""
        problem = request_problem(req.body)
        if problem is not None:
            log.info("refused a malformed %s request: %s", req.mode, problem)
            return BoltResponse(status=400, body={"error": f"malformed payload: {problem}"})
        return next()
