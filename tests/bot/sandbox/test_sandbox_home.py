"""Direct messages and the App Home in the Web API fake, driven by a real slack_sdk WebClient:
``conversations.open`` then ``chat.postMessage`` into the DM, and ``views.publish`` of a Home
tab (created once, replaced after, its id kept and its hash changed), as Slack does."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox import (
    DEFAULT_BOT_USER_ID,
    SlackFakeServer,
    app_home_opened_event,
    event_callback_payload,
)

HOME = {
    "type": "home",
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Waiting for you*"}}],
}


def test_conversations_open_gives_one_dm_channel_the_bot_can_post_in(
    client: WebClient, fake: SlackFakeServer
) -> None:
    first = client.conversations_open(users="U0ALICE")["channel"]["id"]
    again = client.conversations_open(users="U0ALICE")["channel"]["id"]
    assert first == again and first.startswith("D")
    assert client.conversations_open(users="U0BOB")["channel"]["id"] != first
    posted = client.chat_postMessage(
        channel=first,
        text="needs you",
        metadata={"event_type": "signoff_post", "event_payload": {"key": "dm:r1:U0ALICE"}},
    )
    message = fake.state.message(first, posted["ts"])
    assert message is not None and message.user == DEFAULT_BOT_USER_ID
    assert message.metadata == {
        "event_type": "signoff_post",
        "event_payload": {"key": "dm:r1:U0ALICE"},
    }
    channel = fake.state.channel(first)
    assert channel is not None and channel.is_im
    assert set(channel.members) == {"U0ALICE", DEFAULT_BOT_USER_ID}
    with pytest.raises(SlackApiError) as info:
        client.conversations_open(users="U0NOBODY")
    assert info.value.response["error"] == "user_not_found"


def test_views_publish_creates_then_replaces_the_home_tab(
    client: WebClient, fake: SlackFakeServer
) -> None:
    assert fake.state.home_view("U0ALICE") is None
    first = client.views_publish(user_id="U0ALICE", view=HOME)["view"]
    assert first["type"] == "home" and first["id"].startswith("V")
    assert first["blocks"][0]["text"]["text"] == "*Waiting for you*"
    assert first["blocks"][0]["block_id"]  # Slack fills in the ids it needs
    changed = {**HOME, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Done"}}]}
    second = client.views_publish(user_id="U0ALICE", view=changed)["view"]
    assert second["id"] == first["id"] and second["hash"] != first["hash"]
    home = fake.state.home_view("U0ALICE")
    assert home is not None and home.blocks[0]["text"]["text"] == "Done"
    assert fake.state.home_view("U0BOB") is None, "one Home tab per user"
    assert fake.state.views() == [], "a Home tab is not a modal"
    assert [v.id for v in fake.state.views(kind="home")] == [first["id"]]


def test_views_publish_refuses_what_slack_refuses(client: WebClient, fake: SlackFakeServer) -> None:
    client.views_publish(user_id="U0ALICE", view=HOME)
    current = fake.state.home_view("U0ALICE")
    assert current is not None
    with pytest.raises(SlackApiError) as info:
        client.views_publish(user_id="U0ALICE", view=HOME, hash="1.stale")
    assert info.value.response["error"] == "hash_conflict"
    assert client.views_publish(user_id="U0ALICE", view=HOME, hash=current.hash)["ok"]
    for user, view in (
        ("U0NOBODY", HOME),
        ("U0ALICE", {**HOME, "type": "modal", "title": {"type": "plain_text", "text": "x"}}),
        ("U0ALICE", {"type": "home", "blocks": [{"type": "section"}]}),
    ):
        with pytest.raises(SlackApiError) as info:
            client.views_publish(user_id=user, view=view)
        assert info.value.response["error"] == "invalid_arguments", (user, view)


def test_app_home_opened_carries_the_published_view(
    client: WebClient, fake: SlackFakeServer
) -> None:
    before = app_home_opened_event(fake.state, user_id="U0ALICE")
    assert before["type"] == "app_home_opened" and before["tab"] == "home"
    assert before["channel"].startswith("D") and "view" not in before
    client.views_publish(user_id="U0ALICE", view=HOME)
    after = app_home_opened_event(fake.state, user_id="U0ALICE")
    assert after["view"]["type"] == "home" and after["channel"] == before["channel"]
    assert "view" not in app_home_opened_event(fake.state, user_id="U0ALICE", tab="messages")
    one, two = (event_callback_payload(fake.state, after) for _ in range(2))
    assert one["type"] == "event_callback" and one["event"] == after
    assert one["event_id"] != two["event_id"]


def test_conversations_history_is_newest_first_with_metadata_on_request(
    client: WebClient, fake: SlackFakeServer
) -> None:
    dm = client.conversations_open(users="U0ALICE")["channel"]["id"]
    keys = [f"k{i}" for i in range(3)]
    posted = [
        client.chat_postMessage(
            channel=dm, text=key, metadata={"event_type": "t", "event_payload": {"key": key}}
        )["ts"]
        for key in keys
    ]
    client.chat_postMessage(channel=dm, text="a reply", thread_ts=posted[0])
    plain = client.conversations_history(channel=dm)
    assert [m["ts"] for m in plain["messages"]] == posted[::-1], "top level, newest first"
    assert all("metadata" not in m for m in plain["messages"])
    first = client.conversations_history(channel=dm, limit=2, include_all_metadata=True)
    assert [m["metadata"]["event_payload"]["key"] for m in first["messages"]] == ["k2", "k1"]
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    rest = client.conversations_history(channel=dm, limit=2, cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["k0"] and rest["has_more"] is False
    secret = fake.state.add_channel("G0SECRET", "secret", members=["U0ALICE"], is_private=True)
    with pytest.raises(SlackApiError) as info:  # a private channel the bot is not in
        client.conversations_history(channel=secret.id)
    assert info.value.response["error"] == "channel_not_found"


def test_conversations_replies_is_the_thread_parent_first(client: WebClient) -> None:
    dm = client.conversations_open(users="U0ALICE")["channel"]["id"]
    parent = client.chat_postMessage(channel=dm, text="parent")["ts"]
    reply = client.chat_postMessage(
        channel=dm,
        text="reply",
        thread_ts=parent,
        metadata={"event_type": "t", "event_payload": {"key": "r"}},
    )["ts"]
    thread = client.conversations_replies(channel=dm, ts=parent, include_all_metadata=True)
    assert [m["ts"] for m in thread["messages"]] == [parent, reply]
    assert thread["messages"][1]["metadata"]["event_payload"] == {"key": "r"}
    with pytest.raises(SlackApiError) as info:
        client.conversations_replies(channel=dm, ts="1.000001")
    assert info.value.response["error"] == "thread_not_found"
