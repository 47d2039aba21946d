"""The sandbox page in a real headless Chromium: the bot behind it is the real one, reached by
real signed Slack payloads, with the example workflows on a throwaway SQLite file."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from bot.sandbox.run import Sandbox

# Set to a directory to keep the screenshots after the run (they always go to tmp_path).
SHOTS = os.environ.get("SIGNOFF_E2E_SCREENSHOTS")


def send(page: Page, text: str) -> None:
    composer = page.get_by_test_id("composer")
    composer.fill(text)
    composer.press("Enter")
    expect(composer).to_have_value("")


def messages(page: Page) -> Locator:
    return page.get_by_test_id("message")


def started_run_id(page: Page, workflow: str) -> str:
    """The run id from the bot's ephemeral "Started <workflow> (run `…`)" answer."""
    ack = messages(page).filter(has_text=f"Started {workflow}")
    expect(ack).to_contain_text("Only visible to you")
    found = re.search(r"run ([0-9a-f]{8,64})", ack.inner_text())
    assert found, ack.inner_text()
    return found.group(1)


def by_ts(page: Page, message: Locator) -> Locator:
    """The message by its ts: stays the same element across chat.update."""
    ts = message.get_attribute("data-ts")
    assert ts
    return page.locator(f'[data-testid=message][data-ts="{ts}"]')


def wait_run(sandbox: Sandbox, run_id: str, status: str, timeout: float = 15.0) -> Any:
    assert sandbox.runtime is not None
    deadline = time.monotonic() + timeout
    while True:
        run = sandbox.runtime.db.get_run(run_id)
        if run is not None and run.status.value == status:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is {run.status if run else 'missing'}")
        time.sleep(0.05)


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SHOTS) / path.name)
    return path


def test_start_a_run_and_approve_it(page: Page, sandbox: Sandbox, tmp_path: Path) -> None:
    expect(page.get_by_role("heading", name="#signoff", exact=True)).to_be_visible()
    expect(page.get_by_test_id("user-picker")).to_have_value("U0ALICE")
    expect(page.locator("#live-text")).to_have_text("live")

    send(page, "/signoff run data_pipeline")
    run_id = started_run_id(page, "data_pipeline")
    pause = (
        messages(page)
        .filter(has=page.locator(".bk-actions"))
        .filter(has_text="data_pipeline › process_data")
    )
    expect(pause.get_by_role("button", name="Approve")).to_be_visible()
    expect(pause.locator(".bk-header")).to_have_text("data_pipeline › process_data")
    expect(pause).to_contain_text("Process sensitive data?")
    # One context line: who started it and when, and a link to the run's root message,
    # with the run id once and short; no fields repeating the header.
    context = pause.locator(".bk-context")
    expect(context).to_have_count(1)
    expect(context).to_contain_text("Started by @alice")
    expect(context.locator("time.slack-date").first).to_contain_text("Today")
    expect(context.get_by_role("link", name=f"run {run_id[:8]}")).to_be_visible()
    expect(pause.locator(".bk-fields")).to_have_count(0)
    expect(pause).not_to_contain_text(run_id)
    expect(pause).not_to_contain_text("Deadline")
    expect(pause.locator("pre")).to_contain_text('"orders": 60')
    expect(pause.locator(".bk-primary")).to_have_text("Approve")
    expect(pause.locator(".bk-danger")).to_have_text("Reject")
    # The pause sits in the thread of the run's root message.
    expect(page.locator(".thread").filter(has=pause)).to_have_count(1)
    screenshot(page, tmp_path, "1-pause")

    # Reject has a confirm dialog; backing out of it sends nothing.
    pause.get_by_role("button", name="Reject", exact=True).click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_contain_text("Reject this step?")
    dialog.get_by_role("button", name="Back").click()
    expect(dialog).to_have_count(0)
    assert wait_run(sandbox, run_id, "paused")

    decided = by_ts(page, pause)
    pause.get_by_role("button", name="Approve").click()
    expect(decided).to_contain_text("Approved by @alice")
    expect(decided.locator(".bk-button")).to_have_count(0)
    expect(messages(page).filter(has_text="Completed (3 steps run)")).to_be_visible()
    root = messages(page).filter(
        has=page.locator(".bk-header", has_text=re.compile("^data_pipeline$"))
    )
    expect(root).to_contain_text("Completed")
    expect(root).to_contain_text(run_id)  # the full id, for /signoff status
    # Emoji come from the bundled sprite, not from a system font.
    expect(root.locator(".emoji-img").first).to_be_visible()
    run = wait_run(sandbox, run_id, "completed")
    assert [s.step_name for s in run.step_results] == ["fetch_data", "process_data", "save_results"]
    screenshot(page, tmp_path, "2-approved")


def test_input_modal_shows_the_bots_errors_inline(
    page: Page, sandbox: Sandbox, tmp_path: Path
) -> None:
    send(page, "/signoff run configurable_pipeline")
    run_id = started_run_id(page, "configurable_pipeline")
    pause = (
        messages(page)
        .filter(has=page.locator(".bk-actions"))
        .filter(has_text="configurable_pipeline › process")
    )
    decided = by_ts(page, pause)
    pause.get_by_role("button", name="Provide input…").click()

    modal = page.get_by_test_id("modal")
    expect(modal.locator("#modal-title")).to_have_text("process")  # the step, not "Signoff"
    expect(modal).to_contain_text("Configure processing:")
    expect(modal).not_to_contain_text("(float)")  # no Python type names
    expect(modal.get_by_role("textbox", name="Batch size (optional)")).to_be_visible()
    expect(modal.get_by_text("Processing threshold (0.0-1.0)")).to_be_visible()
    expect(modal.locator(".bk-optional")).to_have_count(1)  # batch_size only
    threshold = modal.get_by_label("threshold")
    threshold_error = modal.locator('[data-input-block="field:threshold"] .bk-error')

    # Required fields are checked before anything is sent, as Slack's client does; a bad
    # number the client can see is shown in the same round.
    batch_error = modal.locator('[data-input-block="field:batch_size"] .bk-error')
    modal.get_by_label("batch size").fill("2.5")
    modal.get_by_test_id("modal-submit").click()
    expect(threshold_error).to_have_text("Please complete this required field.")
    expect(batch_error).to_have_text("Enter a whole number.")
    modal.get_by_label("batch size").fill("")

    threshold.fill("lots")
    modal.get_by_label("mode").select_option("accurate")
    modal.get_by_test_id("modal-submit").click()
    expect(threshold_error).not_to_have_text("Please complete this required field.")
    expect(threshold_error).not_to_be_empty()  # the bot's response_action: errors
    expect(modal.locator('[data-input-block="field:threshold"]')).to_have_class(
        re.compile("has-error")
    )
    assert wait_run(sandbox, run_id, "paused")
    screenshot(page, tmp_path, "3-modal-error")

    threshold.fill("0.5")
    modal.get_by_test_id("modal-submit").click()
    expect(modal).to_have_count(0)
    expect(decided).to_contain_text("Input given by @alice")
    expect(decided).to_contain_text("threshold: 0.5")
    expect(decided).to_contain_text("mode: accurate")
    run = wait_run(sandbox, run_id, "completed")
    assert "threshold=0.5, mode=accurate" in str(run.content)
    screenshot(page, tmp_path, "4-input-given")


def test_ephemeral_answers_belong_to_the_person_acting(page: Page, sandbox: Sandbox) -> None:
    send(page, "/signoff list")
    listing = messages(page).filter(has_text="configurable_pipeline")
    expect(listing.locator(".bk-header")).to_have_text("Workflows")
    expect(listing).to_contain_text("Only visible to you")

    send(page, "/deploy now")
    expect(messages(page).filter(has_text="is not a valid command")).to_contain_text("Slackbot")

    page.get_by_test_id("user-picker").select_option("U0BOB")
    expect(messages(page)).to_have_count(0)  # alice's ephemerals are hers
    send(page, "hello from bob")
    expect(messages(page).filter(has_text="hello from bob")).to_contain_text("Bob Builder")

    page.get_by_test_id("user-picker").select_option("U0ALICE")
    expect(messages(page).filter(has_text="Workflows")).to_have_count(1)
    listing.get_by_role("button", name="Dismiss").click()
    expect(messages(page).filter(has_text="Workflows")).to_have_count(0)


MRKDWN_CASES: list[tuple[str, list[str], list[str]]] = [
    # (mrkdwn, must appear in the HTML, must not appear)
    ("*bold* _it_ ~gone~", ["<b>bold</b>", "<i>it</i>", "<s>gone</s>"], []),
    ("data_pipeline › step_name", ["data_pipeline › step_name"], ["<i>"]),
    ("`a *b* c`", ['<code class="code">a *b* c</code>'], ["<b>"]),
    ("```x &lt; y\n*z*```", ['<pre class="pre">x &lt; y\n*z*</pre>'], ["<b>"]),
    ("hi <@U0BOB>", ['data-user="U0BOB">@bob</span>'], []),
    ("<!subteam^S0APPROVERS>", [">@approvers</span>"], []),
    ("<#C0GENERAL>", [">#general</span>"], []),
    (
        "<!date^1764000000^{date_num}|fallback>",
        ['datetime="2025-11-24T16:00:00.000Z"'],
        ["fallback"],
    ),
    (
        "<https://example.com/a?b=1&amp;c=2|the docs>",
        ['<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener">the docs</a>'],
        [],
    ),
    ("&lt;script&gt;alert(1)&lt;/script&gt;", ["&lt;script&gt;"], ["<script>"]),
    ("<img src=x onerror=alert(1)>", ["&lt;img src=x onerror=alert(1)&gt;"], ["<img"]),
    # Emoji from the bundled sprite (issue 10, bug 7): short names and unicode alike.
    (
        ":white_check_mark: done",
        ['title=":white_check_mark:"', "emoji-img", "</span> done"],
        ["> :white"],
    ),
    ("ship 🚀 now", ['class="emoji emoji-img" role="img" aria-label="🚀"'], []),
    ("© 2026", ["© 2026"], ["emoji-img"]),
    ("&gt; quoted\nplain", ['<span class="quote">quoted</span>plain'], []),
]


def test_mrkdwn_renders_like_slack_and_escapes_everything(page: Page) -> None:
    render = """([text]) => Mrkdwn.render(text, {
        userName: (id) => ({U0BOB: "bob"})[id] || id,
        channelName: (id) => ({C0GENERAL: "general"})[id] || id,
        groupHandle: (id) => ({S0APPROVERS: "approvers"})[id] || id,
    })"""
    for text, present, absent in MRKDWN_CASES:
        html = page.evaluate(render, [text])
        for part in present:
            assert part in html, (text, html)
        for part in absent:
            assert part not in html, (text, html)


def test_a_stale_confirm_dialog_is_told_who_decided(
    page: Page, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Bug 2: someone else decides while the Reject dialog is open; confirming it tells the
    person who decided and when, in the thread, instead of failing."""
    from bot import blocks
    from bot.sandbox import SlackActor

    send(page, "/signoff run data_pipeline")
    run_id = started_run_id(page, "data_pipeline")
    pause = messages(page).filter(has=page.locator(".bk-actions"))
    decided = by_ts(page, pause)
    pause.get_by_role("button", name="Reject", exact=True).click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_be_visible()

    assert sandbox.runtime is not None and sandbox.bot_server is not None
    stored = sandbox.fake.state.message("C0SIGNOFF", str(decided.get_attribute("data-ts")))
    assert stored is not None
    with SlackActor(
        bot_url=f"{sandbox.bot_server.url}/slack/events",
        signing_secret=sandbox.signing_secret,
        fake=sandbox.fake,
        user_id="U0BOB",
        channel_id="C0SIGNOFF",
    ) as bob:
        assert bob.click(stored, action_id=blocks.ACTION_APPROVE).status_code == 200
    expect(decided).to_contain_text("Approved by @bob")

    dialog.get_by_role("button", name="Reject").click()
    told = messages(page).filter(has_text="Already decided")
    expect(told).to_contain_text("approved by @bob")
    expect(told).to_contain_text("Only visible to you")
    expect(page.locator(".thread").filter(has=told)).to_have_count(1)  # in the thread
    expect(page.locator(".toast.error")).to_have_count(0)
    assert wait_run(sandbox, run_id, "completed")
    screenshot(page, tmp_path, "5-stale-confirm")


def test_hostile_run_input_stays_text(page: Page, sandbox: Sandbox, tmp_path: Path) -> None:
    send(page, "/signoff run data_pipeline ```<!channel> <!here> <@U0BOB> `x`")
    pause = messages(page).filter(has=page.locator(".bk-actions"))
    context = pause.locator(".bk-context")
    expect(context).to_contain_text("<!channel> <!here> <@U0BOB>")
    expect(pause.locator(".mention")).to_have_count(1)  # only "Started by @alice"
    screenshot(page, tmp_path, "6-hostile-input")


def test_people_by_name_and_a_narrow_screen(browser: Any, sandbox: Sandbox, tmp_path: Path) -> None:
    """Bugs 5 and 8: ?as= takes the names the README uses, an unknown one is named; below
    600 px the person and channel can still be switched."""
    context = browser.new_context(viewport={"width": 480, "height": 800})
    try:
        narrow = context.new_page()
        narrow.goto(f"{sandbox.page_url}?as=bob")
        expect(narrow.get_by_test_id("user-picker")).to_have_value("U0BOB")
        expect(narrow.get_by_test_id("user-picker")).to_be_visible()
        general = narrow.locator(".nav-item", has_text="general")
        expect(general).to_be_visible()
        general.click()
        expect(narrow.get_by_role("heading", name="#general", exact=True)).to_be_visible()
        screenshot(narrow, tmp_path, "7-narrow")

        narrow.goto(f"{sandbox.page_url}?as=zed")
        expect(narrow.locator(".toast")).to_contain_text("no user 'zed'")
        expect(narrow.get_by_test_id("user-picker")).to_have_value("U0ALICE")
    finally:
        context.close()


def test_the_app_home_lists_what_waits_and_acts_in_place(
    page: Page, sandbox: Sandbox, tmp_path: Path
) -> None:
    send(page, "/signoff run data_pipeline")
    run_id = started_run_id(page, "data_pipeline")
    expect(
        messages(page).filter(has=page.locator(".bk-actions")).filter(has_text="process_data")
    ).to_be_visible()

    page.get_by_test_id("app-home").click()  # Slack sends app_home_opened; the bot publishes
    home = page.get_by_test_id("home")
    expect(home.locator(".bk-header").first).to_have_text("Waiting for you (1)")
    expect(home).to_contain_text("data_pipeline › process_data")
    expect(home).to_contain_text("Process sensitive data?")
    expect(home).to_contain_text("Runs you started")
    expect(page.get_by_test_id("composer")).to_be_hidden()  # a Home tab has no composer
    screenshot(page, tmp_path, "home-1-waiting")

    home.get_by_role("button", name="Approve").click()  # acts in place, as in the channel
    expect(home.locator(".bk-header").first).to_have_text("Waiting for you (0)")
    expect(home).to_contain_text("Nothing waits for your decision.")
    expect(home).to_contain_text("data_pipeline › process_data approved")
    wait_run(sandbox, run_id, "completed")
    screenshot(page, tmp_path, "home-2-decided")

    page.locator(".nav-item", has_text="signoff").first.click()  # back to the channel
    expect(page.get_by_role("heading", name="#signoff", exact=True)).to_be_visible()
    expect(messages(page).filter(has_text="Approved by @alice")).to_be_visible()


def test_a_command_typed_before_the_page_has_its_state_is_sent(page: Page) -> None:
    """The page's first state (who is acting) arrives after the person typed and pressed
    Enter: the command waits for it and is sent, instead of failing as from nobody."""
    held: list[Any] = []

    def hold_the_first(route: Any) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)  # unanswered for now

    page.route("**/page/api/state*", hold_the_first)
    page.reload(wait_until="domcontentloaded")
    while not held:  # exactly this: the page asked for its state
        page.wait_for_timeout(10)
    composer = page.get_by_test_id("composer")
    composer.fill("/signoff run data_pipeline")
    composer.press("Enter")
    held[0].continue_()
    expect(composer).to_have_value("")
    assert started_run_id(page, "data_pipeline")  # sent, as the person the page shows
