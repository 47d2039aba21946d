"""Act once per interaction: Slack's retries (``X-Slack-Retry-Num``) and replays of a
request already handled are acknowledged and dropped.

Every interaction's key (``interaction_key``) is its row in the inbox: state-changing ones
are recorded there by ``bot.inbox.record_then_ack`` (a repeat is a no-op insert); events
are recorded here, before their listeners run."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltRequest, BoltResponse

from bot.inbox import InboxUnavailableError
from bot.kinds import InboxKind
from bot.listeners.payload import dig
from bot.service import Signoff
from bot.store import InboxEntry

log = logging.getLogger("signoff.dedupe")


def interaction_key(body: dict[str, Any]) -> str | None:
    """A key that is the same for every delivery of one interaction."""
    kind = body.get("type")
    if kind == "block_actions":
        action = dig(body, "actions", 0)
        user = dig(body, "user", "id")
        if isinstance(action, dict) and user:
            return f"action:{user}:{action.get('action_id')}:{action.get('action_ts')}"
    elif kind == "view_submission":
        # A corrected resubmission of the same view is new; the same values again are not.
        view_id = dig(body, "view", "id")
        if view_id:
            values = json.dumps(dig(body, "view", "state", "values"), sort_keys=True)
            return f"view:{view_id}:{hashlib.sha256(values.encode()).hexdigest()[:32]}"
    elif kind == "event_callback" and body.get("event_id"):
        return f"event:{body['event_id']}"
    elif body.get("command") and body.get("trigger_id"):
        return f"command:{body['trigger_id']}"
    return None


def first_delivery(signoff: Signoff, body: dict[str, Any]) -> bool:
    """True the first time this interaction arrives (at any replica), False for repeats:
    for what changes nothing (opening a form), after its ack. If it cannot be recorded it
    counts as new (opening a form twice is harmless)."""
    key = interaction_key(body)
    if key is None:
        return True
    try:
        return signoff.inbox_writer.record(InboxEntry(key, InboxKind.seen, None, None))
    except InboxUnavailableError:
        return True


def dedupe_middleware(signoff: Signoff) -> Callable[..., BoltResponse | None]:
    """Bolt middleware that acks and drops Slack's retries and replays of handled requests."""
    def dedupe(
        req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        body = req.body if isinstance(req.body, dict) else {}
        if body.get("type") != "event_callback":
            # Clicks, forms and commands are recorded by their listeners, with what to do
            # (bot.inbox.record_then_ack); what only reads is answered again on a repeat.
            return next()
        key = interaction_key(body)
        if key is None:
            return next()
        try:
            new = signoff.inbox_writer.record(InboxEntry(key, InboxKind.seen, None, None))
        except InboxUnavailableError:
            # Not recorded: Slack retries an event answered with an error.
            return BoltResponse(status=503, body={"error": "could not record the event"})
        if not new:
            retry = req.headers.get("x-slack-retry-num", [None])[0]
            log.info("dropping repeated delivery %s (retry %s)", key, retry)
            return BoltResponse(status=200, body="")
        return next()

    return dedupe
