"""The Web API fake driven by a real slack_sdk WebClient over loopback HTTP."""

from __future__ import annotations

import re

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.sandbox import DEFAULT_BOT_USER_ID, DEFAULT_CHANNEL_ID, SlackFakeServer

TS_RE = re.compile(r"^\d{10}\.\d{6}$")


def test_server_context_manager_serves_on_a_free_port() -> None:
    with SlackFakeServer() as server:
        assert server.api_url == f"http://127.0.0.1:{server.port}/api/"
        assert server.port > 0
        resp = httpx.post(server.api_url + "auth.test", headers={"Authorization": "Bearer nope"})
        assert resp.json() == {"ok": False, "error": "invalid_auth"}
    with pytest.raises(httpx.ConnectError):
        httpx.post(server.api_url + "auth.test", timeout=1)


def test_auth_test_identifies_the_bot(client: WebClient, fake: SlackFakeServer) -> None:
    resp = client.auth_test()
    assert resp["user_id"] == DEFAULT_BOT_USER_ID
    assert resp["team_id"] == fake.state.team_id
    assert resp["bot_id"] == fake.state.bot_id


def test_post_update_ephemeral_and_thread_roundtrip(
    client: WebClient, fake: SlackFakeServer
) -> None:
    posted = client.chat_postMessage(
        channel="#signoff",
        text="hello",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}},
        ],
    )
    assert posted["channel"] == DEFAULT_CHANNEL_ID
    assert TS_RE.match(posted["ts"])
    assert posted["message"]["blocks"][0]["block_id"]  # Slack fills in missing block ids

    reply = client.chat_postMessage(
        channel=DEFAULT_CHANNEL_ID, text="in thread", thread_ts=posted["ts"]
    )
    assert reply["message"]["thread_ts"] == posted["ts"]

    updated = client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=posted["ts"], text="bye")
    assert updated["text"] == "bye"

    eph = client.chat_postEphemeral(channel=DEFAULT_CHANNEL_ID, user="U0ALICE", text="psst")
    assert TS_RE.match(eph["message_ts"])

    state = fake.state
    parent = state.message(DEFAULT_CHANNEL_ID, posted["ts"])
    assert parent is not None and parent.text == "bye" and parent.edited
    assert parent.blocks[0]["text"]["text"] == "*hello*"  # chat.update without blocks keeps them
    assert [m.text for m in state.thread(DEFAULT_CHANNEL_ID, posted["ts"])] == ["bye", "in thread"]
    assert state.message_json(parent)["reply_count"] == 1
    assert [m.text for m in state.messages(DEFAULT_CHANNEL_ID, visible_to="U0BOB")] == [
        "bye",
        "in thread",
    ]
    assert state.messages(DEFAULT_CHANNEL_ID, visible_to="U0ALICE")[-1].ephemeral_for == "U0ALICE"
    assert [c.method for c in state.calls()] == [
        "chat.postMessage",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
    ]
    assert state.last_call("chat.update").params == {
        "channel": DEFAULT_CHANNEL_ID,
        "ts": posted["ts"],
        "text": "bye",
    }


def test_update_unknown_ts_and_ephemeral_is_message_not_found(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel=DEFAULT_CHANNEL_ID, ts="1.000001", text="x")
    assert err.value.response["error"] == "message_not_found"
    eph = client.chat_postEphemeral(channel=DEFAULT_CHANNEL_ID, user="U0BOB", text="psst")
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=eph["message_ts"], text="x")
    assert err.value.response["error"] == "message_not_found"


def test_errors_for_channels_users_and_text(client: WebClient, fake: SlackFakeServer) -> None:
    cases = [
        (lambda: client.chat_postMessage(channel="C0NOPE", text="x"), "channel_not_found"),
        (lambda: client.chat_postMessage(channel="#nope", text="x"), "channel_not_found"),
        (
            lambda: client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x" * 40001),
            "msg_too_long",
        ),
        (
            lambda: client.chat_postEphemeral(channel=DEFAULT_CHANNEL_ID, user="U0NOPE", text="x"),
            "user_not_found",
        ),
        (lambda: client.users_info(user="U0NOPE"), "user_not_found"),
        (lambda: client.usergroups_users_list(usergroup="S0NOPE"), "no_such_subteam"),
        (lambda: client.conversations_info(channel="C0NOPE"), "channel_not_found"),
        (
            lambda: client.chat_getPermalink(channel=DEFAULT_CHANNEL_ID, message_ts="1.1"),
            "message_not_found",
        ),
    ]
    for call, expected in cases:
        with pytest.raises(SlackApiError) as err:
            call()
        assert err.value.response["error"] == expected
        assert err.value.response.status_code == 200  # Slack reports errors with HTTP 200
    # slack_sdk warns about the missing text; Slack itself refuses the message.
    with pytest.warns(UserWarning, match="text"), pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=DEFAULT_CHANNEL_ID)
    assert err.value.response["error"] == "no_text"
    fake.state.add_channel("C0QUIET", "quiet", members=["U0ALICE"])
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0QUIET", text="x")
    assert err.value.response["error"] == "not_in_channel"


def test_directory_methods(client: WebClient, fake: SlackFakeServer) -> None:
    assert client.users_info(user="U0ALICE")["user"]["name"] == "alice"
    assert client.usergroups_users_list(usergroup="S0APPROVERS")["users"] == ["U0ALICE", "U0BOB"]
    info = client.conversations_info(channel=DEFAULT_CHANNEL_ID)["channel"]
    assert info["name"] == "signoff" and info["is_member"] is True
    pages = [
        p["members"] for p in client.conversations_members(channel=DEFAULT_CHANNEL_ID, limit=2)
    ]
    assert pages == [[DEFAULT_BOT_USER_ID, "U0ALICE"], ["U0BOB", "U0CAROL"]]
    dm = client.chat_postMessage(channel="U0BOB", text="direct")
    assert dm["channel"].startswith("D")
    assert fake.state.channel(dm["channel"]).is_im


def test_permalink_points_at_the_sandbox(client: WebClient, fake: SlackFakeServer) -> None:
    ts = client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x")["ts"]
    link = client.chat_getPermalink(channel=DEFAULT_CHANNEL_ID, message_ts=ts)["permalink"]
    assert link == f"{fake.base_url}/archives/{DEFAULT_CHANNEL_ID}/p{ts.replace('.', '')}"


def test_auth_failures(fake: SlackFakeServer) -> None:
    with pytest.raises(SlackApiError) as err:
        fake.web_client(token="xoxb-wrong").chat_postMessage(channel="#signoff", text="x")
    assert err.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=fake.api_url).auth_test()
    assert err.value.response["error"] == "not_authed"
    assert [(c.token, c.error) for c in fake.state.calls()] == [
        ("xoxb-wrong", "invalid_auth"),
        (None, "not_authed"),
    ]


def test_form_encoded_body_with_json_string_blocks_and_token_param(fake: SlackFakeServer) -> None:
    resp = httpx.post(
        fake.api_url + "chat.postMessage",
        data={
            "token": fake.state.bot_token,
            "channel": DEFAULT_CHANNEL_ID,
            "text": "from a form",
            "blocks": '[{"type": "divider", "block_id": "d1"}]',
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["ok"] is True
    assert body["message"]["blocks"] == [{"type": "divider", "block_id": "d1"}]
    assert fake.state.last_call().params["blocks"] == [{"type": "divider", "block_id": "d1"}]
    bad = httpx.post(
        fake.api_url + "chat.postMessage",
        data={"token": fake.state.bot_token, "channel": DEFAULT_CHANNEL_ID, "blocks": "[nope"},
    )
    assert bad.json()["error"] == "invalid_blocks_format"


def test_unknown_method(fake: SlackFakeServer) -> None:
    with pytest.raises(SlackApiError) as err:
        fake.web_client().api_call("chat.teleport", json={"x": 1})
    assert err.value.response.data == {"ok": False, "error": "unknown_method"}


def test_fail_next_injects_errors_then_recovers(client: WebClient, fake: SlackFakeServer) -> None:
    fake.fail_next("chat.postMessage", error="is_archived", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x")
        assert err.value.response["error"] == "is_archived"
    assert client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x")["ok"] is True
    assert [c.ok for c in fake.state.calls("chat.postMessage")] == [False, False, True]


def test_rate_limit_answers_429_with_retry_after(client: WebClient, fake: SlackFakeServer) -> None:
    fake.rate_limit_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x")
    assert err.value.response.status_code == 429
    assert err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "7"
    assert fake.state.messages(DEFAULT_CHANNEL_ID) == []


def test_rate_limit_retry_handler_then_succeeds(
    fake: SlackFakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # slack_sdk sleeps Retry-After + random(); pin the jitter so the test stays fast.
    monkeypatch.setattr("slack_sdk.http_retry.builtin_handlers.random.random", lambda: 0.0)
    fake.rate_limit_next("chat.postMessage", retry_after=0, times=2)
    client = fake.web_client(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    resp = client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="eventually")
    assert resp["ok"] is True
    assert [c.status for c in fake.state.calls("chat.postMessage")] == [429, 429, 200]
    assert fake.state.last_message(DEFAULT_CHANNEL_ID).text == "eventually"


def test_set_down_answers_503_until_back_up(client: WebClient, fake: SlackFakeServer) -> None:
    fake.set_down(True)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x")
    assert err.value.response.status_code == 503
    with pytest.raises(SlackApiError):
        client.auth_test()
    fake.set_down(False)
    assert client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x")["ok"] is True


def test_ts_are_unique_and_monotonic_even_with_a_frozen_clock(
    clocked_fake: SlackFakeServer,
) -> None:
    client = clocked_fake.web_client()
    stamps = [
        client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text=str(i))["ts"] for i in range(5)
    ]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5
    assert stamps[0] == "1764000000.000000"
    assert stamps[4] == "1764000000.000004"
