"""The new pause kinds on the sandbox page in a real headless Chromium: a router's choice,
an output review with its edit, and an error pause; a screenshot of each message kind is
kept when SIGNOFF_E2E_SCREENSHOTS is set."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from bot.sandbox.run import Sandbox
from tests.e2e.test_sandbox_page import (
    by_ts,
    messages,
    screenshot,
    send,
    started_run_id,
    wait_run,
)


def _pause(page: Page, title: str):
    return messages(page).filter(has=page.locator(".bk-actions")).filter(has_text=title)


def test_router_selection_in_the_page(page: Page, sandbox: Sandbox, tmp_path: Path) -> None:
    send(page, "/signoff run order_triage 1042")
    run_id = started_run_id(page, "order_triage")
    pause = _pause(page, "order_triage › triage")
    expect(pause).to_contain_text("How should this complaint be handled?")
    choice = pause.locator('.bk-choices[data-kind="radio_buttons"]')
    expect(choice.locator("input[type=radio]")).to_have_count(3)
    expect(choice).to_contain_text("Ship a replacement")  # each choice's description
    decided = by_ts(page, pause)
    screenshot(page, tmp_path, "kind-router")

    choice.get_by_label("replace").check()
    # The pick stays picked (the page re-renders from the fake's state) and decides nothing.
    expect(choice.get_by_label("replace")).to_be_checked()
    assert wait_run(sandbox, run_id, "paused")
    pause.get_by_role("button", name="Approve").click()
    expect(decided).to_contain_text("Route chosen: replace by @alice")
    expect(decided.locator(".bk-button")).to_have_count(0)
    run = wait_run(sandbox, run_id, "completed")
    assert run.content == "customer told: replacement shipped for order 1042"


def test_output_review_with_edit_in_the_page(page: Page, sandbox: Sandbox, tmp_path: Path) -> None:
    send(page, "/signoff run summary_review")
    run_id = started_run_id(page, "summary_review")
    pause = _pause(page, "summary_review › summarize")
    expect(pause).to_contain_text("Publish this summary?")
    expect(pause).to_contain_text("Output (attempt 1 of 3)")
    expect(pause.locator("pre")).to_contain_text("orders,")
    decided = by_ts(page, pause)
    screenshot(page, tmp_path, "kind-output-review")

    pause.get_by_role("button", name="Edit output…").click()
    modal = page.get_by_test_id("modal")
    expect(modal.locator("#modal-title")).to_have_text("Edit summarize")
    box = modal.get_by_label("Output")
    expect(box).to_have_value(
        str(wait_run(sandbox, run_id, "paused").step_requirements[0].step_output.content)
    )  # prefilled
    box.fill("Q4: 60 orders, all shipped")
    screenshot(page, tmp_path, "kind-output-edit-modal")
    modal.get_by_test_id("modal-submit").click()
    expect(modal).to_have_count(0)
    expect(decided).to_contain_text("Edited and approved by @alice")
    expect(decided).to_contain_text("Q4: 60 orders, all shipped")
    run = wait_run(sandbox, run_id, "completed")
    assert run.content == "published: Q4: 60 orders, all shipped"


def test_error_pause_retry_in_the_page(page: Page, sandbox: Sandbox, tmp_path: Path) -> None:
    send(page, "/signoff run flaky_export")
    run_id = started_run_id(page, "flaky_export")
    pause = _pause(page, "flaky_export › export_orders")
    expect(pause).to_contain_text("export_orders failed (ConnectionError) on attempt 1")
    expect(pause.locator("pre")).to_contain_text("the warehouse reset the connection")
    expect(pause.locator(".bk-primary")).to_have_text("Retry")
    expect(pause.locator(".bk-danger")).to_have_text("Skip")
    decided = by_ts(page, pause)
    screenshot(page, tmp_path, "kind-error")

    pause.get_by_role("button", name="Retry").click()
    expect(decided).to_contain_text("Retry requested by @alice")
    run = wait_run(sandbox, run_id, "completed")
    assert str(run.content).startswith("Report: exported")
    expect(messages(page).filter(has_text="Completed (2 steps run)")).to_be_visible()


def test_parallel_signoff_then_a_confirmed_group_in_the_page(
    page: Page, sandbox: Sandbox, tmp_path: Path
) -> None:
    send(page, "/signoff run release_signoff v2.1")
    run_id = started_run_id(page, "release_signoff")
    pause = _pause(page, "release_signoff › 2 steps waiting")
    expect(pause).to_contain_text("Licences and notices in order?")
    expect(pause).to_contain_text("No open critical findings?")
    expect(pause.locator(".bk-actions")).to_have_count(2)  # each part decided on its own
    decided = by_ts(page, pause)
    screenshot(page, tmp_path, "kind-parallel")

    pause.locator('.bk-actions[data-block-id="decision:0"]').get_by_role(
        "button", name="Approve"
    ).click()
    expect(decided.locator(".bk-actions")).to_have_count(1)
    expect(decided).to_contain_text("Approved by @alice")
    assert wait_run(sandbox, run_id, "paused")
    screenshot(page, tmp_path, "kind-parallel-partial")
    decided.get_by_role("button", name="Approve").click()
    expect(decided.locator(".bk-button")).to_have_count(0)

    group = _pause(page, "release_signoff › ship")
    expect(group).to_contain_text("If approved, runs: tag_release → publish_release")
    screenshot(page, tmp_path, "kind-group")
    group.get_by_role("button", name="Approve").click()
    run = wait_run(sandbox, run_id, "completed")
    assert run.content == "published v2.1"
