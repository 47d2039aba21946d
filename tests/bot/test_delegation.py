"""Delegation over real signed HTTP against the Slack fake: the overflow menu "Delegate…"
opens a user picker; the delegate decides in the delegator's place (who then may not), both
are told, the thread notes it once and the audit lists it; routes that do not allow it show
no menu, and a non-approver cannot delegate."""

from __future__ import annotations

from typing import Any

import pytest

from bot import blocks
from bot.delegation import Delegations
from bot.routing import SlackRoute
from bot.sandbox import (
    Message,
    View,
    block_actions_payload,
    interactive_body,
    send_signed,
    view_submission_payload,
)
from engine import Step, Workflow
from tests.bot import workflows as test_workflows
from tests.bot.conftest import ALICE, BOB, CAROL, MALLORY, SECRET, BotHarness
from tests.bot.test_approval_flow import _start
from tests.bot.test_reach import home_of, refreshed_home_of, waiting_count


def _gate(name: str, **policy: Any) -> Workflow:
    return Workflow(
        name=name,
        steps=[
            Step(
                name="ship",
                executor=test_workflows.counted(f"{name}.ship"),
                requires_confirmation=True,
                **policy,
            )
        ],
    )


@pytest.fixture
def bot_routes() -> list[SlackRoute]:
    return [
        SlackRoute(
            workflow=_gate("delegable"),
            approvers=(ALICE,),
            allow_requester=False,
            allow_delegation=True,
        ),
        SlackRoute(workflow=_gate("two_delegable", approvals=2), allow_delegation=True),
        SlackRoute(workflow=_gate("fixed"), approvers=(ALICE,)),
    ]


def _menu(message: Message) -> dict[str, Any] | None:
    for block in message.blocks:
        for element in block.get("elements") or []:
            if element.get("action_id") == blocks.ACTION_DELEGATE:
                return dict(element)
    return None


def _replies(h: BotHarness, user: str, channel: str, before: set[str]) -> list[Message]:
    return [m for m in h.state.messages(channel) if m.ephemeral_for == user and m.ts not in before]


def _seen(h: BotHarness, user: str, channel: str) -> set[str]:
    return {m.ts for m in h.state.messages(channel) if m.ephemeral_for == user}


def _open_delegate(h: BotHarness, user: str, message: Message) -> View:
    menu = _menu(message)
    assert menu is not None and menu["type"] == "overflow"
    assert [o["text"]["text"] for o in menu["options"]] == ["Delegate…", "Audit trail"]
    choice = menu["options"][0]["value"]
    response = h.actor(user).click(message, action_id=blocks.ACTION_DELEGATE, value=choice)
    assert response.status_code == 200
    return h.wait(lambda s: s.top_view(user), "the delegate modal")


def test_a_delegate_decides_in_place_of_the_delegator(harness: BotHarness) -> None:
    h = harness
    run_id = _start(h, "delegable", user=CAROL)
    message = h.pause_message("ship")
    h.actor(BOB)  # in the channel, to be told
    h.actor(BOB).open_home()
    assert waiting_count(home_of(h, BOB)) == "Waiting for you (0)"
    h.wait_outbox_idle()  # the bot has recorded that Bob has a Home tab
    view = _open_delegate(h, ALICE, message)
    assert view.payload["callback_id"] == blocks.VIEW_DELEGATE

    alice_before, bob_before = _seen(h, ALICE, message.channel), _seen(h, BOB, message.channel)
    submitted = h.actor(ALICE).submit(
        view, {blocks.DELEGATE_BLOCK: BOB, blocks.REASON_BLOCK: "on call <!here>"}
    )
    assert submitted.status_code == 200 and not submitted.content.strip()  # closed
    told = h.wait(lambda s: _replies(h, ALICE, message.channel, alice_before), "Alice told")
    assert told[-1].text == f"You delegated *ship* to <@{BOB}>."
    to_bob = h.wait(lambda s: _replies(h, BOB, message.channel, bob_before), "Bob told")
    assert f"<@{ALICE}> delegated *ship*" in to_bob[-1].text
    assert "&lt;!here&gt;" in to_bob[-1].text  # the reason is content: escaped

    assert message.thread_ts is not None
    h.wait_outbox_idle()
    notes = [
        m
        for m in h.state.thread(message.channel, message.thread_ts)
        if "delegated" in m.text and not m.ephemeral_for
    ]
    assert len(notes) == 1
    assert f"<@{ALICE}> delegated *ship* to <@{BOB}>: on call &lt;!here&gt;" in notes[0].text

    refreshed_home_of(
        h, BOB, lambda v: waiting_count(v) == "Waiting for you (1)", "lists the pause"
    )
    shown = h.state.message(message.channel, message.ts)
    assert f":handshake: <@{ALICE}> delegated to <@{BOB}>" in str(shown.blocks)

    # Alice handed her seat over: she may not decide now; Bob may.
    before = _seen(h, ALICE, message.channel)
    h.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    refused = h.wait(lambda s: _replies(h, ALICE, message.channel, before), "Alice refused")
    assert "you delegated this decision to" in refused[-1].text
    assert h.runtime.db.get_decisions(run_id) == []
    h.actor(BOB).click(message, action_id=blocks.ACTION_APPROVE)
    h.wait_run(run_id, "completed")
    (decision,) = h.runtime.db.get_decisions(run_id)
    assert decision.decided_by == BOB

    audit = h.actor(CAROL).slash("/signoff", f"audit {run_id}").json()
    lines = [str(b) for b in audit["blocks"] if b["type"] == "context"]
    assert f"delegated by <@{ALICE}> to <@{BOB}>" in lines[0] and "on call" in lines[0]
    assert f"approved by <@{BOB}>" in lines[1]


def test_the_menu_shows_the_audit_trail(harness: BotHarness) -> None:
    h = harness
    _start(h, "two_delegable", user=CAROL)
    message = h.pause_message("ship")
    h.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    h.wait(lambda s: "1 of 2" in str(s.message(message.channel, message.ts).blocks), "vote shown")
    menu = _menu(h.state.message(message.channel, message.ts))
    assert menu is not None
    before = _seen(h, BOB, message.channel)
    h.actor(BOB).click(message, action_id=blocks.ACTION_DELEGATE, value=menu["options"][1]["value"])
    told = h.wait(lambda s: _replies(h, BOB, message.channel, before), "the audit trail")
    assert told[-1].text.startswith("*Audit trail*")
    assert f"approved (one vote) by <@{ALICE}>" in told[-1].text
    assert h.state.top_view(BOB) is None


def test_a_delegation_is_refused_for_what_it_cannot_be(harness: BotHarness) -> None:
    h = harness
    _start(h, "delegable", user=CAROL)
    message = h.pause_message("ship")
    for who, why in (
        (ALICE, "other than yourself"),
        (CAROL, "started this run"),
    ):
        view = _open_delegate(h, ALICE, message)
        response = h.actor(ALICE).submit(view, {blocks.DELEGATE_BLOCK: who})
        body = response.json()
        assert body["response_action"] == "errors", who
        assert why in body["errors"][blocks.DELEGATE_BLOCK]
        h.state.close_view(view.id)

    # Mallory is no approver: the menu tells her so and opens nothing.
    before = _seen(h, MALLORY, message.channel)
    menu = _menu(message)
    assert menu is not None
    h.actor(MALLORY).click(
        message, action_id=blocks.ACTION_DELEGATE, value=menu["options"][0]["value"]
    )
    told = h.wait(lambda s: _replies(h, MALLORY, message.channel, before), "Mallory told")
    assert "not allowed" in told[-1].text
    assert h.state.top_view(MALLORY) is None


def test_a_delegate_who_may_decide_already_is_refused(harness: BotHarness) -> None:
    h = harness
    run_id = _start(h, "two_delegable", user=CAROL)
    message = h.pause_message("ship")
    view = _open_delegate(h, ALICE, message)
    body = h.actor(ALICE).submit(view, {blocks.DELEGATE_BLOCK: BOB}).json()
    assert "may decide ship already" in body["errors"][blocks.DELEGATE_BLOCK]
    assert h.runtime.db.get_run(run_id).is_paused


def test_a_route_without_delegation_shows_no_menu(harness: BotHarness) -> None:
    _start(harness, "fixed", user=CAROL)
    message = harness.pause_message("ship")
    assert _menu(message) is None


def test_hostile_delegations_get_answers_not_errors(harness: BotHarness) -> None:
    """A forged pick, a forged token, a forged menu value: 200 with an answer, nothing
    recorded."""
    h = harness
    run_id = _start(h, "delegable", user=CAROL)
    message = h.pause_message("ship")
    view = _open_delegate(h, ALICE, message)
    forged = h.actor(ALICE).submit(
        view, {blocks.DELEGATE_BLOCK: "<!channel>"}, enforce_required=False
    )
    assert forged.status_code == 200
    assert "Choose a person" in forged.json()["errors"][blocks.DELEGATE_BLOCK]

    payload = view_submission_payload(
        h.state, user_id=ALICE, view=h.state.view(view.id), values={blocks.DELEGATE_BLOCK: BOB}
    )
    payload["view"]["private_metadata"] = "not-a-token"
    response = send_signed(h.url, interactive_body(payload), signing_secret=SECRET)
    assert response.status_code == 200
    assert "unknown to Signoff" in response.json()["errors"][blocks.DELEGATE_BLOCK]

    before = _seen(h, ALICE, message.channel)
    menu = _menu(message)
    assert menu is not None
    click = block_actions_payload(
        h.state,
        user_id=ALICE,
        source=message,
        action_id=blocks.ACTION_DELEGATE,
        value=menu["options"][0]["value"],
    )
    click["actions"][0]["selected_option"]["value"] = "delegate:not-a-token"
    response = send_signed(h.url, interactive_body(click), signing_secret=SECRET)
    assert response.status_code == 200
    told = h.wait(lambda s: _replies(h, ALICE, message.channel, before), "Alice told")
    assert "unknown to Signoff" in told[-1].text
    requirement_id = h.runtime.db.get_run(run_id).step_requirements[0].requirement_id
    assert Delegations(h.runtime.signoff).of_pause(requirement_id) == []
    assert "delegated" not in str(h.actor(CAROL).slash("/signoff", f"audit {run_id}").json())
