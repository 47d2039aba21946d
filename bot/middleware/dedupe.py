"""Act once per interaction: Slack's retries (``X-Slack-Retry-Num``) and replays of a
request already handled are acknowledged and dropped."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltRequest, BoltResponse

from bot.listeners.payload import dig
from bot.service import Signoff

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
    """True the first time this interaction arrives (at any replica), False for repeats."""
    key = interaction_key(body)
    return key is None or signoff.store.first_time_seen(key, now=signoff.clock.now())


def dedupe_middleware(signoff: Signoff) -> Callable[..., BoltResponse | None]:
    """Bolt middleware that acks and drops Slack's retries and replays of handled requests."""
    def dedupe(
        req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        body = req.body if isinstance(req.body, dict) else {}
        if body.get("type") == "block_actions":
            # Clicks are checked by their listeners after the ack: the check is a durable
            # write, and acking a repeat twice is harmless where acting twice is not.
            return next()
        key = interaction_key(body)
        if key is not None and not signoff.store.first_time_seen(key, now=signoff.clock.now()):
            retry = req.headers.get("x-slack-retry-num", [None])[0]
            log.info("dropping repeated delivery %s (retry %s)", key, retry)
            return BoltResponse(status=200, body="")
        return next()

    return dedupe
