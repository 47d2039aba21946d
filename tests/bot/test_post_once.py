"""Post exactly once, even when Slack's answer is lost (issue 8 §2): every post carries its
outbox key in the message's metadata, and an attempt after one whose outcome is unknown
looks the message up (conversations.history / conversations.replies) and adopts it."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from bot import blocks
from bot.outbox import OUTBOX_EVENT
from bot.sandbox import DEFAULT_CHANNEL_ID
from bot.testing import drain_inbox, wait_outbox_idle
from tests.bot.conftest import ALICE, BotHarness
from tests.bot.test_approval_flow import _start

RUNS = 3


def _posts_by_key(harness: BotHarness) -> Counter[str]:
    """Every message the bot posted (roots and thread replies), counted by outbox key."""
    keys: Counter[str] = Counter()
    for message in harness.state.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False):
        metadata = message.metadata or {}
        assert metadata.get("event_type") == OUTBOX_EVENT, message
        keys[metadata["event_payload"]["key"]] += 1
    return keys


def _retry_until_idle(harness: BotHarness, rounds: int = 6) -> None:
    """Move the injected clock past each retry's backoff until nothing is due or sending."""
    for _ in range(rounds):
        harness.clock.advance(timedelta(minutes=1))
        harness.runtime.signoff.outbox_wakeup.set()
        wait_outbox_idle(harness.runtime)


def _start_runs_and_approve(harness: BotHarness) -> list[str]:
    run_ids = [_start(harness, "approve_me") for _ in range(RUNS)]
    for run_id in run_ids:
        harness.wait_run(run_id, "paused")
    _retry_until_idle(harness)
    alice = harness.actor(ALICE)
    for run_id in run_ids:
        message = harness.pause_message_of(run_id)
        assert alice.click(message, action_id=blocks.ACTION_APPROVE).status_code == 200
    drain_inbox(harness.runtime)
    for run_id in run_ids:
        harness.wait_run(run_id, "completed")
    _retry_until_idle(harness)
    return run_ids


def _assert_each_posted_once(harness: BotHarness, run_ids: list[str]) -> None:
    posts = _posts_by_key(harness)
    assert set(posts.values()) == {1}, posts
    for run_id in run_ids:
        assert posts[f"root:{run_id}"] == 1
        assert posts[f"note:{run_id}:completed"] == 1
    assert (
        len(harness.state.history(DEFAULT_CHANNEL_ID)) == RUNS
    )  # one root message per run, nothing else at top level
    pauses = [k for k in posts if k.startswith("pause:")]
    assert len(pauses) == RUNS


def test_slack_answering_after_the_client_timeout_posts_each_message_once(
    harness: BotHarness,
) -> None:
    harness.runtime.client.timeout = 1  # seconds; Slack answers each post after 1.5
    harness.fake.slow_next("chat.postMessage", delay=1.5, times=RUNS * 2)
    run_ids = _start_runs_and_approve(harness)
    # The slow ones all posted, and their answers were lost: each was tried again.
    assert len(harness.state.calls("chat.postMessage")) >= RUNS * 2
    _assert_each_posted_once(harness, run_ids)
    assert harness.state.calls("conversations.history") or harness.state.calls(
        "conversations.replies"
    )


def test_a_500_after_posting_posts_each_message_once(harness: BotHarness) -> None:
    harness.fake.fail_after_acting_next("chat.postMessage", status=500, times=RUNS * 3)
    run_ids = _start_runs_and_approve(harness)
    failed = [c for c in harness.state.calls("chat.postMessage") if c.status == 500]
    assert len(failed) == RUNS * 3
    _assert_each_posted_once(harness, run_ids)


def test_without_the_history_scope_a_retry_posts_again_rather_than_never(
    harness: BotHarness,
) -> None:
    harness.fake.fail_after_acting_next("chat.postMessage", status=500, times=1)
    harness.fake.fail_next("conversations.history", "missing_scope", times=1)
    run_id = _start(harness, "approve_me")
    harness.wait_run(run_id, "paused")
    _retry_until_idle(harness)
    harness.pause_message_of(run_id)  # posted in the end
    assert _posts_by_key(harness)[f"root:{run_id}"] == 2  # the one case of a second post
