"""What is left of injected faults: a window of faults on every method, counted as taken."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox import DEFAULT_CHANNEL_ID, SlackFakeServer


def test_faults_left_counts_what_calls_took_until_cleared(
    client: WebClient, fake: SlackFakeServer
) -> None:
    fake.state.fail_after_acting_next("*", times=100)
    assert fake.state.faults_left("*") == 100
    for _ in range(3):
        with pytest.raises(SlackApiError):
            client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="acted, then 500")
    assert fake.state.faults_left("*") == 97
    assert fake.state.faults_left("chat.postMessage") == 0
    assert (
        len([m for m in fake.state.messages(DEFAULT_CHANNEL_ID) if m.text == "acted, then 500"])
        == 3
    )
    fake.state.clear_faults()
    assert fake.state.faults_left("*") == 0
    assert client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="fine")["ok"]
