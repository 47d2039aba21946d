"""Slack rate-limiting or down when a pause must be posted: the pause is not lost."""

from __future__ import annotations

from datetime import timedelta

from tests.bot.conftest import BotHarness
from tests.bot.test_approval_flow import _start


def test_429_then_success_posts_the_pause(harness: BotHarness) -> None:
    harness.fake.rate_limit_next("chat.postMessage", retry_after=30, times=1)
    run_id = _start(harness, "approve_me")
    harness.wait_run(run_id, "paused")
    harness.wait(
        lambda s: any(c.status == 429 for c in s.calls("chat.postMessage")), "rate limited once"
    )
    assert harness.state.messages(include_ephemeral=False) == []
    harness.clock.advance(timedelta(seconds=31))  # the Retry-After passes
    harness.runtime.signoff.outbox_wakeup.set()
    message = harness.pause_message("ship")
    assert message.thread_ts is not None


def test_slack_down_then_back(harness: BotHarness) -> None:
    harness.fake.set_down(True)
    run_id = _start(harness, "approve_me")
    harness.wait_run(run_id, "paused")
    harness.wait(lambda s: len(s.calls("chat.postMessage")) >= 1, "a failed attempt")
    harness.fake.set_down(False)
    for _ in range(12):  # exponential backoff, moved by the clock instead of waiting
        harness.clock.advance(timedelta(minutes=5))
        harness.runtime.signoff.outbox_wakeup.set()
        try:
            harness.pause_message("ship")
            break
        except TimeoutError:
            continue
    message = harness.pause_message("ship")
    assert "Ship it?" in str(message.blocks)
    assert harness.runtime.signoff.store.outbox_counts().get("failed", 0) == 0
