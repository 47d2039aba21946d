"""response_url posts, wait_for and listener events."""

from __future__ import annotations

import threading

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bot.sandbox import DEFAULT_CHANNEL_ID, ChangeEvent, SlackFakeServer, WorkspaceState


def test_response_url_in_channel_and_ephemeral(fake: SlackFakeServer) -> None:
    state = fake.state
    rurl = state.issue_response_url(DEFAULT_CHANNEL_ID, "U0ALICE")
    assert rurl.url.startswith(fake.base_url + "/response/")
    assert (
        WebhookClient(rurl.url).send(text="for everyone", response_type="in_channel").status_code
        == 200
    )
    assert WebhookClient(rurl.url).send(text="just for you").status_code == 200
    public, private = state.messages(DEFAULT_CHANNEL_ID)
    assert (public.text, public.ephemeral_for) == ("for everyone", None)
    assert (private.text, private.ephemeral_for) == ("just for you", "U0ALICE")
    assert [p.applied for p in state.response_posts(rurl.id)] == ["posted", "ephemeral"]
    assert state.messages(DEFAULT_CHANNEL_ID, visible_to="U0BOB") == [public]


def test_response_url_replace_and_delete_original(client: WebClient, fake: SlackFakeServer) -> None:
    state = fake.state
    ts = client.chat_postMessage(
        channel=DEFAULT_CHANNEL_ID,
        text="Approve?",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Approve?"}}],
    )["ts"]
    rurl = state.issue_response_url(DEFAULT_CHANNEL_ID, "U0ALICE", message_ts=ts)
    resp = httpx.post(rurl.url, json={"replace_original": True, "text": "Approved"})
    assert resp.json() == {"ok": True}
    replaced = state.message(DEFAULT_CHANNEL_ID, ts)
    assert replaced is not None and replaced.text == "Approved" and replaced.blocks == []
    assert replaced.edited
    httpx.post(rurl.url, json={"delete_original": True})
    assert state.message(DEFAULT_CHANNEL_ID, ts) is None
    assert [p.applied for p in state.response_posts()] == ["replaced", "deleted"]
    assert [c.method for c in state.calls()][-2:] == ["response_url", "response_url"]


def test_response_url_errors(fake: SlackFakeServer) -> None:
    rurl = fake.state.issue_response_url(DEFAULT_CHANNEL_ID, "U0ALICE")
    assert httpx.post(f"{fake.base_url}/response/RNOPE", json={"text": "x"}).status_code == 404
    bad = httpx.post(
        rurl.url,
        json={"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
    )
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_blocks")
    for i in range(5):
        assert httpx.post(rurl.url, json={"text": str(i)}).status_code == 200
    used_up = httpx.post(rurl.url, json={"text": "sixth"})
    assert (used_up.status_code, used_up.json()["error"]) == (404, "expired_url")
    fake.set_down(True)
    assert httpx.post(rurl.url, json={"text": "x"}).status_code == 503


def test_wait_for_wakes_on_mutation(client: WebClient, fake: SlackFakeServer) -> None:
    timer = threading.Timer(0.05, lambda: client.chat_postMessage(channel="#signoff", text="late"))
    timer.start()
    message = fake.state.wait_for(lambda s: s.last_message(DEFAULT_CHANNEL_ID), timeout=5)
    timer.join()
    assert message.text == "late"


def test_wait_for_timeout_describes_recent_calls(client: WebClient, fake: SlackFakeServer) -> None:
    client.auth_test()
    fake.fail_next("chat.postMessage", error="is_archived")
    with pytest.raises(Exception):  # noqa: B017 - the SlackApiError is not what's tested here
        client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x")
    with pytest.raises(TimeoutError) as err:
        fake.state.wait_for(lambda s: s.views(), timeout=0.05, what="a modal")
    message = str(err.value)
    assert "a modal not met within 0.05s" in message
    assert "auth.test -> 200 ok" in message
    assert "chat.postMessage -> 200 error=is_archived" in message


def test_listener_gets_change_events_until_unsubscribed(
    client: WebClient, fake: SlackFakeServer
) -> None:
    events: list[ChangeEvent] = []
    unsubscribe = fake.state.add_listener(events.append)
    ts = client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="hi")["ts"]
    client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=ts, text="hello")
    kinds = [(e.kind, e.channel, e.ts) for e in events if e.kind.startswith("message.")]
    assert kinds == [
        ("message.posted", DEFAULT_CHANNEL_ID, ts),
        ("message.updated", DEFAULT_CHANNEL_ID, ts),
    ]
    assert [e.method for e in events if e.kind == "api.call"] == [
        "chat.postMessage",
        "chat.update",
    ]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and fake.state.events_since(seqs[0])[-1].seq == seqs[-1]
    unsubscribe()
    client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="unseen")
    assert len([e for e in events if e.kind == "message.posted"]) == 1


def test_a_failing_listener_does_not_break_the_api(
    client: WebClient, fake: SlackFakeServer
) -> None:
    def broken(event: ChangeEvent) -> None:
        raise RuntimeError("page crashed")

    fake.state.add_listener(broken)
    assert client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="still works")["ok"]


def test_snapshot_is_plain_data_for_a_page(client: WebClient, fake: SlackFakeServer) -> None:
    client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="hi")
    snap = fake.state.snapshot()
    channel = next(c for c in snap["channels"] if c["id"] == DEFAULT_CHANNEL_ID)
    assert channel["name"] == "signoff"
    assert [m["text"] for m in channel["messages"]] == ["hi"]
    assert snap["seq"] == fake.state.seq


def test_state_getters_return_copies() -> None:
    state = WorkspaceState()
    message = state.post_message(DEFAULT_CHANNEL_ID, text="x", blocks=[{"type": "divider"}])
    message.blocks.append({"type": "divider"})
    stored = state.message(DEFAULT_CHANNEL_ID, message.ts)
    assert stored is not None and len(stored.blocks) == 1
