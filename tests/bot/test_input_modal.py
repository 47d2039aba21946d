"""The input modal: built from the schema, invalid values shown inline, valid ones typed."""

from __future__ import annotations

from bot import blocks
from bot.sandbox import interactive_body, send_signed, view_closed_payload
from tests.bot import workflows as test_workflows
from tests.bot.conftest import ALICE, SECRET, BotHarness
from tests.bot.test_approval_flow import _start


def _element_types(view) -> dict[str, str]:
    return {
        b["block_id"]: b["element"]["type"] for b in view.payload["blocks"] if b["type"] == "input"
    }


def test_modal_from_schema_rejects_bad_values_then_takes_good_ones(harness: BotHarness) -> None:
    run_id = _start(harness, "configure_me")
    message = harness.pause_message("configure")
    actor = harness.actor(ALICE)
    assert actor.click(message, action_id=blocks.ACTION_PROVIDE_INPUT).status_code == 200
    view = harness.wait(lambda s: s.top_view(ALICE), "input modal")
    assert _element_types(view) == {
        "field:threshold": "number_input",
        "field:mode": "static_select",
        "field:batch_size": "number_input",
        "field:dry_run": "checkboxes",
    }
    inputs = {b["block_id"]: b for b in view.payload["blocks"] if b["type"] == "input"}
    assert inputs["field:threshold"]["element"]["is_decimal_allowed"] is True
    assert inputs["field:batch_size"]["element"]["is_decimal_allowed"] is False
    assert inputs["field:batch_size"]["optional"] is True
    assert inputs["field:threshold"].get("optional", False) is False
    assert inputs["field:threshold"]["hint"]["text"] == "0.0-1.0"

    bad = actor.submit(
        view, {"field:threshold": "lots", "field:mode": "fast", "field:batch_size": "2.5"}
    )
    assert bad.status_code == 200
    body = bad.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"field:threshold", "field:batch_size"}
    assert harness.runtime.db.get_run(run_id).is_paused  # nothing stored
    assert harness.runtime.db.get_decisions(run_id) == []

    good = actor.submit(
        view,
        {
            "field:threshold": "0.75",
            "field:mode": "accurate",
            "field:batch_size": "50",
            "field:dry_run": ["true"],
        },
    )
    assert good.status_code == 200 and not good.content.strip()
    run = harness.wait_run(run_id, "completed")
    content = run.step_results[-1].content
    assert content["user_input"] == {
        "threshold": 0.75,
        "mode": "accurate",
        "batch_size": 50,
        "dry_run": True,
    }
    assert content["types"] == {
        "threshold": "float",
        "mode": "str",
        "batch_size": "int",
        "dry_run": "bool",
    }
    harness.wait(
        lambda s: (
            "Input given" in str(s.message(message.channel, message.ts).blocks)
            and "accurate" in str(s.message(message.channel, message.ts).blocks)
        ),
        "values shown on the message",
    )


def test_closing_the_modal_decides_nothing(harness: BotHarness) -> None:
    run_id = _start(harness, "configure_me")
    message = harness.pause_message("configure")
    actor = harness.actor(ALICE)
    actor.click(message, action_id=blocks.ACTION_PROVIDE_INPUT)
    view = harness.wait(lambda s: s.top_view(ALICE), "input modal")
    payload = view_closed_payload(harness.state, user_id=ALICE, view=view)
    response = send_signed(harness.url, interactive_body(payload), signing_secret=SECRET)
    assert response.status_code == 200
    assert harness.runtime.db.get_run(run_id).is_paused
    assert "configure" not in test_workflows.EXECUTIONS


def test_approve_button_on_input_step_points_to_the_form(harness: BotHarness) -> None:
    run_id = _start(harness, "configure_me")
    harness.pause_message("configure")
    pause = harness.runtime.signoff.store
    token = harness.runtime.db.get_run(run_id).step_requirements[0].requirement_id
    assert pause.get_pause(token) is not None
    result = harness.runtime.decider.decide(token, user_id=ALICE, action="confirm")
    assert not result.ok and "input" in result.message
    assert harness.runtime.db.get_run(run_id).is_paused
