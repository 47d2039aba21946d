"""The sandbox page's server side, over real HTTP and without a browser: what the page reads,
and that every interaction reaches the (small bolt) bot as a signed request whose answer is
applied the way Slack applies it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bot.sandbox import BackgroundServer, SlackFakeServer, WorkspaceState
from bot.sandbox.page import SLACKBOT_USER_ID, SandboxPage

from .conftest import SIGNING_SECRET, Bot


@pytest.fixture(scope="module")
def page_stack(fake_server: SlackFakeServer, bot_server: Bot) -> Iterator[tuple[SandboxPage, str]]:
    page = SandboxPage(fake_server, signing_secret=SIGNING_SECRET, bot_url=bot_server.url)
    app = Starlette()
    page.install(app)
    with BackgroundServer(app, name="sandbox-page") as server:
        yield page, server.url
        page.close()


@pytest.fixture
def page(page_stack: tuple[SandboxPage, str], fake: SlackFakeServer, bot: Bot) -> SandboxPage:
    stack_page, _ = page_stack
    stack_page.bot_url = bot.url
    return stack_page


@pytest.fixture
def http(page_stack: tuple[SandboxPage, str], page: SandboxPage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=page_stack[1], timeout=10) as client:
        yield client


def post(http: httpx.Client, path: str, **body: Any) -> dict[str, Any]:
    response = http.post(f"/page/api/{path}", json={"user": "U0ALICE", **body})
    data = response.json()
    assert isinstance(data, dict)
    data["http_status"] = response.status_code
    return data


def seen_by(http: httpx.Client, user: str) -> dict[str, Any]:
    response = http.get("/page/api/state", params={"user": user})
    assert response.status_code == 200
    data = response.json()
    assert isinstance(data, dict)
    return data


def text_of(state: WorkspaceState, ts: str) -> str | None:
    message = state.message("C0SIGNOFF", ts)
    return message.text if message else None


def texts(state: dict[str, Any], channel: str = "C0SIGNOFF") -> list[str]:
    return [m["text"] for m in state["messages"][channel]]


def test_page_and_its_files_are_served(http: httpx.Client) -> None:
    index = http.get("/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    for asset in ("sandbox.js", "blockkit.js", "mrkdwn.js", "sandbox.css"):
        assert f"/static/{asset}" in index.text
        response = http.get(f"/static/{asset}")
        assert response.status_code == 200 and len(response.content) > 1000, asset


def test_state_shows_what_one_person_sees(http: httpx.Client, fake: SlackFakeServer) -> None:
    fake.state.post_message("C0SIGNOFF", text="for everyone", user="U0BOB")
    fake.state.post_message(
        "C0SIGNOFF", text="alice only", user="U0SIGNOFFBOT", ephemeral_for="U0ALICE"
    )
    alice, bob = seen_by(http, "U0ALICE"), seen_by(http, "U0BOB")
    assert {c["name"] for c in alice["channels"]} == {"signoff", "general"}
    assert alice["people"] == ["U0ALICE", "U0BOB", "U0CAROL"]
    assert texts(alice) == ["for everyone", "alice only"]
    assert [m["ephemeral"] for m in alice["messages"]["C0SIGNOFF"]] == [False, True]
    assert texts(bob) == ["for everyone"]
    assert alice["view"] is None and alice["bot_url"].endswith("/slack/events")
    assert http.get("/page/api/state", params={"user": "U0NOBODY"}).status_code == 404


def test_slash_command_and_button_reach_the_bot_signed(
    http: httpx.Client, fake: SlackFakeServer, bot: Bot
) -> None:
    assert post(http, "compose", channel="C0SIGNOFF", text="/signoff run deploy")["status"] == 200
    assert bot.seen[-1]["kind"] == "command"
    assert bot.seen[-1]["body"]["text"] == "run deploy"
    message = fake.state.wait_for(lambda s: s.last_message("C0SIGNOFF"), what="approval")
    assert message.blocks[-1]["type"] == "actions"

    result = post(
        http, "action", channel="C0SIGNOFF", ts=message.ts, action_id="approve", block_id="decision"
    )
    assert result["ok"] and result["status"] == 200
    fake.state.wait_for(
        lambda s: text_of(s, message.ts) == "approve:deploy by <@U0ALICE>",
        what="message replaced",
    )
    assert bot.seen[-1]["kind"] == "approve"
    assert bot.seen[-1]["body"]["user"]["id"] == "U0ALICE"


def test_command_ack_text_is_ephemeral(http: httpx.Client) -> None:
    post(http, "compose", channel="C0SIGNOFF", text="/signoff ack the thing")
    assert texts(seen_by(http, "U0ALICE"))[-1] == "Working on the thing"
    assert texts(seen_by(http, "U0BOB")) == []


def test_unknown_command_and_plain_messages(http: httpx.Client, bot: Bot) -> None:
    assert post(http, "compose", channel="C0GENERAL", text="/deploy now")["ok"]
    assert bot.seen == []  # never sent: the app has no such command
    msg = seen_by(http, "U0ALICE")["messages"]["C0GENERAL"][-1]
    assert msg["user"] == SLACKBOT_USER_ID and "is not a valid command" in msg["text"]

    post(http, "compose", channel="C0GENERAL", text="a <b>bold</b> claim & more")
    msg = seen_by(http, "U0BOB")["messages"]["C0GENERAL"][-1]
    assert msg["user"] == "U0ALICE"
    assert msg["text"] == "a &lt;b&gt;bold&lt;/b&gt; claim &amp; more"  # as Slack stores it
    assert post(http, "compose", channel="C0GENERAL", text="  ")["http_status"] == 400
    assert post(http, "compose", channel="C0NOPE", text="hi")["http_status"] == 400
    assert post(http, "compose", user="U0SIGNOFFBOT", text="hi")["http_status"] == 400


def test_modal_errors_then_submission_then_close(
    http: httpx.Client, fake: SlackFakeServer, bot: Bot
) -> None:
    post(http, "compose", channel="C0SIGNOFF", text="/signoff run deploy")
    message = fake.state.wait_for(lambda s: s.last_message("C0SIGNOFF"), what="approval")
    post(http, "action", channel="C0SIGNOFF", ts=message.ts, action_id="reject")
    view = fake.state.wait_for(lambda s: s.top_view("U0ALICE"), what="modal")
    assert seen_by(http, "U0ALICE")["view"]["id"] == view.id
    assert seen_by(http, "U0BOB")["view"] is None

    bad = post(http, "submit", view_id=view.id, values={"reason_block": "no"})
    assert bad["response_action"] == "errors"
    assert bad["errors"] == {"reason_block": "Say a bit more"}
    assert seen_by(http, "U0ALICE")["view"]["errors"] == {"reason_block": "Say a bit more"}

    missing = post(http, "submit", view_id=view.id, values={"reason_block": None})
    assert missing["http_status"] == 400 and "required" in missing["error"]

    good = post(
        http,
        "submit",
        view_id=view.id,
        values={"reason_block": "flaky tests", "severity_block": "high"},
    )
    assert good["ok"] and "response_action" not in good
    assert seen_by(http, "U0ALICE")["view"] is None
    submitted = bot.seen[-1]["view"]["state"]["values"]
    assert submitted["severity_block"]["severity"]["selected_option"]["value"] == "high"
    fake.state.wait_for(
        lambda s: text_of(s, message.ts) == "Rejected: flaky tests",
        what="message updated",
    )

    # Close: notify_on_close, so the bot hears view_closed.
    post(http, "compose", channel="C0SIGNOFF", text="/signoff run again")
    message = fake.state.wait_for(
        lambda s: next((m for m in s.messages("C0SIGNOFF")[::-1] if m.blocks), None),
        what="second approval",
    )
    post(http, "action", channel="C0SIGNOFF", ts=message.ts, action_id="reject")
    view = fake.state.wait_for(lambda s: s.top_view("U0ALICE"), what="second modal")
    assert post(http, "close", view_id=view.id)["status"] == 200
    assert bot.seen[-1]["kind"] == "closed"
    assert post(http, "submit", view_id=view.id, values={})["http_status"] == 409


def test_clicks_on_what_is_gone_or_not_there(http: httpx.Client, fake: SlackFakeServer) -> None:
    gone = post(http, "action", channel="C0SIGNOFF", ts="1.000001", action_id="approve")
    assert gone["http_status"] == 404
    message = fake.state.post_message("C0SIGNOFF", text="no buttons", user="U0SIGNOFFBOT")
    missing = post(http, "action", channel="C0SIGNOFF", ts=message.ts, action_id="approve")
    assert missing["http_status"] == 409 and "no element" in missing["error"]


def test_a_click_is_sent_as_the_page_showed_the_message(
    http: httpx.Client, fake: SlackFakeServer, bot: Bot
) -> None:
    """A confirm dialog left open while the message changed: Slack's client still sends the
    click on the button the person saw, and the bot answers it (no "no element" toast)."""
    post(http, "compose", channel="C0SIGNOFF", text="/signoff run stale")
    message = fake.state.wait_for(lambda s: s.last_message("C0SIGNOFF"), what="approval")
    shown = message.blocks
    fake.state.update_message("C0SIGNOFF", message.ts, text="decided elsewhere", blocks=[])
    result = post(
        http,
        "action",
        channel="C0SIGNOFF",
        ts=message.ts,
        action_id="approve",
        block_id="decision",
        shown_blocks=shown,
    )
    assert result["ok"] and result["status"] == 200, result
    assert bot.seen[-1]["kind"] == "approve"
    assert bot.seen[-1]["body"]["message"]["blocks"] == shown
    bad = post(http, "action", channel="C0SIGNOFF", ts=message.ts, action_id="x", shown_blocks=3)
    assert bad["http_status"] == 400


def test_bot_down_or_not_started(http: httpx.Client, page: SandboxPage) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    page.bot_url = f"http://127.0.0.1:{closed_port}/slack/events"
    result = post(http, "compose", channel="C0SIGNOFF", text="/signoff help")
    assert result["ok"] and result["error"] == "dispatch_failed"
    last = seen_by(http, "U0ALICE")["messages"]["C0SIGNOFF"][-1]
    assert last["text"] == '/signoff failed with the error "dispatch_failed"'

    page.bot_url = None
    result = post(http, "compose", channel="C0SIGNOFF", text="/signoff help")
    assert result["http_status"] == 503


def test_dismiss_only_own_ephemerals(http: httpx.Client, fake: SlackFakeServer) -> None:
    mine = fake.state.post_message("C0SIGNOFF", text="psst", ephemeral_for="U0ALICE")
    public = fake.state.post_message("C0SIGNOFF", text="hello", user="U0BOB")
    assert post(http, "dismiss", channel="C0SIGNOFF", ts=public.ts)["http_status"] == 404
    assert (
        post(http, "dismiss", user="U0BOB", channel="C0SIGNOFF", ts=mine.ts)["http_status"] == 404
    )
    assert post(http, "dismiss", channel="C0SIGNOFF", ts=mine.ts)["ok"]
    assert texts(seen_by(http, "U0ALICE")) == ["hello"]


def test_permalinks_open_the_page_at_the_message(http: httpx.Client) -> None:
    response = http.get("/archives/C0SIGNOFF/p1764000000000123")
    assert response.status_code == 302
    assert response.headers["location"] == "/?channel=C0SIGNOFF&ts=1764000000.000123"


def test_event_stream_tells_the_page_about_changes(
    page_stack: tuple[SandboxPage, str], fake: SlackFakeServer, page: SandboxPage
) -> None:
    with (
        httpx.Client(base_url=page_stack[1], timeout=10) as client,
        client.stream("GET", "/page/api/events") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        first = _next_data(lines)
        fake.state.issue_trigger("U0ALICE")  # quiet: nothing a person sees
        posted = fake.state.post_message("C0SIGNOFF", text="news", user="U0BOB")
        assert posted.ts
        second = _next_data(lines)
        assert second["seq"] > first["seq"]
        assert second["seq"] == fake.state.seq


def _next_data(lines: Iterator[str]) -> dict[str, Any]:
    for line in lines:
        if line.startswith("data: "):
            data = json.loads(line[len("data: ") :])
            assert isinstance(data, dict)
            return data
    raise AssertionError("stream ended")


def test_people_are_found_by_the_names_the_readme_uses(http: httpx.Client) -> None:
    for who in ("alice", "@alice", "Alice", "Alice Approver", "U0ALICE"):
        assert seen_by(http, who)["me"] == "U0ALICE", who
    unknown = http.get("/page/api/state", params={"user": "zed"})
    assert unknown.status_code == 404
    error = unknown.json()["error"]
    assert "zed" in error and "alice" in error and "bob" in error
    composed = http.post(
        "/page/api/compose", json={"user": "bob", "channel": "C0GENERAL", "text": "hi"}
    )
    assert composed.json()["ok"], composed.text


def test_the_home_tab_is_opened_published_and_clicked(
    http: httpx.Client, fake: SlackFakeServer, bot: Bot
) -> None:
    assert seen_by(http, "U0ALICE")["home"] is None
    assert post(http, "home")["status"] == 200
    home = fake.state.wait_for(lambda s: s.home_view("U0ALICE"), what="home published")
    event = next(e["event"] for e in bot.seen if e["kind"] == "home")  # seen before publishing
    assert event["type"] == "app_home_opened" and event["tab"] == "home"
    shown = seen_by(http, "U0ALICE")["home"]
    assert shown["id"] == home.id and shown["payload"]["blocks"][0]["type"] == "header"
    assert seen_by(http, "U0BOB")["home"] is None, "each person has their own Home tab"
    # A button in the Home tab is a block_actions from the view, as Slack sends it.
    clicked = post(http, "action", view_id=home.id, action_id="home_approve", block_id="decision")
    assert clicked["status"] == 200
    approve = next(e["body"] for e in bot.seen if e["kind"] == "home_approve")
    assert approve["container"] == {"type": "view", "view_id": home.id}
    assert approve["view"]["type"] == "home"
