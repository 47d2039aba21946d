"""Modal submissions: the input form (validated by the engine, errors inline), the
reject-with-reason (or feedback) form and the edit-output form. Each: parse, validate
(reads only), call ``Signoff.decide``."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App

from bot import blocks
from bot.decisions import DecisionAction
from bot.listeners.payload import dig
from bot.service import DecisionResult, Signoff

log = logging.getLogger("signoff.views")


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
        _submit(
            signoff,
            ack,
            body,
            user_id=user_id,
            token=token,
            act=DecisionAction.input,
            values=values,
        )

    @app.view(blocks.VIEW_REJECT)
    def on_reject_submitted(ack: Ack, body: dict[str, Any]) -> None:
        user_id = dig(body, "user", "id")
        token = dig(body, "view", "private_metadata")
        state = dig(body, "view", "state", "values")
        if not isinstance(user_id, str):
            ack(response_action="errors", errors={blocks.REASON_BLOCK: "malformed submission"})
            return
        reason = blocks.reject_reason(state if isinstance(state, dict) else {})
        _submit(
            signoff,
            ack,
            body,
            user_id=user_id,
            token=token,
            act=DecisionAction.reject,
            reason=reason,
        )

    @app.view(blocks.VIEW_EDIT_OUTPUT)
    def on_edit_submitted(ack: Ack, body: dict[str, Any]) -> None:
        user_id = dig(body, "user", "id")
        token = dig(body, "view", "private_metadata")
        output = blocks.edited_output(dig(body, "view", "state", "values") or {})
        if not isinstance(user_id, str) or output is None:
            ack(response_action="errors", errors={blocks.OUTPUT_BLOCK: "malformed submission"})
            return
        _submit(
            signoff, ack, body, user_id=user_id, token=token, act=DecisionAction.edit, output=output
        )

    @app.view_closed(blocks.VIEW_INPUT)
    @app.view_closed(blocks.VIEW_REJECT)
    @app.view_closed(blocks.VIEW_EDIT_OUTPUT)
    def on_closed(ack: Ack, body: dict[str, Any]) -> None:
        # Closing a form decides nothing: the pause keeps waiting.
        ack()
        view_id = dig(body, "view", "id")
        if isinstance(view_id, str):
            signoff.forms.closed(view_id)


def _submit(
    signoff: Signoff,
    ack: Ack,
    body: dict[str, Any],
    *,
    user_id: str,
    token: Any,
    act: DecisionAction,
    **answer: Any,
) -> None:
    """Decide from a submitted form; its errors shown in the form, which then stays open."""
    view_id = dig(body, "view", "id")
    if isinstance(view_id, str):
        # This form closes with its decision: no "decided elsewhere" update for it.
        signoff.forms.closed(view_id)
    result = signoff.decide(token, user_id=user_id, action=act, **answer)
    if result.ok:
        ack()
        return
    if result.errors:
        ack(response_action="errors", errors=result.errors)
    else:
        _error_on_first_field(ack, body, result.message)
    pause = signoff.store.get_pause(token) if isinstance(token, str) else None
    if isinstance(view_id, str) and pause is not None and result.errors:
        signoff.forms.opened(pause.requirement_id, user_id, view_id)


def _error_on_first_field(ack: Ack, body: dict[str, Any], message: str) -> None:
    view_blocks = dig(body, "view", "blocks")
    block_ids: list[str] = [
        str(b["block_id"])
        for b in view_blocks or []
        if isinstance(b, dict) and b.get("type") == "input" and isinstance(b.get("block_id"), str)
    ]
    target = block_ids[0] if block_ids else "_"
    ack(response_action="errors", errors={target: blocks.modal_error(message)})
