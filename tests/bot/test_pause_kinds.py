"""Every kind of pause has its Slack form, end to end over real signed HTTP against the
Slack fake: the message is posted, a person decides, the message is updated in place and
the run goes on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot import blocks
from bot.sandbox import Message, block_actions_payload, interactive_body, send_signed
from bot.testing import run_due_jobs
from tests.bot import workflows as test_workflows
from tests.bot.conftest import ALICE, BOB, SECRET, BotHarness
from tests.bot.test_approval_flow import _start


def _text(message: Message) -> str:
    return str(message.blocks)


def _block(message: Message, block_id: str) -> dict[str, Any]:
    return next(b for b in message.blocks if b.get("block_id") == block_id)


def _resolved(h: BotHarness, message: Message, marker: str) -> Message:
    """The same message, updated in place: buttons gone, ``marker`` in the outcome."""

    def updated(state: Any) -> Message | None:
        current = state.message(message.channel, message.ts)
        if current is None or not current.edited or marker not in str(current.blocks):
            return None
        return current

    current = h.wait(updated, f"message updated with {marker!r}")
    assert not any(b["type"] == "actions" for b in current.blocks)
    return current


def _reply_to(h: BotHarness, user: str, seen: set[str]) -> Message:
    """The one ephemeral reply to ``user``'s latest click (not an earlier one)."""
    found = h.wait(
        lambda s: [m for m in h.ephemerals_for(user) if m.ts not in seen],
        f"the reply to {user}'s click",
    )
    assert len(found) == 1, found
    return found[0]


def _next_pause(h: BotHarness, step: str, after: Message) -> Message:
    """A new pause message for ``step``, posted after ``after`` (the run paused again)."""
    return h.pause_message(step, after=after)


# -- 1. confirmation on a group ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "plan"),
    [
        ("steps", "If approved, runs: *first* → *second*"),
        ("loop", "If approved, runs (up to 2 rounds): *first* → *second*"),
        ("router", "If approved, the router runs one of: *first*, *second*"),
        ("condition", "If approved, the condition chooses: *first*; otherwise *second*"),
    ],
)
def test_group_confirmation_says_what_will_run(harness: BotHarness, kind: str, plan: str) -> None:
    run_id = _start(harness, f"group_{kind}")
    message = harness.pause_message("g")
    assert plan in _text(message), _text(message)
    assert f"Run the {kind}?" in _text(message)
    harness.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    run = harness.wait_run(run_id, "completed")
    _resolved(harness, message, "Approved")
    ran = {"steps": 1, "loop": 2, "router": 1, "condition": 1}[kind]
    assert test_workflows.EXECUTIONS.get("after") == 1
    assert sum(test_workflows.EXECUTIONS.get(n, 0) for n in ("first", "second")) == (
        2 * ran if kind in ("steps", "loop") else 1
    )
    assert run.content.startswith("after<")


# -- 2. router selection ----------------------------------------------------------------------
def test_router_radio_buttons_with_descriptions_and_approve_sends_the_pick(
    harness: BotHarness,
) -> None:
    run_id = _start(harness, "route_me")
    message = harness.pause_message("route")
    assert "Which path?" in _text(message)
    assert "Choose a route:" in _text(message)
    [element] = _block(message, blocks.ROUTE_BLOCK)["elements"]
    assert element["type"] == "radio_buttons"
    assert [(o["value"], o["description"]["text"]) for o in element["options"]] == [
        ("fast", "the quick path"),
        ("careful", "reviewed by two"),
    ]
    alice = harness.actor(ALICE)
    # Approve before picking: refused, nothing stored.
    seen = {m.ts for m in harness.ephemerals_for(ALICE)}
    alice.click(message, action_id=blocks.ACTION_CHOOSE_ROUTE)
    assert "Choose a route first" in _reply_to(harness, ALICE, seen).text
    assert harness.runtime.db.get_decisions(run_id) == []

    assert alice.select(message, action_id=blocks.ACTION_ROUTE_CHOICE, value="careful").is_success
    assert harness.runtime.db.get_run(run_id).is_paused  # a pick alone decides nothing
    alice.click(message, action_id=blocks.ACTION_CHOOSE_ROUTE)
    run = harness.wait_run(run_id, "completed")
    assert run.content == "after<careful<None>>"
    assert "fast" not in test_workflows.EXECUTIONS
    current = _resolved(harness, message, "Route chosen")
    assert "*careful*" in _text(current) and f"<@{ALICE}>" in _text(current)
    [decision] = harness.runtime.db.get_decisions(run_id)
    assert decision.values == {"selected_choices": ["careful"]}


def test_router_unknown_choice_is_refused_and_stores_nothing(harness: BotHarness) -> None:
    run_id = _start(harness, "route_me")
    message = harness.pause_message("route")
    harness.actor(ALICE)  # joins the channel
    payload = block_actions_payload(
        harness.state, user_id=ALICE, source=message, action_id=blocks.ACTION_CHOOSE_ROUTE
    )
    payload["state"] = {
        "values": {
            blocks.ROUTE_BLOCK: {
                blocks.ACTION_ROUTE_CHOICE: {
                    "type": "radio_buttons",
                    "selected_option": {"value": "drop_tables"},
                }
            }
        }
    }
    seen = {m.ts for m in harness.ephemerals_for(ALICE)}
    response = send_signed(harness.url, interactive_body(payload), signing_secret=SECRET)
    assert response.status_code == 200
    reply = _reply_to(harness, ALICE, seen)
    assert "No such route" in reply.text and "drop_tables" in reply.text
    assert harness.runtime.db.get_run(run_id).is_paused
    assert harness.runtime.db.get_decisions(run_id) == []


def test_router_checkboxes_take_several_routes(harness: BotHarness) -> None:
    run_id = _start(harness, "route_many")
    message = harness.pause_message("route")
    [element] = _block(message, blocks.ROUTE_BLOCK)["elements"]
    assert element["type"] == "checkboxes"
    assert "Choose one or more routes" in _text(message)
    alice = harness.actor(ALICE)
    alice.select(message, action_id=blocks.ACTION_ROUTE_CHOICE, value=["careful", "fast"])
    alice.click(message, action_id=blocks.ACTION_CHOOSE_ROUTE)
    harness.wait_run(run_id, "completed")
    assert test_workflows.EXECUTIONS == {"fast": 1, "careful": 1}
    _resolved(harness, message, "Route chosen")


def test_router_with_many_choices_is_a_select_menu(harness: BotHarness) -> None:
    run_id = _start(harness, "route_menu")
    message = harness.pause_message("region")
    [element] = _block(message, blocks.ROUTE_BLOCK)["elements"]
    assert element["type"] == "static_select" and len(element["options"]) == 6
    alice = harness.actor(ALICE)
    alice.select(message, action_id=blocks.ACTION_ROUTE_CHOICE, value="region_4")
    alice.click(message, action_id=blocks.ACTION_CHOOSE_ROUTE)
    harness.wait_run(run_id, "completed")
    assert test_workflows.EXECUTIONS == {"region_4": 1}


# -- 3. output review -------------------------------------------------------------------------
def test_output_review_edit_is_what_the_next_step_gets(harness: BotHarness) -> None:
    run_id = _start(harness, "review_me")
    message = harness.pause_message("draft")
    text = _text(message)
    assert "Publish this?" in text and "*Output* (attempt 1 of 3)" in text
    assert "```draft 1```" in text
    alice = harness.actor(ALICE)
    alice.click(message, action_id=blocks.ACTION_EDIT_OUTPUT)
    view = harness.wait(lambda s: s.top_view(ALICE), "edit modal")
    [field] = [b for b in view.blocks if b["type"] == "input"]
    assert field["element"]["initial_value"] == "draft 1"  # prefilled with the output
    response = alice.submit(view, {blocks.OUTPUT_BLOCK: "hand-written <!channel> `text`"})
    assert response.status_code == 200 and not response.content.strip()
    run = harness.wait_run(run_id, "completed")
    assert run.content == "publish<hand-written <!channel> `text`>"
    current = _resolved(harness, message, "Edited and approved")
    assert "hand-written &lt;!channel&gt;" in _text(current)  # escaped, not a mention
    assert "<!channel>" not in _text(current)


def test_output_review_reject_with_feedback_reruns_the_step(harness: BotHarness) -> None:
    run_id = _start(harness, "review_me")
    message = harness.pause_message("draft")
    bob = harness.actor(BOB)
    bob.click(message, action_id=blocks.ACTION_REJECT_WITH_REASON)
    view = harness.wait(lambda s: s.top_view(BOB), "feedback modal")
    assert "will re-run with the feedback, attempt 2 of 3" in str(view.blocks)
    [field] = [b for b in view.blocks if b["type"] == "input"]
    assert field["label"]["text"] == "Feedback"
    bob.submit(view, {blocks.REASON_BLOCK: "shorter please"})
    _resolved(harness, message, "re-running, attempt 2 of 3")
    again = _next_pause(harness, "draft", message)
    assert "```draft 2 after ˋshorter pleaseˋ```" not in _text(again)  # quotes, no backticks
    assert "draft 2 after 'shorter please'" in _text(again)
    assert "*Output* (attempt 2 of 3)" in _text(again)
    harness.actor(ALICE).click(again, action_id=blocks.ACTION_APPROVE)
    run = harness.wait_run(run_id, "completed")
    assert run.content == "publish<draft 2 after 'shorter please'>"
    _resolved(harness, again, "Approved")


def test_output_review_long_output_is_clipped_with_a_full_view(harness: BotHarness) -> None:
    _start(harness, "review_me", text="long")
    message = harness.pause_message("draft")
    output_section = next(b for b in message.blocks if "*Output*" in str(b))
    shown = output_section["text"]["text"]
    assert len(shown) <= blocks.OUTPUT_PREVIEW_MAX + 40 and shown.endswith("…```")
    assert "`with backticks`" not in shown  # backticks made inert inside our fence
    alice = harness.actor(ALICE)
    alice.click(message, action_id=blocks.ACTION_VIEW_OUTPUT)
    view = harness.wait(lambda s: s.top_view(ALICE), "full output modal")
    assert view.callback_id == blocks.VIEW_OUTPUT and not view.payload.get("submit")
    full = "".join(b["text"]["text"].strip("`") for b in view.blocks if b["type"] == "section")
    assert full.count("line of a long report") == 120


# -- 4. error pause ------------------------------------------------------------------------------
def test_error_pause_shows_the_error_and_attempt_retry_then_skip(harness: BotHarness) -> None:
    test_workflows.FLAKY_FAILURES["left"] = 5
    run_id = _start(harness, "flaky_me")
    message = harness.pause_message("fetch")
    text = _text(message)
    assert "*fetch* failed (ConnectionError) on attempt 1" in text
    assert "attempt 1: &lt;!channel&gt; upstream refused" in text and "<!channel>" not in text
    alice = harness.actor(ALICE)
    alice.click(message, action_id=blocks.ACTION_RETRY)
    _resolved(harness, message, "Retry")
    again = _next_pause(harness, "fetch", message)
    assert "on attempt 2" in _text(again)
    alice.click(again, action_id=blocks.ACTION_SKIP)
    run = harness.wait_run(run_id, "completed")
    assert run.content == "after<None>"
    assert test_workflows.EXECUTIONS == {"fetch": 2, "after": 1}
    _resolved(harness, again, "Skipped")


# -- 5. loop iteration review ------------------------------------------------------------------
def test_loop_iteration_review_shows_the_iteration_and_its_output(harness: BotHarness) -> None:
    run_id = _start(harness, "loop_review")
    message = harness.pause_message("rounds")
    assert "*Iteration 1 output*" in _text(message) and "polish&lt;None&gt;" in _text(message)
    assert "Another round?" in _text(message)
    alice = harness.actor(ALICE)
    alice.click(message, action_id=blocks.ACTION_APPROVE)
    _resolved(harness, message, "Approved")
    second = _next_pause(harness, "rounds", message)
    assert "*Iteration 2 output*" in _text(second)
    alice.click(second, action_id=blocks.ACTION_REJECT)  # stop here, keep what it made
    harness.wait_run(run_id, "completed")
    assert test_workflows.EXECUTIONS == {"polish": 2}
    current = _resolved(harness, second, "Rejected")
    assert "loop stopped" in _text(current)


# -- 7. executor (tool-call) pause ----------------------------------------------------------------
@pytest.mark.parametrize("answer", ["approve", "reject"])
def test_tool_call_shows_name_and_arguments_as_fields(harness: BotHarness, answer: str) -> None:
    run_id = _start(harness, "tool_me", text="users")
    message = harness.pause_message("clean")
    tool = next(b for b in message.blocks if "Tool call" in str(b.get("text")))
    assert "`drop_table`" in tool["text"]["text"] and "*ops_agent*" in tool["text"]["text"]
    assert [f["text"] for f in tool["fields"]] == ["*table*\n`users`", "*cascade*\n`true`"]
    action = blocks.ACTION_APPROVE if answer == "approve" else blocks.ACTION_REJECT
    harness.actor(ALICE).click(message, action_id=action)
    run = harness.wait_run(run_id, "completed")
    if answer == "approve":
        assert run.content == "dropped users"
        _resolved(harness, message, "Approved")
    else:
        assert run.content.startswith("kept everything")
        _resolved(harness, message, "Rejected")


# -- 6. a parallel pause with several requirements ------------------------------------------------
def test_parallel_pause_is_one_message_each_part_decided_on_its_own(harness: BotHarness) -> None:
    run_id = _start(harness, "fan_me")
    message = harness.pause_message("left")
    assert "right" in message.text  # one message for both
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert [b["block_id"] for b in actions] == ["decision:0", "decision:1"]
    tokens = {b["block_id"]: b["elements"][0]["value"] for b in actions}
    assert tokens["decision:0"] != tokens["decision:1"]  # each part decided by its own token
    assert test_workflows.EXECUTIONS == {"free": 1}  # the branch that needs no one ran

    alice = harness.actor(ALICE)
    alice.click(message, action_id=blocks.ACTION_APPROVE, block_id="decision:0")

    def left_answered(state: Any) -> Message | None:
        current = state.message(message.channel, message.ts)
        ids = [b.get("block_id") for b in current.blocks if b["type"] == "actions"]
        return current if current.edited and ids == ["decision:1"] else None

    partial = harness.wait(left_answered, "left answered, right still waiting")
    assert f"*Approved* by <@{ALICE}>" in _text(partial)
    run = harness.runtime.db.get_run(run_id)
    assert run is not None and run.is_paused
    assert harness.runtime.db.get_decisions(run_id) == []  # recorded, not yet claimed

    # The same part again (a stale copy of the message): already decided, and by whom.
    seen = {m.ts for m in harness.ephemerals_for(BOB)}
    harness.actor(BOB).click(
        message, action_id=blocks.ACTION_APPROVE, block_id="decision:0", shown_blocks=message.blocks
    )
    reply = _reply_to(harness, BOB, seen)
    assert "Already decided" in reply.text and f"<@{ALICE}>" in reply.text

    harness.actor(BOB).click(partial, action_id=blocks.ACTION_REJECT, block_id="decision:1")
    run = harness.wait_run(run_id, "completed")
    assert test_workflows.EXECUTIONS == {"free": 1, "left": 1, "after": 1}  # right skipped
    done = _resolved(harness, message, "Rejected")
    assert f"*Approved* by <@{ALICE}>" in _text(done)
    assert f"*Rejected* by <@{BOB}>" in _text(done)
    decisions = harness.runtime.db.get_decisions(run_id)
    assert sorted((d.step_name, d.outcome.value, d.decided_by) for d in decisions) == [
        ("left", "confirmed", ALICE),
        ("right", "rejected", BOB),
    ]


# -- hostile or mismatched answers: refused, nothing stored -----------------------------------
def test_mismatched_and_malformed_answers_are_refused(harness: BotHarness) -> None:
    run_id = _start(harness, "route_me")
    message = harness.pause_message("route")
    harness.actor(ALICE)  # joins the channel
    token = _block(message, "decision")["elements"][0]["value"]
    seen = {m.ts for m in harness.ephemerals_for(ALICE)}
    # Retry is not an answer to a router; a malformed selection is no selection.
    for action_id, values in (
        (blocks.ACTION_RETRY, {}),
        (
            blocks.ACTION_CHOOSE_ROUTE,
            {blocks.ROUTE_BLOCK: {blocks.ACTION_ROUTE_CHOICE: {"selected_options": "fast"}}},
        ),
    ):
        payload = block_actions_payload(
            harness.state, user_id=ALICE, source=message, action_id=blocks.ACTION_CHOOSE_ROUTE
        )
        payload["actions"][0]["action_id"] = action_id
        payload["state"] = {"values": values}
        response = send_signed(harness.url, interactive_body(payload), signing_secret=SECRET)
        assert response.status_code == 200
        reply = _reply_to(harness, ALICE, seen)
        seen.add(reply.ts)
        assert "cannot be answered that way" in reply.text or "Choose a route" in reply.text
    # An edited output for a step that has no output review, straight into decide().
    result = harness.runtime.decider.decide(token, user_id=ALICE, action="edit", output="x")
    assert not result.ok and "cannot be answered that way" in result.message
    result = harness.runtime.decider.decide(token, user_id=ALICE, action="explode")
    assert not result.ok
    result = harness.runtime.decider.decide(
        token, user_id=ALICE, action="select", choices=[{"$ne": 1}],  # type: ignore[list-item]  # hostile on purpose
    )
    assert not result.ok
    assert harness.runtime.db.get_run(run_id).is_paused
    assert harness.runtime.db.get_decisions(run_id) == []


def test_a_router_choice_that_times_out_updates_its_message(harness: BotHarness) -> None:
    run_id = _start(harness, "route_deadline")
    message = harness.pause_message("route")
    assert "due <!date^" in _text(message) and "(then skip)" in _text(message)
    harness.clock.advance(timedelta(minutes=5, seconds=1))
    run_due_jobs(harness.runtime.scheduler)
    run = harness.wait_run(run_id, "completed")
    assert run.content == "after<None>"  # the router was skipped
    current = _resolved(harness, message, "Timed out")
    assert all(b.get("block_id") != blocks.ROUTE_BLOCK for b in current.blocks)
