"""Fixtures: one Slack fake and one bolt bot per test session; a fresh workspace per test.

Starting uvicorn costs ~0.2 s per server, so servers are shared and only the state is reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.adapter.starlette import SlackRequestHandler
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sandbox import (
    BackgroundServer,
    ManualClock,
    SlackActor,
    SlackFakeServer,
    WorkspaceState,
)

SIGNING_SECRET = "sandbox-signing-secret"


@pytest.fixture(scope="session")
def fake_server() -> Iterator[SlackFakeServer]:
    with SlackFakeServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: SlackFakeServer) -> SlackFakeServer:
    fake_server.reset()
    return fake_server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def clocked_fake(fake_server: SlackFakeServer, clock: ManualClock) -> SlackFakeServer:
    fake_server.reset(WorkspaceState(clock=clock))
    return fake_server


@pytest.fixture
def client(fake: SlackFakeServer) -> WebClient:
    return fake.web_client()


# ----------------------------------------------------------------------- a small bolt bot ----

APPROVAL_BLOCKS_TEXT = "Approve step *{step}*?"
REASON_VIEW: dict[str, Any] = {
    "type": "modal",
    "callback_id": "reject_reason",
    "notify_on_close": True,
    "title": {"type": "plain_text", "text": "Reject step"},
    "submit": {"type": "plain_text", "text": "Reject"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason_block",
            "label": {"type": "plain_text", "text": "Why?"},
            "element": {"type": "plain_text_input", "action_id": "reason"},
        },
        {
            "type": "input",
            "block_id": "severity_block",
            "optional": True,
            "label": {"type": "plain_text", "text": "Severity"},
            "element": {
                "type": "static_select",
                "action_id": "severity",
                "options": [
                    {"text": {"type": "plain_text", "text": "Low"}, "value": "low"},
                    {"text": {"type": "plain_text", "text": "High"}, "value": "high"},
                ],
            },
        },
    ],
}


def approval_blocks(step: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "section",
            "block_id": "question",
            "text": {"type": "mrkdwn", "text": APPROVAL_BLOCKS_TEXT.format(step=step)},
        },
        {
            "type": "actions",
            "block_id": "decision",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": f"approve:{step}",
                },
                {
                    "type": "button",
                    "action_id": "reject",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Reject"},
                    "value": f"reject:{step}",
                },
            ],
        },
    ]


def build_bolt_app(client: WebClient, seen: list[dict[str, Any]]) -> App:
    app = App(client=client, signing_secret=SIGNING_SECRET)

    @app.command("/signoff")
    def signoff(ack: Any, command: dict[str, Any], client: WebClient, respond: Any) -> None:
        seen.append({"kind": "command", "body": command})
        verb, _, rest = command["text"].partition(" ")
        if verb == "ack":
            ack(text=f"Working on {rest}")
            return
        ack()
        if verb == "run":
            client.chat_postMessage(
                channel=command["channel_id"],
                text=f"Approve step {rest}?",
                blocks=approval_blocks(rest),
            )
        elif verb == "respond":
            respond(text=f"Done: {rest}", response_type="in_channel")

    @app.action("approve")
    def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        ack()
        seen.append({"kind": "approve", "body": body})
        value = body["actions"][0]["value"]
        respond(replace_original=True, text=f"{value} by <@{body['user']['id']}>")

    @app.action("reject")
    def reject(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        seen.append({"kind": "reject", "body": body})
        view = dict(REASON_VIEW)
        view["private_metadata"] = f"{body['channel']['id']}|{body['message']['ts']}"
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view("reject_reason")
    def reason(ack: Any, view: dict[str, Any], client: WebClient) -> None:
        reason = view["state"]["values"]["reason_block"]["reason"]["value"]
        if len(reason) < 3:
            ack(response_action="errors", errors={"reason_block": "Say a bit more"})
            return
        ack()
        seen.append({"kind": "submission", "view": view})
        channel, ts = view["private_metadata"].split("|")
        client.chat_update(channel=channel, ts=ts, text=f"Rejected: {reason}", blocks=[])

    @app.view_closed("reject_reason")
    def closed(ack: Any, body: dict[str, Any]) -> None:
        ack()
        seen.append({"kind": "closed", "body": body})

    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        seen.append({"kind": "home", "event": event})
        client.views_publish(user_id=event["user"], view=HOME_VIEW)

    @app.action("home_approve")
    def home_approve(ack: Any, body: dict[str, Any]) -> None:
        seen.append({"kind": "home_approve", "body": body})  # before the ack the page waits for
        ack()

    return app


HOME_VIEW: dict[str, Any] = {
    "type": "home",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Waiting for you"}},
        {
            "type": "actions",
            "block_id": "decision",
            "elements": [
                {
                    "type": "button",
                    "action_id": "home_approve",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": "approve:home",
                }
            ],
        },
    ],
}


class Bot:
    def __init__(self, server: BackgroundServer, seen: list[dict[str, Any]]) -> None:
        self.server = server
        self.seen = seen

    @property
    def url(self) -> str:
        return f"{self.server.url}/slack/events"


@pytest.fixture(scope="session")
def bot_server(fake_server: SlackFakeServer) -> Iterator[Bot]:
    seen: list[dict[str, Any]] = []
    handler = SlackRequestHandler(build_bolt_app(fake_server.web_client(), seen))

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    app = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    with BackgroundServer(app, name="bolt-bot") as server:
        yield Bot(server, seen)


@pytest.fixture
def bot(bot_server: Bot, fake: SlackFakeServer) -> Bot:
    bot_server.seen.clear()
    return bot_server


@pytest.fixture
def alice(fake: SlackFakeServer, bot: Bot) -> Iterator[SlackActor]:
    with SlackActor(
        bot_url=bot.url,
        signing_secret=SIGNING_SECRET,
        fake=fake,
        user_id="U0ALICE",
        channel_id="C0SIGNOFF",
    ) as actor:
        yield actor
