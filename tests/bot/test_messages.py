"""What people read in Slack, over real HTTP against the fake: the pause message is short (one
header, one context line, a link to the run's root message), a timeout is one notice, modal
errors are plain text and come all at once, and replies go next to what was clicked."""

from __future__ import annotations

from datetime import timedelta

from bot import blocks
from bot.sandbox import Message, interactive_body, send_signed, view_submission_payload
from bot.testing import run_due_jobs, wait_outbox_idle
from tests.bot.conftest import ALICE, BOB, CAROL, SECRET, BotHarness
from tests.bot.test_approval_flow import _start


def _types(message: Message) -> list[str]:
    return [b["type"] for b in message.blocks]


def _context_text(message: Message) -> str:
    (context,) = [b for b in message.blocks if b["type"] == "context"]
    return " ".join(e["text"] for e in context["elements"])


def test_pause_message_is_short_and_links_to_the_root_message(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me", text="Q4 `data`")
    message = harness.pause_message("ship")
    assert _types(message) == ["header", "section", "context", "section", "actions"]
    assert message.blocks[0]["text"]["text"] == "approve_me › ship"  # workflow and step once
    assert message.blocks[1]["text"]["text"] == "Ship it?"
    context = _context_text(message)
    assert f"Started by <@{CAROL}> <!date^" in context
    assert "input `Q4 ˋdataˋ`" in context  # a backtick in the input cannot end the code span
    assert f"decided by <@{ALICE}>, <!subteam^S0APPROVERS>" in context
    assert "due" not in context  # no deadline, no deadline text
    # The run's root message is linked (its permalink), under the short run id.
    assert message.thread_ts is not None
    permalink = f"/archives/{message.channel}/p{message.thread_ts.replace('.', '')}"
    assert f"{permalink}|run {run_id[:8]}>" in context, context
    assert run_id not in str(message.blocks)  # the run id once, short
    assert "```" in message.blocks[3]["text"]["text"]  # the previous output, fenced


def test_a_deadline_is_in_the_context_line_and_a_timeout_is_one_notice(
    harness: BotHarness,
) -> None:
    run_id = _start(harness, "cancel_me")
    message = harness.pause_message("danger")
    assert "due <!date^" in _context_text(message) and "(then cancel)" in _context_text(message)
    harness.clock.advance(timedelta(hours=1, seconds=1))
    run_due_jobs(harness.runtime.scheduler)
    harness.wait_run(run_id, "cancelled")
    harness.wait(
        lambda s: "Cancelled" in s.message(message.channel, message.thread_ts).text,
        "root message shows the cancellation",
    )
    harness.wait(
        lambda s: [
            m for m in s.thread(message.channel, message.thread_ts) if "timed out" in m.text
        ],
        "the timeout notice",
    )
    wait_outbox_idle(harness.runtime)  # everything delivered: a second notice would be there
    notes = [
        m.text
        for m in harness.state.thread(message.channel, message.thread_ts)
        if not m.blocks and not m.is_ephemeral and "still waits" not in m.text
    ]
    assert len(notes) == 1, notes  # "timed out — run cancelled", not a second "cancelled"
    assert "timed out" in notes[0] and "run cancelled" in notes[0] and "<!date^" in notes[0]


def test_a_modal_submitted_after_the_deadline_says_so_in_plain_text(
    harness: BotHarness,
) -> None:
    run_id = _start(harness, "cancel_me")
    message = harness.pause_message("danger")
    bob = harness.actor(BOB)
    bob.click(message, action_id=blocks.ACTION_REJECT_WITH_REASON)
    view = harness.wait(lambda s: s.top_view(BOB), "reason modal")
    assert view.payload["title"]["text"] == "Reject danger"
    harness.clock.advance(timedelta(hours=1, seconds=1))
    run_due_jobs(harness.runtime.scheduler)
    harness.wait_run(run_id, "cancelled")
    # A submission that crossed the timeout's views.update: the form as Bob still saw it.
    payload = view_submission_payload(
        harness.state, user_id=BOB, view=view, values={blocks.REASON_BLOCK: "too late"}
    )
    response = send_signed(harness.url, interactive_body(payload), signing_secret=SECRET)
    error = response.json()["errors"][blocks.REASON_BLOCK]
    assert "deadline passed" in error and "UTC" in error, error
    assert "<" not in error and "*" not in error  # no markup a modal would show raw


def test_a_form_open_when_its_pause_times_out_is_updated_to_say_so(
    harness: BotHarness,
) -> None:
    run_id = _start(harness, "cancel_me")
    message = harness.pause_message("danger")
    bob = harness.actor(BOB)
    bob.click(message, action_id=blocks.ACTION_REJECT_WITH_REASON)
    view = harness.wait(lambda s: s.top_view(BOB), "reason modal")
    harness.clock.advance(timedelta(hours=1, seconds=1))
    run_due_jobs(harness.runtime.scheduler)
    harness.wait_run(run_id, "cancelled")
    updated = harness.wait(
        lambda s: (v := s.view(view.id)) and v.callback_id == blocks.VIEW_CLOSED and v,
        "the open form replaced by a notice",
    )
    text = str(updated.blocks)
    assert "Too late" in text and "deadline passed" in text and "<!date^" in text
    assert not any(b["type"] == "input" for b in updated.blocks)


def test_a_form_open_when_someone_else_decides_is_updated_to_say_who(
    harness: BotHarness,
) -> None:
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    bob = harness.actor(BOB)
    bob.click(message, action_id=blocks.ACTION_REJECT_WITH_REASON)
    view = harness.wait(lambda s: s.top_view(BOB), "reason modal")
    harness.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run_id, "completed")
    updated = harness.wait(
        lambda s: (v := s.view(view.id)) and v.callback_id == blocks.VIEW_CLOSED and v,
        "the open form replaced by a notice",
    )
    assert "Already decided" in str(updated.blocks) and f"<@{ALICE}>" in str(updated.blocks)


def test_the_modal_is_titled_by_its_step_and_shows_every_error_at_once(
    harness: BotHarness,
) -> None:
    run_id = _start(harness, "configure_me")
    message = harness.pause_message("configure")
    alice = harness.actor(ALICE)
    alice.click(message, action_id=blocks.ACTION_PROVIDE_INPUT)
    view = harness.wait(lambda s: s.top_view(ALICE), "input modal")
    assert view.payload["title"]["text"] == "configure"
    labels = {
        b["block_id"]: b["label"]["text"] for b in view.payload["blocks"] if b["type"] == "input"
    }
    assert labels == {
        "field:threshold": "Threshold",
        "field:mode": "Mode",
        "field:batch_size": "Batch size",
        "field:dry_run": "Dry run",
    }
    assert "(float)" not in str(view.payload) and "(int)" not in str(view.payload)
    # A required field left empty and an invalid one: both errors in one answer.
    response = alice.submit(
        view, {"field:mode": "fast", "field:batch_size": "2.5"}, enforce_required=False
    )
    errors = response.json()["errors"]
    assert set(errors) == {"field:threshold", "field:batch_size"}, errors
    assert harness.runtime.db.get_run(run_id).is_paused


def test_status_of_a_run_that_does_not_exist_says_so(harness: BotHarness) -> None:
    for given in ("nonsense", "0123456789abcdef"):
        reply = harness.actor(ALICE).slash("/signoff", f"status {given}").json()
        assert f"No run `{given}`" in reply["text"], reply
        assert "needs a run id" not in reply["text"]
    reply = harness.actor(ALICE).slash("/signoff", "status").json()
    assert "needs a run id" in reply["text"]
