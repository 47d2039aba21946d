"""Modal submissions: the input form (validated by the engine, errors inline), the
reject-with-reason (or feedback) form and the edit-output form. Each: parse, validate
(reads only), then record the decision before the ack (``record_view_decision``); the inbox
worker calls ``Decider.decide``."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App

from bot import blocks
from bot.decisions import DecisionAction, DecisionResult
from bot.inbox import record_then_ack
from bot.kinds import InboxKind
from bot.listeners.payload import dig
from bot.middleware.dedupe import interaction_key
from bot.parts import Parts
from bot.service import Signoff

log = logging.getLogger("signoff.views")


def register(app: App, parts: Parts) -> None:
    """Register the modal listeners: a submission's ack shows its errors or closes the modal."""
    signoff, decider = parts.signoff, parts.decider

    @app.view(blocks.VIEW_INPUT)
    def on_input_submitted(ack: Ack, body: dict[str, Any]) -> None:
        user_id = dig(body, "user", "id")
        token = dig(body, "view", "private_metadata")
        state = dig(body, "view", "state", "values")
        if not isinstance(user_id, str) or not isinstance(state, dict):
            ack(response_action="errors", errors={"_": "malformed submission"})
            return
        # Validation inline and by reads only: nothing waits on Slack before the ack.
        loaded = decider.load_pause(token, user_id, cached_only=True)
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
        errors = decider.input_errors(req, values, user_id=user_id)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        record_view_decision(
            signoff,
            ack,
            body,
            action=DecisionAction.input,
            values=values,
            error_block=_first_block(body),
        )

    @app.view(blocks.VIEW_REJECT)
    def on_reject_submitted(ack: Ack, body: dict[str, Any]) -> None:
        user_id = dig(body, "user", "id")
        state = dig(body, "view", "state", "values")
        if not isinstance(user_id, str):
            ack(response_action="errors", errors={blocks.REASON_BLOCK: "malformed submission"})
            return
        reason = blocks.reject_reason(state if isinstance(state, dict) else {})
        _record_if_open(
            parts,
            ack,
            body,
            user_id=user_id,
            action=DecisionAction.reject,
            reason=reason,
            error_block=blocks.REASON_BLOCK,
        )

    @app.view(blocks.VIEW_EDIT_OUTPUT)
    def on_edit_submitted(ack: Ack, body: dict[str, Any]) -> None:
        user_id = dig(body, "user", "id")
        output = blocks.edited_output(dig(body, "view", "state", "values") or {})
        if not isinstance(user_id, str) or output is None:
            ack(response_action="errors", errors={blocks.OUTPUT_BLOCK: "malformed submission"})
            return
        _record_if_open(
            parts,
            ack,
            body,
            user_id=user_id,
            action=DecisionAction.edit,
            output=output,
            error_block=blocks.OUTPUT_BLOCK,
        )

    @app.view_closed(blocks.VIEW_INPUT)
    @app.view_closed(blocks.VIEW_REJECT)
    @app.view_closed(blocks.VIEW_EDIT_OUTPUT)
    def on_closed(ack: Ack, body: dict[str, Any]) -> None:
        # Closing a form decides nothing: the pause keeps waiting.
        ack()
        view_id = dig(body, "view", "id")
        if isinstance(view_id, str):
            # A database write: after the answer to Slack, not before it.
            signoff.executor.submit(signoff.forms.closed, view_id)


def _record_if_open(
    parts: Parts,
    ack: Ack,
    body: dict[str, Any],
    *,
    user_id: str,
    action: DecisionAction,
    error_block: str,
    **decide: Any,
) -> None:
    """Record a form's decision if its pause still waits for ``user_id`` (reads only, before
    the ack); otherwise the form shows why, under ``error_block``."""
    token = dig(body, "view", "private_metadata")
    loaded = parts.decider.load_pause(token, user_id, cached_only=True)
    if isinstance(loaded, DecisionResult):
        ack(response_action="errors", errors={error_block: blocks.modal_error(loaded.message)})
        return
    record_view_decision(parts.signoff, ack, body, action=action, error_block=error_block, **decide)


def record_view_decision(
    signoff: Signoff,
    ack: Ack,
    body: dict[str, Any],
    *,
    action: DecisionAction,
    error_block: str,
    **decide: Any,
) -> None:
    """A modal submission that decides, validated already: recorded, then acked (the modal
    closes); the inbox worker calls ``Decider.decide(token, user_id=..., action=action,
    **decide)``. Not recorded: the modal stays open with the error on ``error_block``."""
    user_id = dig(body, "user", "id")
    token = dig(body, "view", "private_metadata")
    view_id = dig(body, "view", "id")
    record_then_ack(
        signoff,
        ack,
        key=interaction_key(body),
        kind=InboxKind.decide,
        user_id=user_id if isinstance(user_id, str) else "",
        data={
            "decide": {"token": token, "action": action, **decide},
            "reply": {"channel": _channel_of(signoff, token)},
            # This form closes with its decision: the inbox worker forgets it before
            # deciding (no database write before the ack), so it gets no "decided" notice.
            "form": view_id if isinstance(view_id, str) else None,
        },
        surface="view",
        error_block=error_block,
    )


def _channel_of(signoff: Signoff, token: Any) -> str | None:
    pause = signoff.store.get_pause(token) if isinstance(token, str) else None
    return pause.channel_id or pause.channel if pause else None


def _first_block(body: dict[str, Any]) -> str:
    view_blocks = dig(body, "view", "blocks")
    block_ids: list[str] = [
        str(b["block_id"])
        for b in view_blocks or []
        if isinstance(b, dict) and b.get("type") == "input" and isinstance(b.get("block_id"), str)
    ]
    return block_ids[0] if block_ids else "_"


def _error_on_first_field(ack: Ack, body: dict[str, Any], message: str) -> None:
    ack(response_action="errors", errors={_first_block(body): blocks.modal_error(message)})
