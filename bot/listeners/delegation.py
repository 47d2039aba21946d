"""The pause message's overflow menu — "Delegate…" and its modal (``bot/delegation.py``),
"Audit trail" (the run's audit, ephemeral) — where the route allows delegation."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.audit import read_audit
from bot.decisions import DecisionResult
from bot.listeners.payload import dig
from bot.middleware.dedupe import first_delivery
from bot.parts import Parts

log = logging.getLogger("signoff.delegation")


def register(app: App, parts: Parts) -> None:
    """Register the "Delegate…" menu and the delegate modal's submission."""
    signoff = parts.signoff

    # Acked at once; the menu's form (or the audit) follows in a lazy listener, its own
    # thread: the answer to Slack waits on nothing, the trigger_id lives 3 seconds.
    def ack_only(ack: Ack) -> None:
        ack()

    def open_menu_choice(body: dict[str, Any], client: WebClient) -> None:
        if first_delivery(signoff, body):
            _open(parts, body, client)

    app.action(blocks.ACTION_DELEGATE)(ack=ack_only, lazy=[open_menu_choice])

    @app.view(blocks.VIEW_DELEGATE)
    def on_delegate_submitted(ack: Ack, body: dict[str, Any]) -> None:
        user_id = dig(body, "user", "id")
        token = dig(body, "view", "private_metadata")
        state = dig(body, "view", "state", "values")
        if not isinstance(user_id, str) or not isinstance(state, dict):
            ack(response_action="errors", errors={blocks.DELEGATE_BLOCK: "malformed submission"})
            return
        result = parts.delegator.delegate(
            token,
            user_id=user_id,
            delegate_id=blocks.delegate_choice(state),
            reason=blocks.reject_reason(state),
        )
        if not result.ok:
            ack(
                response_action="errors",
                errors={blocks.DELEGATE_BLOCK: blocks.modal_error(result.message)},
            )
            return
        ack()
        # Told from another thread: a Slack call would hold the answer to Slack.
        signoff.executor.submit(_tell_delegated, parts, token, user_id, result.message)


def _tell_delegated(parts: Parts, token: Any, user_id: str, message: str) -> None:
    signoff = parts.signoff
    pause = signoff.store.get_pause(token) if isinstance(token, str) else None
    ref = signoff.store.get_run_ref(pause.run_id) if pause else None
    if pause is not None:
        thread = ref.root_ts if ref is not None and pause.channel == ref.channel else None
        parts.teller.tell(
            channel=pause.channel_id or pause.channel,
            user_id=user_id,
            text=message,
            thread_ts=thread,
        )


def _open(parts: Parts, body: dict[str, Any], client: WebClient) -> None:
    tell = parts.teller.tell
    user_id = dig(body, "user", "id")
    channel = dig(body, "channel", "id")
    choice = blocks.overflow_choice(dig(body, "actions", 0, "selected_option", "value"))
    what, token = choice or ("", None)
    trigger_id = dig(body, "trigger_id")
    if not isinstance(user_id, str) or not isinstance(trigger_id, str):
        log.warning("block_actions without user or trigger_id; ignored")
        return
    thread = dig(body, "container", "thread_ts") or dig(body, "message", "thread_ts")
    loaded = parts.decider.load_pause(token, user_id)
    if isinstance(loaded, DecisionResult):
        tell(channel=channel, user_id=user_id, text=loaded.message, thread_ts=thread)
        return
    _pause, route, run, req = loaded
    if what == blocks.AUDIT:
        text = blocks.audit_text(read_audit(parts.signoff.db, run.run_id))
        tell(channel=channel, user_id=user_id, text=text, thread_ts=thread)
        return
    if not route.delegation_allowed(req.step_name):
        text = f"*{blocks.escape(req.step_name)}* cannot be delegated."
        tell(channel=channel, user_id=user_id, text=text, thread_ts=thread)
        return
    context = parts.queries.pause_context(route, run, req, with_root_link=False)
    try:
        client.views_open(trigger_id=trigger_id, view=blocks.delegate_modal(context))
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        parts.signoff.metrics.record_slack_error("views.open", exc)
