"""Every request is verified; malformed or forged requests change nothing."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import httpx
import pytest

from bot import blocks
from bot.sandbox import block_actions_payload, interactive_body, send_signed, signed_headers
from tests.bot.conftest import ALICE, SECRET, BotHarness
from tests.bot.test_approval_flow import _start


def test_bad_signature_is_401(harness: BotHarness) -> None:
    response = harness.actor(ALICE).slash("/signoff", "run approve_me", signature="v0=deadbeef")
    assert response.status_code == 401
    assert harness.runtime.db.list_runs() == []


def test_replayed_old_timestamp_is_401(harness: BotHarness) -> None:
    response = harness.actor(ALICE).slash(
        "/signoff", "run approve_me", timestamp=int(time.time()) - 600
    )
    assert response.status_code == 401
    assert harness.runtime.db.list_runs() == []


def test_unsigned_request_is_401(harness: BotHarness) -> None:
    response = httpx.post(harness.url, content="command=%2Fsignoff&text=list")
    assert response.status_code == 401


def _post_signed(harness: BotHarness, body: str) -> httpx.Response:
    headers = signed_headers(body, SECRET)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return httpx.post(harness.url, content=body, headers=headers)


def test_malformed_payloads_get_4xx_and_change_nothing(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me")
    harness.pause_message("ship")
    for body in (
        "payload=notjson",
        "payload=%5B1%2C2%5D",
        "",
        "payload=%7B%7D",
        "payload=" + json.dumps({"type": "block_actions"}),
        "payload=" + json.dumps({"type": "no_such_type", "user": {"id": ALICE}}),
    ):
        response = _post_signed(harness, body)
        assert 400 <= response.status_code < 500, (body, response.status_code)
    assert harness.runtime.db.get_run(run_id).is_paused


def test_forged_button_value_changes_nothing(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    payload = block_actions_payload(
        harness.state, user_id=ALICE, source=message, action_id=blocks.ACTION_APPROVE
    )
    for forged, status in (
        ("0" * 32, 200),
        ("x" * 5000, 200),
        (None, 200),
        ({"run_id": run_id}, 400),
        (["x"], 400),
    ):
        payload["actions"][0]["value"] = forged
        payload["actions"][0]["action_ts"] = str(time.time())
        response = send_signed(harness.url, interactive_body(payload), signing_secret=SECRET)
        # A well-shaped click with an unknown token is acked and the person told;
        # a value of the wrong shape is refused outright. Neither decides anything.
        assert response.status_code == status, forged
    told = harness.wait(
        lambda s: [m for m in s.messages(message.channel) if m.ephemeral_for == ALICE],
        "told unknown",
    )
    assert "unknown" in told[0].text
    assert harness.runtime.db.get_run(run_id).is_paused
    assert harness.runtime.db.get_decisions(run_id) == []


def test_healthz(harness: BotHarness) -> None:
    response = httpx.get(f"{harness.server.url}/healthz")
    assert response.status_code == 200 and response.json()["ok"] is True


def test_metrics_in_prometheus_format(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    text = httpx.get(f"{harness.server.url}/metrics").text
    assert "signoff_pending_approvals 1.0" in text
    harness.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run_id, "completed")
    text = httpx.get(f"{harness.server.url}/metrics").text
    assert 'signoff_decisions_total{outcome="confirmed"} 1.0' in text
    assert "signoff_pending_approvals 0.0" in text
    assert 'signoff_ack_seconds_count{kind="block_actions"} 1.0' in text
    assert 'signoff_outbox_items{state="sent"}' in text


def test_tokens_and_secrets_never_reach_the_logs(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    harness.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run_id, "completed")
    harness.fake.rate_limit_next("chat.postMessage", retry_after=1)
    _start(harness, "approve_me")  # a logged Slack error too
    harness.wait(lambda s: any(c.status == 429 for c in s.calls("chat.postMessage")), "429")
    assert caplog.records  # there was logging to look at
    text = caplog.text
    assert harness.state.bot_token not in text
    assert SECRET not in text


def test_old_dedupe_keys_are_forgotten_but_recent_ones_kept(harness: BotHarness) -> None:
    store, clock = harness.runtime.signoff.store, harness.clock
    assert store.first_time_seen("action:old", now=clock.now())
    clock.advance(timedelta(hours=2))
    assert store.first_time_seen("action:recent", now=clock.now())
    harness.runtime.signoff.forget_old_requests()
    assert store.first_time_seen("action:old", now=clock.now())  # pruned: new again
    assert not store.first_time_seen("action:recent", now=clock.now())  # still remembered
