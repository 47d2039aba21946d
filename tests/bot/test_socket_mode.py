"""Socket Mode requests get the same checks and metrics as HTTP ones.

Each request is dispatched the way ``slack_bolt.adapter.socket_mode`` does it: a
``SocketModeRequest`` (what the socket client hands the handler) through the adapter's own
``run_bolt_app``, which builds a ``BoltRequest(mode="socket_mode")`` and dispatches it on the
bot's Bolt app. Only the websocket is left out; Slack's side is the fake, over HTTP.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.request import SocketModeRequest

from bot import blocks
from bot.sandbox import DEFAULT_CHANNEL_ID, block_actions_payload, slash_command_form
from tests.bot.conftest import ALICE, BotHarness
from tests.bot.test_approval_flow import _start


def _socket(harness: BotHarness, kind: str, payload: dict[str, Any]) -> BoltResponse:
    request = SocketModeRequest(type=kind, envelope_id=str(uuid.uuid4()), payload=payload)
    return run_bolt_app(harness.runtime.bolt, request)


def _metric(harness: BotHarness, kind: str) -> float:
    for line in httpx.get(f"{harness.server.url}/metrics").text.splitlines():
        if line.startswith(f'signoff_ack_seconds_count{{kind="{kind}"}}'):
            return float(line.split()[-1])
    return 0.0


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"type": "view_submission", "user": {"id": ALICE}, "view": None},
        {"type": "block_actions", "user": {"id": ALICE}, "actions": []},
        {"type": "block_actions", "user": "U0", "actions": [{"action_id": 1}]},
        {"type": "event_callback", "event": _nested(200)},
        {"type": "nonsense", "user": {"id": ALICE}},
    ],
)
def test_malformed_socket_mode_payloads_are_refused(
    harness: BotHarness, payload: dict[str, Any]
) -> None:
    run_id = _start(harness, "approve_me")
    harness.pause_message("ship")
    kind = "events_api" if payload.get("type") == "event_callback" else "interactive"
    response = _socket(harness, kind, payload)
    assert response.status == 400, (payload, response.status, response.body)
    assert harness.runtime.db.get_run(run_id).is_paused
    assert harness.runtime.db.get_decisions(run_id) == []


def test_socket_mode_click_decides_and_is_measured(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    before = _metric(harness, "block_actions")
    payload = block_actions_payload(
        harness.state, user_id=ALICE, source=message, action_id=blocks.ACTION_APPROVE
    )
    response = _socket(harness, "interactive", payload)
    assert response.status == 200, response.body
    harness.wait_run(run_id, "completed")
    assert _metric(harness, "block_actions") == before + 1


def test_socket_mode_slash_command_is_answered_and_measured(harness: BotHarness) -> None:
    form = slash_command_form(
        harness.state,
        command="/signoff",
        text="help",
        user_id=ALICE,
        channel_id=DEFAULT_CHANNEL_ID,
    )
    response = _socket(harness, "slash_commands", dict(form))
    assert response.status == 200, response.body
    assert "/signoff run" in str(response.body)
    assert _metric(harness, "command") == 1
