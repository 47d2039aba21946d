"""Buttons on a pause message. A button that decides is recorded in the inbox, then acked
(``record_decision``); the inbox worker calls ``Decider.decide``. A button that opens a form
(a modal) acks, then opens it: a trigger_id dies after 3 seconds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View

from bot import blocks
from bot.decisions import DecisionAction, DecisionResult
from bot.inbox import record_then_ack
from bot.kinds import InboxKind
from bot.listeners.payload import dig
from bot.middleware.dedupe import first_delivery, interaction_key
from bot.parts import Parts
from bot.service import Signoff

log = logging.getLogger("signoff.actions")


def register(app: App, parts: Parts) -> None:
    """Register the button listeners of pause messages."""
    signoff = parts.signoff
    # Buttons that decide at once.
    app.action(blocks.ACTION_APPROVE)(_decider(signoff, DecisionAction.confirm))
    app.action(blocks.ACTION_REJECT)(_decider(signoff, DecisionAction.reject))
    app.action(blocks.ACTION_RETRY)(_decider(signoff, DecisionAction.retry))
    app.action(blocks.ACTION_SKIP)(_decider(signoff, DecisionAction.skip))
    # Buttons that open a form. decides=True: its submission decides, so it is kept up to
    # date if the pause is decided elsewhere while it is open.
    # Acked at once; the form opens in a lazy listener (see _opener).
    app.action(blocks.ACTION_PROVIDE_INPUT)(
        ack=_ack_only, lazy=[_opener(parts, blocks.input_modal, decides=True)]
    )
    app.action(blocks.ACTION_REJECT_WITH_REASON)(
        ack=_ack_only, lazy=[_opener(parts, blocks.reject_modal, decides=True)]
    )
    app.action(blocks.ACTION_EDIT_OUTPUT)(
        ack=_ack_only, lazy=[_opener(parts, blocks.edit_output_modal, decides=True)]
    )
    app.action(blocks.ACTION_VIEW_OUTPUT)(
        ack=_ack_only, lazy=[_opener(parts, blocks.output_modal, decides=False)]
    )

    @app.action(blocks.ACTION_CHOOSE_ROUTE)
    def on_choose_route(ack: Ack, body: dict[str, Any]) -> None:
        where = blocks.route_block_for(dig(body, "actions", 0, "block_id"))
        choices = blocks.route_selection(dig(body, "state", "values"), where)
        record_decision(signoff, ack, body, action=DecisionAction.select, choices=choices or [])

    @app.action(blocks.ACTION_ROUTE_CHOICE)
    def on_route_choice(ack: Ack) -> None:
        # Picking a route decides nothing: Slack keeps the pick in the message's state and
        # sends it with the Approve click.
        ack()


def _decider(signoff: Signoff, act: DecisionAction) -> Callable[..., None]:
    def on_click(ack: Ack, body: dict[str, Any]) -> None:
        record_decision(signoff, ack, body, action=act)

    return on_click


def _ack_only(ack: Ack) -> None:
    ack()


def _opener(
    parts: Parts, build: Callable[[blocks.PauseContext], View], *, decides: bool
) -> Callable[..., None]:
    """The lazy listener of a button that opens a form: it runs after the ack, in its own
    thread (not holding the answer to Slack), within the trigger_id's 3 seconds."""

    def open_form(body: dict[str, Any], client: WebClient) -> None:
        if first_delivery(parts.signoff, body):
            _open_modal(parts, body, client, build, decides)

    return open_form


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
    signoff: Signoff, ack: Ack, body: dict[str, Any], *, action: DecisionAction, **decide: Any
) -> None:
    """A button that decides: recorded, then acked; the inbox worker calls
    ``Decider.decide(token, user_id=..., action=action, **decide)`` and tells the person
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
        kind=InboxKind.decide,
        user_id=user_id,
        data={
            "decide": {"token": token, "action": action, **decide},
            "reply": {"channel": channel, "thread_ts": _thread_of(body)},
        },
        surface="action",
    )


def _open_modal(
    parts: Parts,
    body: dict[str, Any],
    client: WebClient,
    build: Callable[[blocks.PauseContext], View],
    decides: bool,
) -> None:
    user_id, channel, token = _who(body)
    trigger_id = dig(body, "trigger_id")
    if not isinstance(user_id, str) or not isinstance(trigger_id, str):
        log.warning("block_actions without user or trigger_id; ignored")
        return
    loaded = parts.decider.load_pause(token, user_id)
    if isinstance(loaded, DecisionResult):
        parts.teller.tell(
            channel=channel, user_id=user_id, text=loaded.message, thread_ts=_thread_of(body)
        )
        return
    _pause, route, run, req = loaded
    context = parts.queries.pause_context(route, run, req, with_root_link=False)
    try:
        response = client.views_open(trigger_id=trigger_id, view=build(context))
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        parts.teller.tell(
            channel=channel,
            user_id=user_id,
            text="Could not open the form (Slack said "
            f"`{blocks.escape(exc.response.get('error'))}`); please click again.",
            thread_ts=_thread_of(body),
        )
        return
    view_id = dig(response.data, "view", "id")
    if decides and isinstance(view_id, str):
        parts.signoff.forms.opened(req.requirement_id, user_id, view_id)
        parts.decider.form_opened(run.run_id, req)
