"""Block Kit limits: refused over HTTP like Slack does, and checked one by one."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox import DEFAULT_CHANNEL_ID, SlackFakeServer, validate_blocks, validate_view


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def button(action_id: str = "b", text: str = "Go", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": plain(text), **extra}


def option(value: str, text: str = "opt") -> dict[str, Any]:
    return {"text": plain(text), "value": value}


def modal(**overrides: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "title": plain("Sign off"),
        "submit": plain("Submit"),
        "blocks": [{"type": "section", "text": mrkdwn("hi")}],
    }
    view.update(overrides)
    return view


def input_block(element: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "input", "label": plain("Label"), "element": element, **extra}


def test_51_blocks_refused_with_invalid_blocks(client: WebClient, fake: SlackFakeServer) -> None:
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(
            channel=DEFAULT_CHANNEL_ID, text="x", blocks=[{"type": "divider"}] * 51
        )
    body = err.value.response.data
    assert isinstance(body, dict)
    assert body["error"] == "invalid_blocks"
    assert body["errors"] == ["no more than 50 items allowed [json-pointer:/blocks]"]
    assert body["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    ]
    assert fake.state.messages() == []
    assert client.chat_postMessage(
        channel=DEFAULT_CHANNEL_ID, text="x", blocks=[{"type": "divider"}] * 50
    )["ok"]


def test_3001_char_section_refused_on_post_and_update(client: WebClient) -> None:
    long_section = [{"type": "section", "text": mrkdwn("x" * 3001)}]
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x", blocks=long_section)
    assert err.value.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    ts = client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="ok")["ts"]
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=ts, text="x", blocks=long_section)
    assert err.value.response["error"] == "invalid_blocks"


def test_25_char_modal_title_refused(client: WebClient, fake: SlackFakeServer) -> None:
    trigger = fake.state.issue_trigger("U0ALICE")
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=trigger.id, view=modal(title=plain("x" * 25)))
    # views.* report schema problems as invalid_arguments, like real Slack.
    assert err.value.response["error"] == "invalid_arguments"
    assert err.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]
    # A refused view does not use up the trigger.
    assert client.views_open(trigger_id=trigger.id, view=modal())["ok"]


BAD_MESSAGE_BLOCKS: list[tuple[str, list[dict[str, Any]], str]] = [
    (
        "unknown block type",
        [{"type": "carousel"}],
        "unsupported type: carousel [json-pointer:/blocks/0/type]",
    ),
    (
        "duplicate block_id",
        [{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}],
        "duplicate block_id: a [json-pointer:/blocks/1/block_id]",
    ),
    (
        "duplicate action_id",
        [{"type": "actions", "elements": [button("x"), button("x")]}],
        "duplicate action_id: x [json-pointer:/blocks/0/elements/1/action_id]",
    ),
    (
        "11 section fields",
        [{"type": "section", "fields": [mrkdwn("f")] * 11}],
        "no more than 10 items allowed [json-pointer:/blocks/0/fields]",
    ),
    (
        "2001-char field",
        [{"type": "section", "fields": [mrkdwn("f" * 2001)]}],
        "must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]",
    ),
    (
        "151-char header",
        [{"type": "header", "text": plain("h" * 151)}],
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
    ),
    (
        "mrkdwn header",
        [{"type": "header", "text": mrkdwn("h")}],
        "must be one of: plain_text [json-pointer:/blocks/0/text/type]",
    ),
    (
        "11 context elements",
        [{"type": "context", "elements": [mrkdwn("c")] * 11}],
        "no more than 10 items allowed [json-pointer:/blocks/0/elements]",
    ),
    (
        "26 actions elements",
        [{"type": "actions", "elements": [button(f"b{i}") for i in range(26)]}],
        "no more than 25 items allowed [json-pointer:/blocks/0/elements]",
    ),
    (
        "76-char button text",
        [{"type": "actions", "elements": [button(text="t" * 76)]}],
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
    ),
    (
        "2001-char button value",
        [{"type": "actions", "elements": [button(value="v" * 2001)]}],
        "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
    ),
    (
        "256-char action_id",
        [{"type": "actions", "elements": [button("a" * 256)]}],
        "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
    ),
    (
        "256-char block_id",
        [{"type": "divider", "block_id": "b" * 256}],
        "must be less than 256 characters [json-pointer:/blocks/0/block_id]",
    ),
    (
        "101-char confirm title",
        [
            {
                "type": "actions",
                "elements": [
                    button(
                        confirm={
                            "title": plain("t" * 101),
                            "text": mrkdwn("sure?"),
                            "confirm": plain("Yes"),
                            "deny": plain("No"),
                        }
                    )
                ],
            }
        ],
        "must be less than 101 characters [json-pointer:/blocks/0/elements/0/confirm/title/text]",
    ),
    (
        "301-char confirm text",
        [
            {
                "type": "actions",
                "elements": [
                    button(
                        confirm={
                            "title": plain("t"),
                            "text": mrkdwn("x" * 301),
                            "confirm": plain("Yes"),
                            "deny": plain("No"),
                        }
                    )
                ],
            }
        ],
        "must be less than 301 characters [json-pointer:/blocks/0/elements/0/confirm/text/text]",
    ),
    (
        "31-char deny",
        [
            {
                "type": "actions",
                "elements": [
                    button(
                        confirm={
                            "title": plain("t"),
                            "text": mrkdwn("x"),
                            "confirm": plain("Yes"),
                            "deny": plain("n" * 31),
                        }
                    )
                ],
            }
        ],
        "must be less than 31 characters [json-pointer:/blocks/0/elements/0/confirm/deny/text]",
    ),
    (
        "101 select options",
        [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "static_select",
                        "action_id": "s",
                        "options": [option(str(i)) for i in range(101)],
                    }
                ],
            }
        ],
        "no more than 100 items allowed [json-pointer:/blocks/0/elements/0/options]",
    ),
    (
        "76-char option text",
        [
            {
                "type": "actions",
                "elements": [
                    {"type": "static_select", "action_id": "s", "options": [option("v", "t" * 76)]}
                ],
            }
        ],
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/options/0/text/text]",
    ),
    (
        "151-char option value",
        [
            {
                "type": "actions",
                "elements": [
                    {"type": "static_select", "action_id": "s", "options": [option("v" * 151)]}
                ],
            }
        ],
        "must be less than 151 characters [json-pointer:/blocks/0/elements/0/options/0/value]",
    ),
    (
        "11 checkbox options",
        [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "checkboxes",
                        "action_id": "c",
                        "options": [option(str(i)) for i in range(11)],
                    }
                ],
            }
        ],
        "no more than 10 items allowed [json-pointer:/blocks/0/elements/0/options]",
    ),
    (
        "151-char placeholder",
        [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "static_select",
                        "action_id": "s",
                        "placeholder": plain("p" * 151),
                        "options": [option("v")],
                    }
                ],
            }
        ],
        "must be less than 151 characters [json-pointer:/blocks/0/elements/0/placeholder/text]",
    ),
]


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [(b, e) for _, b, e in BAD_MESSAGE_BLOCKS],
    ids=[name for name, _, _ in BAD_MESSAGE_BLOCKS],
)
def test_message_block_limits(blocks: list[dict[str, Any]], expected: str) -> None:
    assert [str(v) for v in validate_blocks(blocks)] == [expected]


def test_limits_are_inclusive() -> None:
    at_limit = [
        {
            "type": "section",
            "text": mrkdwn("x" * 3000),
            "fields": [mrkdwn("f" * 2000)] * 10,
            "block_id": "b" * 255,
        },
        {"type": "header", "text": plain("h" * 150)},
        {"type": "context", "elements": [mrkdwn("c")] * 10},
        {
            "type": "actions",
            "elements": [button(f"b{i}", text="t" * 75, value="v" * 2000) for i in range(25)],
        },
    ]
    assert validate_blocks(at_limit) == []
    assert validate_blocks([{"type": "divider"}] * 100, surface="modal") == []


BAD_VIEWS: list[tuple[str, dict[str, Any], str]] = [
    (
        "101 blocks",
        modal(blocks=[{"type": "divider"}] * 101),
        "no more than 100 items allowed [json-pointer:/view/blocks]",
    ),
    (
        "25-char submit",
        modal(submit=plain("s" * 25)),
        "must be less than 25 characters [json-pointer:/view/submit/text]",
    ),
    (
        "mrkdwn close",
        modal(close=mrkdwn("c")),
        "must be one of: plain_text [json-pointer:/view/close/type]",
    ),
    (
        "3001-char private_metadata",
        modal(private_metadata="m" * 3001),
        "must be less than 3001 characters [json-pointer:/view/private_metadata]",
    ),
    (
        "256-char callback_id",
        modal(callback_id="c" * 256),
        "must be less than 256 characters [json-pointer:/view/callback_id]",
    ),
    (
        "2001-char label",
        modal(
            blocks=[
                {
                    "type": "input",
                    "label": plain("l" * 2001),
                    "element": {"type": "plain_text_input"},
                }
            ]
        ),
        "must be less than 2001 characters [json-pointer:/view/blocks/0/label/text]",
    ),
    (
        "2001-char hint",
        modal(blocks=[input_block({"type": "plain_text_input"}, hint=plain("h" * 2001))]),
        "must be less than 2001 characters [json-pointer:/view/blocks/0/hint/text]",
    ),
    (
        "input without submit",
        {
            "type": "modal",
            "title": plain("t"),
            "blocks": [input_block({"type": "plain_text_input"})],
        },
        "must provide submit when the view has input blocks [json-pointer:/view/submit]",
    ),
    (
        "button as input element",
        modal(blocks=[input_block(button())]),
        "unsupported type: button [json-pointer:/view/blocks/0/element/type]",
    ),
]


@pytest.mark.parametrize(
    ("view", "expected"), [(v, e) for _, v, e in BAD_VIEWS], ids=[name for name, _, _ in BAD_VIEWS]
)
def test_view_limits(view: dict[str, Any], expected: str) -> None:
    assert [str(v) for v in validate_view(view)] == [expected]


def test_a_realistic_modal_is_accepted() -> None:
    view = modal(
        callback_id="approve",
        private_metadata="m" * 3000,
        blocks=[
            {"type": "header", "text": plain("Approve data_pipeline")},
            input_block(
                {
                    "type": "plain_text_input",
                    "action_id": "reason",
                    "multiline": True,
                    "placeholder": plain("p" * 150),
                },
                block_id="reason",
            ),
            input_block({"type": "number_input", "action_id": "n", "is_decimal_allowed": False}),
            input_block(
                {
                    "type": "static_select",
                    "action_id": "s",
                    "options": [option(str(i)) for i in range(100)],
                }
            ),
            input_block(
                {
                    "type": "checkboxes",
                    "action_id": "c",
                    "options": [option(str(i)) for i in range(10)],
                },
                optional=True,
            ),
        ],
    )
    assert validate_view(view) == []
