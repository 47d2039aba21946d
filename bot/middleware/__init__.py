"""Cross-cutting request handling, as Bolt middleware: every adapter (HTTP, Socket Mode)
dispatches through it."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware


class InOrder(Middleware):
    """Several middleware where Bolt takes one (``App(before_authorize=...)``), run in order;
    the first that answers instead of calling ``next()`` ends the chain."""

    def __init__(self, *middleware: Middleware) -> None:
        self._middleware = middleware

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        """Run each middleware in turn; the first to answer without calling ``next()`` ends it."""
        for middleware in self._middleware:
            proceed = _Proceed()
            answer = middleware.process(req=req, resp=resp, next=proceed)
            if not proceed.called:
                return answer
            if answer is not None:
                resp = answer
        next()
        return resp

    @property
    def name(self) -> str:
        """The middleware it runs, in order, for Bolt's logs."""
        return f"InOrder({', '.join(m.name for m in self._middleware)})"


class _Proceed:
    """Bolt's ``next`` for middleware: it only records that the chain may go on."""

    def __init__(self) -> None:
        self.called = False

    def __call__(self) -> BoltResponse:
        self.called = True
        # Bolt's own ``next`` returns nothing either; middleware returns ``resp`` or None.
        return None  # type: ignore[return-value]
