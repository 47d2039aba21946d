"""``/signoff`` sub-commands, and runs started outside the bot."""

from __future__ import annotations

from bot import blocks
from engine import RunStatus
from tests.bot.conftest import ALICE, BOB, CAROL, BotHarness
from tests.bot.test_approval_flow import _start


def _reply(harness: BotHarness, text: str, user: str = ALICE) -> dict:
    response = harness.actor(user).slash("/signoff", text)
    assert response.status_code == 200
    return response.json()


def test_help_and_bad_arguments_start_nothing(harness: BotHarness) -> None:
    for text in ("", "help", "bogus", "run", "run no_such_workflow", "status", "status nope!"):
        body = _reply(harness, text)
        assert body["response_type"] == "ephemeral"
        assert "/signoff run" in body["text"], text
    assert harness.runtime.db.list_runs() == []
    assert "Unknown workflow `no_such_workflow`" in _reply(harness, "run no_such_workflow")["text"]


def test_list_status_and_pending(harness: BotHarness) -> None:
    listed = _reply(harness, "list")
    assert "approve_me" in str(listed["blocks"]) and "prepare → ship → announce" in str(
        listed["blocks"]
    )
    run_id = _start(harness, "approve_me", user=CAROL)
    harness.pause_message("ship")
    status = _reply(harness, f"status {run_id}")
    assert "Waiting for a decision" in str(status["blocks"]) and "ship" in str(status["blocks"])
    assert f"`{run_id}`" in str(_reply(harness, "pending", user=ALICE)["blocks"])
    # Carol started it and may not approve her own run here: nothing waits for her.
    assert "Nothing waits" in _reply(harness, "pending", user=CAROL)["text"]
    assert "1 waiting" in _reply(harness, "pending", user=BOB)["text"]


def test_failed_run_is_reported(harness: BotHarness) -> None:
    run_id = _start(harness, "broken")
    run = harness.wait_run(run_id, "error")
    assert "disk full" in run.error
    harness.wait(
        lambda s: any(
            "Failed" in m.text and "disk full" in m.text
            for m in s.messages(include_ephemeral=False)
        ),
        "failure note",
    )


def test_run_started_elsewhere_is_posted(harness: BotHarness) -> None:
    # A script against the same database, with its own Workflow object (not observed).
    from engine import SqliteDb
    from tests.bot.workflows import make_workflows

    script_wf = next(w for w in make_workflows() if w.name == "approve_me")
    script_wf.db = SqliteDb(db_file=harness.db_file)
    run = script_wf.run("from cron", user_id=None)
    assert run.status is RunStatus.paused
    assert harness.runtime.publisher.sync_paused_runs() == 1
    message = harness.pause_message("ship")
    assert "a script" in str(message.blocks)
    assert harness.runtime.publisher.sync_paused_runs() == 0  # posted once
    harness.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run.run_id, "completed")


def test_ack_comes_before_a_slow_step_finishes(harness: BotHarness) -> None:
    from tests.bot import workflows as test_workflows

    run_id = _start(harness, "slow_one")
    message = harness.pause_message("gate")
    response = harness.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    assert response.status_code == 200
    # The click was acknowledged while the step it allowed is still blocked on the gate.
    assert harness.wait_run(run_id, "running").status is RunStatus.running
    harness.wait(
        lambda s: "Approved" in str(s.message(message.channel, message.ts).blocks),
        "message updated while the step runs",
    )
    test_workflows.SLOW_GATE.set()
    harness.wait_run(run_id, "completed")
