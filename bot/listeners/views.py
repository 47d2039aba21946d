"""Modal submissions: the input form (validated by the engine, errors inline) and the
reject-with-reason form."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App

from bot import blocks
from bot.listeners.payload import dig
from bot.service import DecisionResult, Signoff

log = logging.getLogger("signoff.views")
_FIRST_BLOCK_ERROR = "Signoff could not take this answer."


def register(app: App, signoff: Signoff) -> None:
    """Register the modal listeners: a submission's ack shows its errors or closes the modal."""
    @app.view(blocks.VIEW_INPUT)
    def on_input_submitted(ack: Ack, body: dict[str, Any]) -> None:
        user_id = dig(body, "user", "id")
        token = dig(body, "view", "private_metadata")
        state = dig(body, "view", "state", "values")
        if not isinstance(user_id, str) or not isinstance(state, dict):
            ack(response_action="errors", errors={"_": "malformed submission"})
            return
        loaded = signoff.load_pause(token, user_id)
        if isinstance(loaded, DecisionResult):
            _error_on_first_field(ack, body, loaded.message)
            return
        _pause, _route, _run, req = loaded
        try:
            values = blocks.parse_modal_values(state, req.user_input_schema)
        except ValueError as exc:
            _error_on_first_field(ack, body, str(exc))
            return
        if not req.user_input_schema:
            values = {"input": values.get("input")}
        result = signoff.decide(token, user_id=user_id, action="input", values=values)
        if result.errors:
            ack(response_action="errors", errors=result.errors)
        elif not result.ok:
            _error_on_first_field(ack, body, result.message)
        else:
            ack()

    @app.view(blocks.VIEW_REJECT)
    def on_reject_submitted(ack: Ack, body: dict[str, Any]) -> None:
        user_id = dig(body, "user", "id")
        token = dig(body, "view", "private_metadata")
        state = dig(body, "view", "state", "values")
        if not isinstance(user_id, str):
            ack(response_action="errors", errors={blocks.REASON_BLOCK: "malformed submission"})
            return
        reason = blocks.reject_reason(state if isinstance(state, dict) else {})
        result = signoff.decide(token, user_id=user_id, action="reject", reason=reason)
        if result.ok:
            ack()
        else:
            ack(
                response_action="errors",
                errors={blocks.REASON_BLOCK: blocks.modal_error(result.message)},
            )

    @app.view_closed(blocks.VIEW_INPUT)
    @app.view_closed(blocks.VIEW_REJECT)
    def on_closed(ack: Ack) -> None:
        # Closing a form decides nothing: the pause keeps waiting.
        ack()


def _error_on_first_field(ack: Ack, body: dict[str, Any], message: str) -> None:
    view_blocks = dig(body, "view", "blocks")
    block_ids: list[str] = [
        str(b["block_id"])
        for b in view_blocks or []
        if isinstance(b, dict) and b.get("type") == "input" and isinstance(b.get("block_id"), str)
    ]
    target = block_ids[0] if block_ids else "_"
    ack(response_action="errors", errors={target: blocks.modal_error(message)})
