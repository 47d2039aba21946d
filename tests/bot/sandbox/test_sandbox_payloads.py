"""Signed requests towards a bot: signature format, and a real bolt app driven end to end."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sandbox import (
    DEFAULT_CHANNEL_ID,
    BackgroundServer,
    Message,
    SlackActor,
    SlackFakeServer,
    WorkspaceState,
    compute_signature,
    signed_headers,
    slash_command_form,
    view_state_values,
)

SECRET = "sandbox-signing-secret"  # same as conftest.SIGNING_SECRET


def edited(message: Message) -> Callable[[WorkspaceState], Message | None]:
    """wait_for predicate: the message once it has been edited."""

    def check(state: WorkspaceState) -> Message | None:
        current = state.message(message.channel, message.ts)
        return current if current is not None and current.edited else None

    return check


def test_signature_matches_slack_sdk_verifier(fake: SlackFakeServer) -> None:
    form = slash_command_form(
        fake.state,
        command="/signoff",
        text="run x",
        user_id="U0ALICE",
        channel_id=DEFAULT_CHANNEL_ID,
    )
    body = httpx.QueryParams(form).__str__()
    headers = signed_headers(body, SECRET)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, headers)
    assert headers["X-Slack-Signature"] == verifier.generate_signature(
        timestamp=headers["X-Slack-Request-Timestamp"], body=body
    )
    assert not verifier.is_valid_request(body + "&x=1", headers)
    assert not verifier.is_valid_request(body, signed_headers(body, "other-secret"))
    stale = signed_headers(body, SECRET, timestamp=int(time.time()) - 6 * 60)
    assert not verifier.is_valid_request(body, stale)
    assert compute_signature(SECRET, 1, "b") == verifier.generate_signature(timestamp="1", body="b")


class Recorder:
    """A tiny HTTP endpoint that records what 'Slack' sent it."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        return Response(status_code=200)


def test_actor_sends_real_signed_slash_command_with_retry_headers(fake: SlackFakeServer) -> None:
    recorder = Recorder()
    app = Starlette(routes=[Route("/hook", recorder.handle, methods=["POST"])])
    with (
        BackgroundServer(app) as server,
        SlackActor(
            bot_url=f"{server.url}/hook",
            signing_secret=SECRET,
            fake=fake,
            user_id="U1",
            channel_id="C1",
        ) as actor,
    ):
        resp = actor.slash(
            "/signoff", "run data_pipeline", retry_num=1, retry_reason="http_timeout"
        )
    assert resp.status_code == 200
    headers, raw = recorder.requests[0]
    assert SignatureVerifier(SECRET).is_valid_request(raw, headers)
    assert headers["x-slack-retry-num"] == "1" and headers["x-slack-retry-reason"] == "http_timeout"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    assert form["command"] == "/signoff" and form["text"] == "run data_pipeline"
    assert form["user_id"] == "U1" and form["channel_id"] == "C1" and form["user_name"] == "u1"
    assert form["response_url"].startswith(fake.base_url + "/response/")
    trigger, error = fake.state.check_trigger(form["trigger_id"])
    assert trigger is not None and error is None and trigger.user_id == "U1"


def test_bolt_rejects_bad_signature_and_stale_timestamp(
    alice: SlackActor, bot: Any, fake: SlackFakeServer
) -> None:
    assert alice.slash("/signoff", "run a", signature="v0=" + "0" * 64).status_code == 401
    stale = int(time.time()) - 10 * 60  # a replayed request
    assert alice.slash("/signoff", "run a", timestamp=stale).status_code == 401
    assert bot.seen == []
    assert fake.state.calls("chat.postMessage") == []


def test_slash_command_then_click_approve_replaces_message(
    alice: SlackActor, bot: Any, fake: SlackFakeServer
) -> None:
    state = fake.state
    assert alice.slash("/signoff", "run data_pipeline").status_code == 200
    message = state.wait_for(lambda s: s.last_message(DEFAULT_CHANNEL_ID), what="approval post")
    assert message.blocks[1]["elements"][0]["value"] == "approve:data_pipeline"

    assert alice.click(message, action_id="approve").status_code == 200
    replaced = state.wait_for(edited(message), what="replace_original")
    assert replaced.text == "approve:data_pipeline by <@U0ALICE>"
    body = next(e["body"] for e in bot.seen if e["kind"] == "approve")
    # The bot saw the real stored message and the button's real ids.
    assert body["message"]["ts"] == message.ts
    assert body["message"]["blocks"] == message.blocks
    assert body["actions"][0]["block_id"] == "decision"
    assert body["container"] == {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": DEFAULT_CHANNEL_ID,
        "is_ephemeral": False,
    }
    assert state.response_posts()[0].applied == "replaced"


def test_slash_ack_text_shows_as_ephemeral(alice: SlackActor, fake: SlackFakeServer) -> None:
    resp = alice.slash("/signoff", "ack data_pipeline")
    assert resp.status_code == 200
    message = fake.state.last_message(DEFAULT_CHANNEL_ID)
    assert message is not None and message.text == "Working on data_pipeline"
    assert message.ephemeral_for == "U0ALICE"


def test_respond_in_channel_via_response_url(alice: SlackActor, fake: SlackFakeServer) -> None:
    alice.slash("/signoff", "respond deployed")
    message = fake.state.wait_for(lambda s: s.last_message(DEFAULT_CHANNEL_ID))
    assert (message.text, message.ephemeral_for) == ("Done: deployed", None)


def test_reject_opens_modal_errors_then_submit_updates_message(
    alice: SlackActor, bot: Any, fake: SlackFakeServer
) -> None:
    state = fake.state
    alice.slash("/signoff", "run billing")
    message = state.wait_for(lambda s: s.last_message(DEFAULT_CHANNEL_ID))
    alice.click(message, action_id="reject")
    view = state.wait_for(lambda s: s.top_view("U0ALICE"), what="reason modal")
    assert view.callback_id == "reject_reason"
    assert view.private_metadata == f"{DEFAULT_CHANNEL_ID}|{message.ts}"

    with pytest.raises(ValueError, match="required"):
        alice.submit(view, {})  # Slack's client refuses to submit an empty required input
    with pytest.raises(KeyError, match="typo"):
        alice.submit(view, {"typo": "x"})

    short = alice.submit(view, {"reason_block": "no"})
    assert short.json() == {
        "response_action": "errors",
        "errors": {"reason_block": "Say a bit more"},
    }
    still_open = state.view(view.id)
    assert still_open is not None and still_open.is_open
    assert still_open.errors == {"reason_block": "Say a bit more"}

    ok = alice.submit(view, {"reason": "numbers look off", "severity_block": {"severity": "high"}})
    assert ok.status_code == 200
    assert state.view(view.id).is_open is False
    updated = state.wait_for(edited(message), what="chat.update")
    assert updated.text == "Rejected: numbers look off" and updated.blocks == []
    submitted = next(e["view"] for e in bot.seen if e["kind"] == "submission")
    assert submitted["state"]["values"] == {
        "reason_block": {"reason": {"type": "plain_text_input", "value": "numbers look off"}},
        "severity_block": {
            "severity": {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": "High"},
                    "value": "high",
                },
            }
        },
    }
    assert submitted["hash"] == view.hash


def test_close_sends_view_closed_when_notify_on_close(
    alice: SlackActor, bot: Any, fake: SlackFakeServer
) -> None:
    alice.slash("/signoff", "run x")
    message = fake.state.wait_for(lambda s: s.last_message(DEFAULT_CHANNEL_ID))
    alice.click(message, action_id="reject")
    view = fake.state.wait_for(lambda s: s.top_view("U0ALICE"))
    resp = alice.close(view)
    assert resp is not None and resp.status_code == 200
    assert fake.state.top_view("U0ALICE") is None
    closed = next(e["body"] for e in bot.seen if e["kind"] == "closed")
    assert closed["type"] == "view_closed" and closed["view"]["id"] == view.id


def test_view_state_values_shapes(fake: SlackFakeServer) -> None:
    state = fake.state
    trigger = state.issue_trigger("U0ALICE")
    opt = [{"text": {"type": "plain_text", "text": t}, "value": t} for t in ("a", "b", "c")]
    view = state.open_view(
        trigger.id,
        {
            "type": "modal",
            "title": {"type": "plain_text", "text": "t"},
            "submit": {"type": "plain_text", "text": "s"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": "n",
                    "label": {"type": "plain_text", "text": "n"},
                    "element": {
                        "type": "number_input",
                        "action_id": "n",
                        "is_decimal_allowed": False,
                    },
                },
                {
                    "type": "input",
                    "block_id": "c",
                    "label": {"type": "plain_text", "text": "c"},
                    "element": {"type": "checkboxes", "action_id": "c", "options": opt},
                },
                {
                    "type": "input",
                    "block_id": "t",
                    "optional": True,
                    "label": {"type": "plain_text", "text": "t"},
                    "element": {
                        "type": "plain_text_input",
                        "action_id": "t",
                        "initial_value": "hi",
                    },
                },
                {
                    "type": "input",
                    "block_id": "u",
                    "optional": True,
                    "label": {"type": "plain_text", "text": "u"},
                    "element": {"type": "users_select", "action_id": "u"},
                },
            ],
        },
    )
    values = view_state_values(view, {"n": 3, "c": ["a", "c"]})
    assert values == {
        "n": {"n": {"type": "number_input", "value": "3"}},
        "c": {"c": {"type": "checkboxes", "selected_options": [opt[0], opt[2]]}},
        "t": {"t": {"type": "plain_text_input", "value": "hi"}},
        "u": {"u": {"type": "users_select", "selected_user": None}},
    }
    with pytest.raises(ValueError, match="no option"):
        view_state_values(view, {"c": ["z"]})


def test_interactive_body_is_form_encoded_json(fake: SlackFakeServer) -> None:
    recorder = Recorder()
    app = Starlette(routes=[Route("/hook", recorder.handle, methods=["POST"])])
    ts = fake.state.post_message(
        DEFAULT_CHANNEL_ID,
        text="q",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "go",
                        "text": {"type": "plain_text", "text": "Go"},
                    }
                ],
            }
        ],
        user=fake.state.bot_user_id,
        bot_id=fake.state.bot_id,
    ).ts
    message = fake.state.message(DEFAULT_CHANNEL_ID, ts)
    assert message is not None
    with (
        BackgroundServer(app) as server,
        SlackActor(
            bot_url=f"{server.url}/hook",
            signing_secret=SECRET,
            fake=fake,
            user_id="U0BOB",
            channel_id=DEFAULT_CHANNEL_ID,
        ) as bob,
    ):
        bob.click(message, action_id="go")
        with pytest.raises(LookupError, match="available"):
            bob.click(message, action_id="missing")
    _, raw = recorder.requests[0]
    payload = json.loads(parse_qs(raw.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"] == {
        "id": "U0BOB",
        "username": "bob",
        "name": "bob",
        "team_id": fake.state.team_id,
    }
    assert payload["actions"][0]["action_id"] == "go"
    assert "value" not in payload["actions"][0]  # a button without value sends none
    assert payload["actions"][0]["block_id"] == message.blocks[0]["block_id"]
