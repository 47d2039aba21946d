"""Start → pause → message → approve → update → completed → notification, over real HTTP."""

from __future__ import annotations

from typing import Any

from bot import blocks
from bot.sandbox import block_actions_payload, interactive_body, send_signed
from tests.bot import workflows as test_workflows
from tests.bot.conftest import ALICE, BOB, CAROL, MALLORY, SECRET, BotHarness


def _start(h: BotHarness, workflow: str, user: str = CAROL, text: str = "") -> str:
    response = h.actor(user).slash("/signoff", f"run {workflow} {text}".strip())
    assert response.status_code == 200
    body = response.json()
    assert "Started" in body["text"], body
    return body["text"].split("run `")[1].split("`")[0]


def test_approve_runs_the_step_updates_message_and_notifies(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me", text="Q4 data")
    message = harness.pause_message("ship")
    assert message.thread_ts is not None  # pauses live in the run's thread
    texts = " ".join(str(b) for b in message.blocks)
    assert "Ship it?" in texts and "approve_me" in texts and f"<@{CAROL}>" in texts
    assert test_workflows.EXECUTIONS == {"prepare": 1}

    response = harness.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    assert response.status_code == 200

    run = harness.wait_run(run_id, "completed")
    assert test_workflows.EXECUTIONS == {"prepare": 1, "ship": 1, "announce": 1}
    assert run.content.startswith("announce done")

    def updated(state):
        current = state.message(message.channel, message.ts)
        return current if current.edited and "Approved" in str(current.blocks) else None

    current = harness.wait(updated, "pause message updated")
    assert not any(b.get("type") == "actions" for b in current.blocks)
    assert f"<@{ALICE}>" in str(current.blocks)

    def completed_note(state):
        return [
            m for m in state.thread(message.channel, message.thread_ts) if "Completed" in m.text
        ]

    assert harness.wait(completed_note, "completion note in thread")
    root = harness.state.message(message.channel, message.thread_ts)
    harness.wait(
        lambda s: "Completed" in s.message(message.channel, message.thread_ts).text,
        "root message shows completed",
    )
    assert root is not None
    decisions = harness.runtime.db.get_decisions(run_id)
    assert [(d.outcome.value, d.decided_by) for d in decisions] == [("confirmed", ALICE)]


def test_user_group_member_may_approve_but_requester_and_outsider_may_not(
    harness: BotHarness,
) -> None:
    run_id = _start(harness, "approve_me", user=CAROL)
    message = harness.pause_message("ship")
    for outsider in (MALLORY, CAROL):  # not an approver; started the run (not allowed)
        # Carol already has an ephemeral (the "Started" reply): wait for the reply to this
        # click only, which goes to the thread of the message clicked.
        before = {m.ts for m in harness.ephemerals_for(outsider)}
        harness.actor(outsider).click(message, action_id=blocks.ACTION_APPROVE)
        def replies(s: Any, u: str = outsider, seen: set[str] = before) -> list[Any]:
            return [
                m for m in s.messages(message.channel) if m.ephemeral_for == u and m.ts not in seen
            ]

        note = harness.wait(replies, "the reply to this click")
        assert len(note) == 1 and note[-1].thread_ts == message.thread_ts
        assert "not allowed" in note[-1].text
    assert harness.runtime.db.get_run(run_id).is_paused
    assert harness.runtime.db.get_decisions(run_id) == []

    harness.actor(BOB).click(message, action_id=blocks.ACTION_APPROVE)  # in S0APPROVERS
    harness.wait_run(run_id, "completed")


def test_double_click_decides_once_and_tells_the_second_click(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    harness.actor(BOB)  # joins the channel
    # Both click the message as their clients show it, before either sees an update.
    clicks = [
        block_actions_payload(harness.state, user_id=user, source=message, action_id=action)
        for user, action in ((ALICE, blocks.ACTION_APPROVE), (BOB, blocks.ACTION_REJECT))
    ]
    for payload in clicks:
        response = send_signed(harness.url, interactive_body(payload), signing_secret=SECRET)
        assert response.status_code == 200
    harness.wait_run(run_id, "completed")
    told = harness.wait(
        lambda s: [m for m in s.messages(message.channel) if m.ephemeral_for == BOB], "bob told"
    )
    assert told[-1].thread_ts == message.thread_ts  # next to the message he clicked
    assert "Already decided" in told[-1].text and "approved" in told[-1].text
    assert f"<@{ALICE}>" in told[-1].text
    assert test_workflows.EXECUTIONS["ship"] == 1
    assert len(harness.runtime.db.get_decisions(run_id)) == 1


def test_replayed_click_and_slack_retry_act_once(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    alice = harness.actor(ALICE)
    alice.click(message, action_id=blocks.ACTION_APPROVE)
    payload = alice.last_payload
    harness.wait_run(run_id, "completed")
    for retry in (None, 1):
        response = send_signed(
            harness.url,
            interactive_body(payload or {}),
            signing_secret=SECRET,
            retry_num=retry,
            retry_reason="http_timeout",
        )
        assert response.status_code == 200
    assert len(harness.runtime.db.get_decisions(run_id)) == 1
    assert harness.ephemerals_for(ALICE) == []  # a replay is dropped, not answered


def test_reject_skip_and_reject_cancel(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    harness.actor(ALICE).click(message, action_id=blocks.ACTION_REJECT)
    run = harness.wait_run(run_id, "completed")
    assert [(s.step_name, s.skipped) for s in run.step_results] == [
        ("prepare", False),
        ("ship", True),
        ("announce", False),
    ]
    harness.wait(
        lambda s: "Rejected" in str(s.message(message.channel, message.ts).blocks),
        "message shows rejection",
    )

    run_id = _start(harness, "cancel_me")
    message = harness.pause_message("danger")
    actor = harness.actor(BOB)
    actor.click(message, action_id=blocks.ACTION_REJECT_WITH_REASON)
    view = harness.wait(lambda s: s.top_view(BOB), "reason modal")
    response = actor.submit(view, {blocks.REASON_BLOCK: "not during the freeze"})
    assert response.status_code == 200
    run = harness.wait_run(run_id, "cancelled")
    assert "danger" in run.content and BOB in run.content
    assert "after" not in test_workflows.EXECUTIONS
    decision = harness.runtime.db.get_decisions(run_id)[0]
    assert decision.comment == "not during the freeze"
    harness.wait(
        lambda s: "not during the freeze" in str(s.message(message.channel, message.ts).blocks),
        "reason shown",
    )
