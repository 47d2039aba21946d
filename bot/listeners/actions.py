"""Buttons on a pause message: Approve, Reject, Reject with reason…, Provide input…"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.inbox import record_then_ack
from bot.listeners.payload import dig
from bot.middleware.dedupe import first_delivery, interaction_key
from bot.service import DecisionResult, Signoff

log = logging.getLogger("signoff.actions")


def register(app: App, signoff: Signoff) -> None:
    @app.action(blocks.ACTION_APPROVE)
    def on_approve(ack: Ack, body: dict[str, Any]) -> None:
        record_decision(signoff, ack, body, action="confirm")

    @app.action(blocks.ACTION_REJECT)
    def on_reject(ack: Ack, body: dict[str, Any]) -> None:
        record_decision(signoff, ack, body, action="reject")

    # Opening a form: acked at once; the form opens right after, in a lazy listener (its
    # own thread, not holding the answer to Slack), within the trigger_id's 3 seconds.
    def ack_only(ack: Ack) -> None:
        ack()

    def provide_input(body: dict[str, Any], client: WebClient) -> None:
        if first_delivery(signoff, body):
            _open_modal(signoff, body, client, blocks.input_modal)

    def reject_with_reason(body: dict[str, Any], client: WebClient) -> None:
        if first_delivery(signoff, body):
            _open_modal(signoff, body, client, blocks.reject_modal)

    app.action(blocks.ACTION_PROVIDE_INPUT)(ack=ack_only, lazy=[provide_input])
    app.action(blocks.ACTION_REJECT_WITH_REASON)(ack=ack_only, lazy=[reject_with_reason])


def _who(body: dict[str, Any]) -> tuple[str | None, str | None, Any]:
    return (dig(body, "user", "id"), dig(body, "channel", "id"), dig(body, "actions", 0, "value"))


def _thread_of(body: dict[str, Any]) -> str | None:
    """The thread of the message clicked (its own, for a top-level message): replies to a
    click go there, next to what was clicked."""
    for path in (("container", "thread_ts"), ("message", "thread_ts"), ("container", "message_ts")):
        ts = dig(body, *path)
        if isinstance(ts, str) and ts:
            return ts
    return None


def record_decision(
    signoff: Signoff, ack: Ack, body: dict[str, Any], *, action: str, **decide: Any
) -> None:
    """A button that decides: recorded, then acked; the inbox worker calls
    ``Signoff.decide(token, user_id=..., action=action, **decide)`` and tells the person
    if it did not go through. For any new deciding button."""
    user_id, channel, token = _who(body)
    if not isinstance(user_id, str):
        log.warning("block_actions without a user; ignored")
        ack()
        return
    record_then_ack(
        signoff,
        ack,
        key=interaction_key(body),
        kind="decide",
        user_id=user_id,
        data={
            "decide": {"token": token, "action": action, **decide},
            "reply": {"channel": channel, "thread_ts": _thread_of(body)},
        },
        surface="action",
    )


def _open_modal(signoff: Signoff, body: dict[str, Any], client: WebClient, build: Any) -> None:
    user_id, channel, token = _who(body)
    trigger_id = dig(body, "trigger_id")
    if not isinstance(user_id, str) or not isinstance(trigger_id, str):
        log.warning("block_actions without user or trigger_id; ignored")
        return
    loaded = signoff.load_pause(token, user_id)
    if isinstance(loaded, DecisionResult):
        signoff.tell(
            channel=channel, user_id=user_id, text=loaded.message, thread_ts=_thread_of(body)
        )
        return
    _pause, route, run, req = loaded
    context = signoff.pause_context(route, run, req, with_root_link=False)
    try:
        client.views_open(trigger_id=trigger_id, view=build(context))
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        signoff.tell(
            channel=channel,
            user_id=user_id,
            text="Could not open the form (Slack said "
            f"`{blocks.escape(exc.response.get('error'))}`); please click again.",
            thread_ts=_thread_of(body),
        )
