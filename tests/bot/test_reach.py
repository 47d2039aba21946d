"""Approvers reached where they are, over real signed HTTP against the Slack fake: a direct
copy of the pause to each approver (user-group members expanded), decided once with every
copy updated; reminders in the thread and to each approver; the App Home published when
opened and refreshed when a pause or decision touches the person, with buttons that act in
place."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot import blocks
from bot.notify import HOME_REFRESH_INTERVAL, Kind
from bot.outbox import OUTBOX_EVENT
from bot.routing import Notify, SlackRoute, StepRoute
from bot.sandbox import (
    DEFAULT_CHANNEL_ID,
    Message,
    View,
    block_actions_payload,
    event_callback_payload,
    interactive_body,
    send_signed,
)
from bot.store import slack_outbox
from bot.testing import run_due_jobs
from engine import Step, UserInputField, Workflow
from tests.bot import workflows as test_workflows
from tests.bot.conftest import ALICE, BOB, CAROL, MALLORY, SECRET, BotHarness
from tests.bot.test_approval_flow import _start

GROUP = "S0APPROVERS"  # the sandbox's group: Alice and Bob


def _gate(name: str, timeout: timedelta | None = None, message: str = "Go?") -> Workflow:
    return Workflow(
        name=name,
        steps=[
            Step(
                name="gate",
                executor=test_workflows.counted(f"{name}.gate"),
                requires_confirmation=True,
                confirmation_message=message,
                on_reject="cancel",
                pause_timeout=timeout,
            ),
            Step(name="after", executor=test_workflows.counted(f"{name}.after")),
        ],
    )


@pytest.fixture
def bot_routes() -> list[SlackRoute]:
    return [
        # Bob listed and as a group member: one copy for him; Carol starts and may not decide.
        SlackRoute(
            workflow=_gate("both_ways", timedelta(hours=1), "Deploy <!channel> now?"),
            approvers=(BOB, GROUP),
            allow_requester=False,
            notify=Notify.both,
            reminder_before=timedelta(minutes=10),
        ),
        SlackRoute(workflow=_gate("dm_only"), approvers=(ALICE,), notify=Notify.dm),
        SlackRoute(workflow=_gate("soon", timedelta(minutes=30)), approvers=(ALICE,)),
        # The step overrides the route: direct messages for this step only.
        SlackRoute(
            workflow=_gate("by_step"),
            approvers=(BOB,),
            steps={"gate": StepRoute(notify=Notify.dm)},
        ),
        SlackRoute(workflow=_gate("anyone")),
        SlackRoute(workflow=_asks("asks_by_dm"), approvers=(ALICE,), notify=Notify.dm),
    ]


def _asks(name: str) -> Workflow:
    return Workflow(
        name=name,
        steps=[
            Step(
                name="configure",
                executor=test_workflows.counted(f"{name}.configure"),
                requires_user_input=True,
                user_input_message="How many?",
                user_input_schema=[UserInputField(name="count", field_type="int")],
            )
        ],
    )


def dm_channel(harness: BotHarness, user: str) -> str:
    return harness.state.open_dm(user).id


def has_buttons(message: Message | View) -> bool:
    return any(b.get("type") == "actions" for b in message.blocks)


def copy_for(harness: BotHarness, user: str, *, buttons: bool = True) -> Message:
    channel = dm_channel(harness, user)

    def find(state: Any) -> Message | None:
        for m in state.messages(channel, include_ephemeral=False):
            if not m.is_reply and has_buttons(m) == buttons:
                return m
        return None

    return harness.wait(find, f"DM copy for {user} ({'with' if buttons else 'without'} buttons)")


def home_of(harness: BotHarness, user: str, predicate: Any = None, what: str = "") -> View:
    def find(state: Any) -> View | None:
        view = state.home_view(user)
        return view if view is not None and (predicate is None or predicate(view)) else None

    return harness.wait(find, f"Home tab of {user} {what}".strip())


def refreshed_home_of(
    harness: BotHarness, user: str, predicate: Any = None, what: str = ""
) -> View:
    """The Home after a change it shows: a refresh nobody asked for waits
    ``HOME_REFRESH_INTERVAL`` after the last publish, so the clock moves past it first."""
    harness.clock.advance(HOME_REFRESH_INTERVAL)
    return home_of(harness, user, predicate, what)


def text_of(view: View | Message) -> str:
    return str(view.blocks)


def waiting_count(view: View) -> str:
    return str(view.blocks[0]["text"]["text"]) if view.blocks[0]["type"] == "header" else ""


def test_dm_fan_out_is_decided_once_and_every_copy_is_updated(harness: BotHarness) -> None:
    run_id = _start(harness, "both_ways")
    in_channel = harness.pause_message("gate")
    alice_copy, bob_copy = copy_for(harness, ALICE), copy_for(harness, BOB)
    req_id = harness.runtime.db.get_run(run_id).step_requirements[0].requirement_id
    for user, copy in ((ALICE, alice_copy), (BOB, bob_copy)):
        assert copy.metadata == {
            "event_type": OUTBOX_EVENT,
            "event_payload": {"key": f"{Kind.dm}:{req_id}:{user}"},
        }
        assert "both_ways › gate" in text_of(copy)
        assert "&lt;!channel&gt;" in text_of(copy)  # content escaped in the copy too
        assert f"<#{DEFAULT_CHANNEL_ID}>" in text_of(copy)  # where the run is followed
    dm_posts = [
        c for c in harness.state.calls("chat.postMessage") if str(c.params["channel"])[0] == "D"
    ]
    assert len(dm_posts) == 2, "one copy per approver: Bob listed twice gets one"
    assert harness.state.messages(dm_channel(harness, CAROL)) == [], "the requester may not"

    # Both click their own copy before either sees an update.
    clicks = [
        block_actions_payload(harness.state, user_id=user, source=copy, action_id=action)
        for user, copy, action in (
            (ALICE, alice_copy, blocks.ACTION_APPROVE),
            (BOB, bob_copy, blocks.ACTION_APPROVE),
        )
    ]
    for payload in clicks:
        response = send_signed(harness.url, interactive_body(payload), signing_secret=SECRET)
        assert response.status_code == 200
    harness.wait_run(run_id, "completed")
    (decision,) = harness.runtime.db.get_decisions(run_id)  # decided once
    assert test_workflows.EXECUTIONS.get("both_ways.gate") == 1  # and run once

    # Every copy (and the channel message) shows the one outcome, without buttons.
    for user in (ALICE, BOB):
        updated = copy_for(harness, user, buttons=False)
        assert "Approved" in text_of(updated) and f"<@{decision.decided_by}>" in text_of(updated)
    harness.wait(
        lambda s: not has_buttons(s.message(in_channel.channel, in_channel.ts)),
        "channel message updated",
    )
    loser = BOB if decision.decided_by == ALICE else ALICE
    told = harness.wait(
        lambda s: [m for m in s.messages(dm_channel(harness, loser)) if m.ephemeral_for == loser],
        "the second click answered in its DM",
    )
    assert "Already decided" in told[-1].text
    assert harness.wait_outbox_idle().get("failed") is None


def test_dm_only_route_sends_buttons_only_by_dm(harness: BotHarness) -> None:
    run_id = _start(harness, "dm_only")
    copy = copy_for(harness, ALICE)
    assert f"<#{DEFAULT_CHANNEL_ID}>" not in text_of(copy), "nothing to follow in the channel"
    channel_buttons = [m for m in harness.state.messages(DEFAULT_CHANNEL_ID) if has_buttons(m)]
    assert channel_buttons == []
    harness.actor(ALICE, channel_id=copy.channel).click(copy, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run_id, "completed")
    assert "Approved" in text_of(copy_for(harness, ALICE, buttons=False))
    counts = harness.wait_outbox_idle()
    assert counts.get("failed") is None, counts  # the channel's resolve does not wait forever


def test_a_step_route_can_ask_for_dms(harness: BotHarness) -> None:
    _start(harness, "by_step")
    copy = copy_for(harness, BOB)
    assert "by_step" in text_of(copy)
    assert not [m for m in harness.state.messages(DEFAULT_CHANNEL_ID) if has_buttons(m)]


def test_routes_refuse_an_unknown_notify() -> None:
    with pytest.raises(ValueError, match="notify='pager'"):
        SlackRoute(workflow=_gate("x"), notify="pager")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="notify='sms'"):
        StepRoute(notify="sms")  # type: ignore[arg-type]
    route = SlackRoute(workflow=_gate("y"), notify=Notify.dm)
    assert route.notify is Notify.dm
    assert route.posts_in_channel("gate"), "dm without approvers: no one to write to"


def test_reminder_goes_to_the_thread_and_to_each_approver(harness: BotHarness) -> None:
    run_id = _start(harness, "both_ways")
    copies = {user: copy_for(harness, user) for user in (ALICE, BOB)}
    harness.clock.advance(timedelta(minutes=50, seconds=1))
    assert run_due_jobs(harness.runtime.scheduler) == 1  # the reminder, not the deadline
    req_id = harness.runtime.db.get_run(run_id).step_requirements[0].requirement_id
    for user, copy in copies.items():

        def reply_in_copy(s: Any, c: Any = copy) -> Any:
            return next((m for m in s.thread(c.channel, c.ts) if m.ts != c.ts), None)

        reminder = harness.wait(reply_in_copy, f"reminder to {user}")
        assert "still waits for your decision" in reminder.text and "due <!date^" in reminder.text
        assert reminder.metadata == {
            "event_type": OUTBOX_EVENT,
            "event_payload": {"key": f"{Kind.dm_remind}:{req_id}:{user}"},
        }
    thread = harness.pause_message("gate").thread_ts
    assert thread is not None
    harness.wait(
        lambda s: any("still waits" in m.text for m in s.thread(DEFAULT_CHANNEL_ID, thread)),
        "reminder in the run's thread",
    )
    harness.wait_outbox_idle()
    assert run_due_jobs(harness.runtime.scheduler) == 0
    assert harness.runtime.scheduler.reconcile() == 0  # a poll does not remind again
    harness.wait_outbox_idle()
    for copy in copies.values():
        assert len(harness.state.thread(copy.channel, copy.ts)) == 2, "one reminder each"


def test_app_home_is_published_when_opened_and_refreshed_by_pauses_and_decisions(
    harness: BotHarness,
) -> None:
    alice = harness.actor(ALICE)
    assert alice.open_home().status_code == 200
    empty = home_of(harness, ALICE)
    assert waiting_count(empty) == "Waiting for you (0)"
    assert "Nothing waits for your decision." in text_of(empty)

    later = _start(harness, "both_ways")  # due in an hour
    sooner = _start(harness, "soon")  # due in 30 minutes: listed first
    home = refreshed_home_of(harness, ALICE, lambda v: waiting_count(v) == "Waiting for you (2)")
    sections = [b["text"]["text"] for b in home.blocks if b["type"] == "section"]
    assert sections[0].startswith("*soon › gate*") and sections[1].startswith("*both_ways › gate*")
    assert "&lt;!channel&gt;" in sections[1]  # content escaped
    actions = [b for b in home.blocks if b["type"] == "actions"]
    tokens = [
        harness.runtime.db.get_run(r).step_requirements[0].requirement_id for r in (sooner, later)
    ]
    assert [a["elements"][0]["value"] for a in actions] == tokens
    assert {a["elements"][0]["action_id"] for a in actions} == {blocks.ACTION_APPROVE}

    # Bob never opened his Home; as an approver of both_ways, it was published for him.
    bob_home = home_of(harness, BOB, lambda v: waiting_count(v) == "Waiting for you (1)")
    assert "both_ways" in text_of(bob_home)

    # A click in the Home tab acts in place, through the same decide path.
    alice.click(home, action_id=blocks.ACTION_APPROVE, block_id=f"decision:{tokens[0]}")
    harness.wait_run(sooner, "completed")
    home = refreshed_home_of(harness, ALICE, lambda v: waiting_count(v) == "Waiting for you (1)")
    assert "*soon › gate* approved" in text_of(home)  # her recent decisions
    assert sum(1 for b in home.blocks if b["type"] == "actions") == 1

    # The requester's Home: no buttons (she may not decide), her runs as they are now.
    harness.actor(CAROL).open_home()
    carol = home_of(harness, CAROL, lambda v: "Runs you started" in text_of(v))
    assert waiting_count(carol) == "Waiting for you (0)"
    assert "*both_ways*" in text_of(carol) and "*soon*" in text_of(carol)
    assert "Completed" in text_of(carol)


def _publishes(harness: BotHarness, user: str) -> int:
    return sum(1 for c in harness.state.calls("views.publish") if c.params.get("user_id") == user)


def test_a_burst_of_changes_refreshes_a_home_once_per_interval(harness: BotHarness) -> None:
    alice = harness.actor(ALICE)
    alice.open_home()
    home_of(harness, ALICE)
    assert _publishes(harness, ALICE) == 1
    for _ in range(5):  # five pauses that wait for her, one after the other
        harness.wait_run(_start(harness, "soon"), "paused")
    harness.wait_outbox_idle()  # everything due went out: her refresh waits for its time
    assert _publishes(harness, ALICE) == 1
    with harness.runtime.db.engine.connect() as conn:
        waiting = conn.execute(
            select(slack_outbox.c.id).where(
                slack_outbox.c.run_id == f"home:{ALICE}", slack_outbox.c.state == "pending"
            )
        ).all()
    # Not one per change: a refresh is added only while none waits (one more can join a
    # refresh that was being deferred at that moment).
    assert 1 <= len(waiting) <= 2

    home = refreshed_home_of(harness, ALICE, lambda v: waiting_count(v) == "Waiting for you (5)")
    harness.wait_outbox_idle()
    assert _publishes(harness, ALICE) == 2
    assert "soon › gate" in text_of(home)


def test_opening_the_tab_publishes_at_once_even_right_after_a_refresh(
    harness: BotHarness,
) -> None:
    alice = harness.actor(ALICE)
    alice.open_home()
    home_of(harness, ALICE)
    harness.wait_run(_start(harness, "soon"), "paused")
    alice.open_home()  # she looks again: no wait for the refresh interval
    home_of(harness, ALICE, lambda v: waiting_count(v) == "Waiting for you (1)", "opened again")
    assert _publishes(harness, ALICE) == 2


def test_a_stale_home_button_answers_on_the_refreshed_tab(harness: BotHarness) -> None:
    run_id = _start(harness, "both_ways")
    harness.actor(BOB).open_home()
    stale = home_of(harness, BOB, lambda v: waiting_count(v) == "Waiting for you (1)")
    copy = copy_for(harness, ALICE)
    harness.actor(ALICE, channel_id=copy.channel).click(copy, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run_id, "completed")
    refreshed_home_of(
        harness, BOB, lambda v: waiting_count(v) == "Waiting for you (0)", "refreshed"
    )
    # Bob's client still showed the old tab when he clicked.
    payload = block_actions_payload(
        harness.state, user_id=BOB, source=stale, action_id=blocks.ACTION_APPROVE
    )
    assert send_signed(harness.url, interactive_body(payload), signing_secret=SECRET).is_success
    answered = home_of(harness, BOB, lambda v: "Already decided" in text_of(v), "with the answer")
    assert f"<@{ALICE}>" in text_of(answered)
    assert len(harness.runtime.db.get_decisions(run_id)) == 1


def test_anyone_may_decide_refreshes_everyone_with_a_home_tab(harness: BotHarness) -> None:
    harness.actor(MALLORY).open_home()
    home_of(harness, MALLORY)
    _start(harness, "anyone")
    home = refreshed_home_of(harness, MALLORY, lambda v: waiting_count(v) == "Waiting for you (1)")
    assert "anyone › gate" in text_of(home)
    assert harness.state.home_view(BOB) is None, "no Home published for who never opened it"


def test_a_repeated_app_home_opened_publishes_once(harness: BotHarness) -> None:
    alice = harness.actor(ALICE)
    alice.open_home()
    home_of(harness, ALICE)
    payload = alice.last_payload
    assert payload is not None
    body = json.dumps(payload)
    response = send_signed(
        harness.url,
        body,
        signing_secret=SECRET,
        content_type="application/json",
        retry_num=1,
        retry_reason="http_timeout",
    )
    assert response.status_code == 200
    harness.wait_outbox_idle()
    assert len(harness.state.calls("views.publish")) == 1  # the retry was dropped at once


def test_an_approver_who_cannot_be_written_to_does_not_hold_up_the_run(
    harness: BotHarness,
) -> None:
    harness.state.fail_next("conversations.open", error="user_disabled", times=100)
    run_id = _start(harness, "both_ways")
    message = harness.pause_message("gate")
    harness.wait(lambda s: len(s.calls("conversations.open")) >= 2, "both direct messages tried")
    harness.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run_id, "completed")
    # The run's thread goes on while the direct messages wait for their retry.
    harness.wait(
        lambda s: any(
            "Completed" in m.text for m in s.thread(DEFAULT_CHANNEL_ID, message.thread_ts or "")
        ),
        "completion note in the run's thread",
    )
    harness.state.clear_faults()
    harness.clock.advance(timedelta(seconds=3))  # past the first retry's backoff
    harness.runtime.signoff.outbox_wakeup.set()
    harness.wait_outbox_idle()
    # Decided before their copies went out: nobody is asked any more.
    for user in (ALICE, BOB):
        assert harness.state.messages(dm_channel(harness, user)) == []
    assert len(harness.state.calls("conversations.open")) == 2


def test_a_retried_copy_finds_the_post_of_an_attempt_whose_answer_was_lost(
    harness: BotHarness,
) -> None:
    harness.state.fail_next("conversations.open", error="internal_error", times=2)
    run_id = _start(harness, "both_ways")
    message = harness.pause_message("gate")
    harness.wait(lambda s: len(s.calls("conversations.open")) >= 2, "first attempts failed")
    req_id = harness.runtime.db.get_run(run_id).step_requirements[0].requirement_id
    # As if Alice's first attempt had posted and only Slack's answer was lost.
    planted = harness.state.post_message(
        dm_channel(harness, ALICE),
        text="the copy an earlier attempt posted",
        user=harness.state.bot_user_id,
        bot_id=harness.state.bot_id,
        metadata={
            "event_type": OUTBOX_EVENT,
            "event_payload": {"key": f"{Kind.dm}:{req_id}:{ALICE}"},
        },
    )
    harness.clock.advance(timedelta(seconds=3))  # past the first retry's backoff
    harness.runtime.signoff.outbox_wakeup.set()
    bob_copy = copy_for(harness, BOB)  # nothing found for Bob: posted on the retry
    harness.wait_outbox_idle()
    assert [m.ts for m in harness.state.messages(dm_channel(harness, ALICE))] == [planted.ts]
    harness.actor(BOB, channel_id=bob_copy.channel).click(bob_copy, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run_id, "completed")
    # The found post is Alice's copy: the decision updates it like any other.
    harness.wait(
        lambda s: "Approved" in str(s.message(planted.channel, planted.ts).blocks),
        "the found copy updated",
    )
    harness.wait(
        lambda s: not has_buttons(s.message(message.channel, message.ts)),
        "the channel message updated",
    )


def test_input_asked_by_dm_opens_its_modal_from_the_copy(harness: BotHarness) -> None:
    run_id = _start(harness, "asks_by_dm")
    copy = copy_for(harness, ALICE)
    alice = harness.actor(ALICE, channel_id=copy.channel)
    assert alice.click(copy, action_id=blocks.ACTION_PROVIDE_INPUT).status_code == 200
    view = harness.wait(lambda s: s.top_view(ALICE), "input modal")
    assert alice.submit(view, {"field:count": "3"}).status_code == 200
    run = harness.wait_run(run_id, "completed")
    assert run.step_results[-1].content["user_input"] == {"count": 3}
    updated = copy_for(harness, ALICE, buttons=False)
    assert "Input given" in text_of(updated) and "count" in text_of(updated)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "app_home_opened", "user": "U" + "A" * 500, "tab": "home"},
        {"type": "app_home_opened", "user": 123, "tab": "home"},
        {"type": "app_home_opened", "user": "<!channel>", "tab": "home"},
        {"type": "app_home_opened", "tab": "home"},
        {"type": "app_home_opened", "user": ALICE, "tab": {"x": 1}},
    ],
)
def test_a_hostile_app_home_opened_is_refused_or_ignored(
    harness: BotHarness, event: dict[str, Any]
) -> None:
    payload = event_callback_payload(harness.state, event)
    response = send_signed(
        harness.url, json.dumps(payload), signing_secret=SECRET, content_type="application/json"
    )
    assert response.status_code in (200, 400)  # acknowledged, or refused: never a 5xx
    # A real event after it is handled: the hostile one was ignored, not left in the way.
    harness.actor(BOB).open_home()
    home_of(harness, BOB)
    harness.wait_outbox_idle()
    assert [c.params["user_id"] for c in harness.state.calls("views.publish")] == [BOB]


def test_app_home_opened_is_recorded_before_it_is_acknowledged(harness: BotHarness) -> None:
    alice = harness.actor(ALICE)
    response = alice.open_home()  # returns with Slack's ack
    assert response.status_code == 200
    assert alice.last_payload is not None
    key = f"{Kind.home}:{ALICE}:opened:{alice.last_payload['event_id']}"
    with harness.runtime.db.engine.connect() as conn:
        recorded = conn.execute(
            select(slack_outbox.c.kind).where(slack_outbox.c.dedupe_key == key)
        ).all()
    assert [r.kind for r in recorded] == [Kind.home_asked]  # durable when Slack got its 200
    home_of(harness, ALICE)
