"""Approval policies in Slack, over real signed HTTP against the Slack fake: progress of a
pause that needs several people shown in place (message and DM copies), the voter told
how many more it takes, a second click and an excluded person told why; groups with their
own counts (both must sign, a person in both counts for one)."""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from typing import Any

import pytest

from bot import blocks
from bot.config import Settings
from bot.policies import VOTE_LEASE, Approvals, apply_route_policy, assign
from bot.routing import Notify, SlackRoute
from bot.runs_cli import show_runs
from bot.sandbox import (
    DEFAULT_CHANNEL_ID,
    Message,
    block_actions_payload,
    interactive_body,
    send_signed,
)
from engine import Parallel, Step, Workflow
from tests.bot import workflows as test_workflows
from tests.bot.conftest import ALICE, BOB, CAROL, MALLORY, SECRET, BotHarness
from tests.bot.test_approval_flow import _start
from tests.bot.test_reach import (
    copy_for,
    has_buttons,
    home_of,
    refreshed_home_of,
    text_of,
    waiting_count,
)

DAVE, ERIN = "U0DAVE", "U0ERIN"
SRE, SECURITY = "S0SRE", "S0SECURITY"


def _gate(name: str, **policy: Any) -> Workflow:
    return Workflow(
        name=name,
        steps=[
            Step(name="build", executor=test_workflows.counted(f"{name}.build")),
            Step(
                name="ship",
                executor=test_workflows.counted(f"{name}.ship"),
                requires_confirmation=True,
                confirmation_message="Ship it?",
                on_reject="cancel",
                **policy,
            ),
        ],
    )


def _four_eyes() -> Workflow:
    return Workflow(
        name="four_eyes",
        steps=[
            Step(
                name="review",
                executor=test_workflows.counted("four_eyes.review"),
                requires_confirmation=True,
            ),
            Step(
                name="ship",
                executor=test_workflows.counted("four_eyes.ship"),
                requires_confirmation=True,
                distinct_from=["review"],
            ),
        ],
    )


def _fan() -> Workflow:
    return Workflow(
        name="fan_votes",
        steps=[
            Parallel(
                Step(
                    name="left",
                    executor=test_workflows.counted("fan_votes.left"),
                    requires_confirmation=True,
                    approvals=2,
                ),
                Step(
                    name="right",
                    executor=test_workflows.counted("fan_votes.right"),
                    requires_confirmation=True,
                ),
                name="fan",
            ),
        ],
    )


@pytest.fixture
def bot_routes() -> list[SlackRoute]:
    return [
        # Route-level allow_requester=False, written onto the engine's step at load.
        SlackRoute(workflow=_gate("two_of_them", approvals=2), allow_requester=False),
        SlackRoute(
            workflow=_gate("two_by_dm", approvals=2),
            approvers=(ALICE, BOB, MALLORY),
            notify=Notify.both,
        ),
        SlackRoute(workflow=_four_eyes()),
        SlackRoute(workflow=_gate("two_to_reject", approvals=2, reject_quorum=2)),
        SlackRoute(workflow=_fan()),
        SlackRoute(
            workflow=_gate("two_by_dm_only", approvals=2), approvers=(ALICE, BOB), notify=Notify.dm
        ),
        SlackRoute(
            workflow=_gate("sre_and_security"),
            require=(Approvals(group=SRE, count=1), Approvals(group=SECURITY, count=1)),
        ),
    ]


@pytest.fixture
def groups(harness: BotHarness) -> BotHarness:
    state = harness.state
    for user, name in ((DAVE, "dave"), (ERIN, "erin")):
        state.add_user(user, name, real_name=name.title())
    # Carol is in both groups; Alice SRE only; Dave security only; Erin in neither.
    state.add_usergroup(SRE, "sre", [ALICE, CAROL], name="SRE")
    state.add_usergroup(SECURITY, "security", [CAROL, DAVE], name="Security")
    return harness


def _click(h: BotHarness, user: str, message: Message, action: str = blocks.ACTION_APPROVE) -> str:
    """Click as ``user`` and return the ephemeral reply to this click."""
    before = {m.ts for m in h.ephemerals_for(user)}
    response = h.actor(user).click(message, action_id=action)
    assert response.status_code == 200
    replies = h.wait(
        lambda s: [
            m for m in s.messages(message.channel) if m.ephemeral_for == user and m.ts not in before
        ],
        f"the reply to {user}'s click",
    )
    assert len(replies) == 1
    return str(replies[0].text)


def _notes(h: BotHarness, message: Message, needle: str) -> list[Message]:
    assert message.thread_ts is not None
    return [
        m
        for m in h.state.thread(message.channel, message.thread_ts)
        if needle in m.text and not m.ephemeral_for
    ]


def test_a_vote_shows_progress_in_place_and_keeps_the_buttons(harness: BotHarness) -> None:
    run_id = _start(harness, "two_of_them", user=CAROL)
    message = harness.pause_message("ship")

    assert _click(harness, ALICE, message) == "You approved *ship*; 1 more needed."

    def progressed(state: Any) -> Message | None:
        current = state.message(message.channel, message.ts)
        return current if "1 of 2 approvals" in text_of(current) else None

    current = harness.wait(progressed, "pause message shows the progress")
    assert f"1 of 2 approvals — <@{ALICE}>" in text_of(current)
    assert has_buttons(current), "the others still decide in place"
    assert harness.runtime.db.get_run(run_id).is_paused
    assert test_workflows.EXECUTIONS.get("two_of_them.ship") is None

    # A second click by the same person counts once and says so.
    assert "You already approved *ship*" in _click(harness, ALICE, message)
    # The requester is excluded (the route's allow_requester=False).
    assert "not allowed" in _click(harness, CAROL, message)

    harness.actor(BOB).click(message, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run_id, "completed")
    assert test_workflows.EXECUTIONS["two_of_them.ship"] == 1
    decisions = harness.runtime.db.get_decisions(run_id)
    assert [(d.decided_by, d.is_vote) for d in decisions] == [(ALICE, True), (BOB, False)]

    def resolved(state: Any) -> Message | None:
        now = state.message(message.channel, message.ts)
        return now if not has_buttons(now) and "Approved" in text_of(now) else None

    assert f"<@{BOB}>" in text_of(harness.wait(resolved, "pause message resolved"))
    harness.wait_outbox_idle()
    assert len(_notes(harness, message, f"<@{ALICE}> approved *ship*")) == 1  # one per vote


def test_route_allow_requester_is_enforced_by_the_engine(harness: BotHarness) -> None:
    route = harness.runtime.signoff.routes["two_of_them"]
    step = route.workflow.steps[1]
    assert step.allow_requester is False and step.approvals == 2
    run_id = _start(harness, "two_of_them", user=CAROL)
    harness.pause_message("ship")
    assert harness.runtime.db.get_run(run_id).step_requirements[0].excluded_deciders == [CAROL]


def test_dm_copies_show_the_progress_too(harness: BotHarness) -> None:
    run_id = _start(harness, "two_by_dm", user=CAROL)
    message = harness.pause_message("ship")
    copy_for(harness, BOB)  # posted before the vote
    assert _click(harness, ALICE, message) == "You approved *ship*; 1 more needed."

    def progressed(state: Any) -> Message | None:
        copy = copy_for(harness, BOB)
        return copy if f"1 of 2 approvals — <@{ALICE}>" in text_of(copy) else None

    bob_copy = harness.wait(progressed, "Bob's copy shows Alice's approval")
    assert has_buttons(bob_copy)
    # Alice's own copy shows what she gave in place of the buttons.
    alice_copy = copy_for(harness, ALICE, buttons=False)
    assert "*You approved* — 1 more approval needed" in text_of(alice_copy)
    response = harness.actor(BOB).click(bob_copy, action_id=blocks.ACTION_APPROVE)
    assert response.status_code == 200
    harness.wait_run(run_id, "completed")
    assert "Approved" in text_of(copy_for(harness, MALLORY, buttons=False))


def test_a_decider_of_an_earlier_step_is_told_why_not(harness: BotHarness) -> None:
    run_id = _start(harness, "four_eyes", user=CAROL)
    review = harness.pause_message("review")
    harness.actor(ALICE).click(review, action_id=blocks.ACTION_APPROVE)
    ship = harness.pause_message("ship", after=review)
    told = _click(harness, ALICE, ship)
    assert told.startswith(":lock: You are not allowed to decide *ship*")
    assert "earlier step" in told
    assert harness.runtime.db.get_run(run_id).is_paused
    harness.actor(BOB).click(ship, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run_id, "completed")


def test_both_groups_must_sign_and_a_member_of_both_counts_for_one(groups: BotHarness) -> None:
    h = groups
    run_id = _start(h, "sre_and_security", user=ERIN)
    message = h.pause_message("ship")
    assert h.runtime.db.get_run(run_id).step_requirements[0].approvals_required == 2

    assert "not allowed" in _click(h, ERIN, message)  # in neither group
    # Carol is in both: her approval counts for one of them.
    assert _click(h, CAROL, message) == "You approved *ship*; 1 more needed."
    # Alice (SRE only) still fits: Carol is counted for security then.
    h.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    h.wait_run(run_id, "completed")
    assert test_workflows.EXECUTIONS["sre_and_security.ship"] == 1


def test_a_second_approval_from_a_full_group_is_refused(groups: BotHarness) -> None:
    h = groups
    h.state.add_usergroup(SECURITY, "security", [DAVE], name="Security")  # Carol: SRE only
    h.runtime.groups.forget(None)
    run_id = _start(h, "sre_and_security", user=ERIN)
    message = h.pause_message("ship")
    assert _click(h, ALICE, message) == "You approved *ship*; 1 more needed."

    def progressed(state: Any) -> Message | None:
        current = state.message(message.channel, message.ts)
        return current if "1 of 2 approvals" in text_of(current) else None

    current = h.wait(progressed, "group progress shown")
    assert f"<!subteam^{SRE}>: 1 of 1 — <@{ALICE}>" in text_of(current)
    assert f"<!subteam^{SECURITY}>: 0 of 1" in text_of(current)

    told = _click(h, CAROL, message)  # SRE is full
    assert told.startswith("Your approval is not needed")
    assert f"<!subteam^{SECURITY}> (1 more)" in told
    assert [d.decided_by for d in h.runtime.db.get_decisions(run_id)] == [ALICE]
    h.actor(DAVE).click(message, action_id=blocks.ACTION_APPROVE)
    h.wait_run(run_id, "completed")


def test_assignment_moves_an_earlier_voter_to_their_other_group() -> None:
    members = {SRE: frozenset({ALICE, CAROL}), SECURITY: frozenset({CAROL, DAVE})}
    require = [Approvals(SRE, 1), Approvals(SECURITY, 1)]
    assert assign([CAROL, ALICE], require, members.__getitem__) == {CAROL: SECURITY, ALICE: SRE}
    assert assign([CAROL, DAVE], require, members.__getitem__) == {CAROL: SRE, DAVE: SECURITY}
    assert assign([ALICE, CAROL, DAVE], require, members.__getitem__) is None
    assert assign([ALICE, BOB], require, members.__getitem__) is None  # Bob is in neither
    with pytest.raises(ValueError):
        Approvals("C0CHANNEL", 1)
    with pytest.raises(ValueError):
        Approvals(SRE, 0)


def test_groups_and_a_different_engine_count_is_refused_at_load() -> None:
    route = SlackRoute(
        workflow=_gate("mismatch", approvals=3),
        require=(Approvals(SRE, 1), Approvals(SECURITY, 1)),
    )
    with pytest.raises(ValueError, match="approvals=3"):
        apply_route_policy(route)


def test_a_group_vote_waits_for_one_at_the_same_moment_anywhere(groups: BotHarness) -> None:
    """Another replica holding the pause's vote lease (mid-vote): a click now is told to
    click again and records nothing; a lease whose holder died lapses by the clock."""
    h = groups
    run_id = _start(h, "sre_and_security", user=ERIN)
    message = h.pause_message("ship")
    requirement_id = h.runtime.db.get_run(run_id).step_requirements[0].requirement_id
    leases = h.runtime.decider.vote_leases
    other = leases.acquire(requirement_id)
    assert other is not None and leases.acquire(requirement_id) is None

    assert "at the same moment" in _click(h, ALICE, message)
    assert h.runtime.db.get_decisions(run_id) == []
    leases.release(requirement_id, other)
    assert _click(h, ALICE, message) == "You approved *ship*; 1 more needed."

    assert leases.acquire(requirement_id) is not None  # and never given back
    h.clock.advance(VOTE_LEASE + timedelta(seconds=1))
    h.actor(DAVE).click(message, action_id=blocks.ACTION_APPROVE)
    h.wait_run(run_id, "completed")


def test_audit_shows_every_vote_with_who_and_when(harness: BotHarness) -> None:
    run_id = _start(harness, "two_of_them", user=CAROL)
    message = harness.pause_message("ship")
    _click(harness, ALICE, message)
    harness.clock.advance(timedelta(minutes=5))
    harness.actor(BOB).click(message, action_id=blocks.ACTION_APPROVE)
    harness.wait_run(run_id, "completed")

    response = harness.actor(MALLORY).slash("/signoff", f"audit {run_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    lines = [str(b) for b in body["blocks"] if b["type"] == "context"]
    assert len(lines) == 2
    assert f"approved (one vote) by <@{ALICE}>" in lines[0] and "1 more approval needed" in lines[0]
    assert f"approved by <@{BOB}>" in lines[1]

    out = io.StringIO()
    settings = Settings(SIGNOFF_DATABASE_URL=f"sqlite:///{harness.db_file}")
    assert show_runs(settings, run_id=run_id, limit=10, out=out) == 0
    section = out.getvalue().split("Approvals, rejections, escalations, delegations: 2\n")[1]
    rows = section.split("\n\n")[0].splitlines()[1:]
    assert [r.split()[3:6] for r in rows] == [
        ["approved", "(vote)", ALICE],
        ["approved", BOB, "-"],
    ]

    unknown = harness.actor(MALLORY).slash("/signoff", "audit 0123456789abcdef").json()
    assert "No run" in unknown["text"]


def test_a_reject_quorum_counts_rejections_in_place(harness: BotHarness) -> None:
    run_id = _start(harness, "two_to_reject", user=CAROL)
    message = harness.pause_message("ship")
    told = _click(harness, ALICE, message, blocks.ACTION_REJECT)
    assert told == "You rejected *ship*; 1 more rejection needed."

    def progressed(state: Any) -> Message | None:
        current = state.message(message.channel, message.ts)
        return current if "1 of 2 rejections" in text_of(current) else None

    assert f"1 of 2 rejections — <@{ALICE}>" in text_of(harness.wait(progressed, "progress"))
    harness.actor(BOB).click(message, action_id=blocks.ACTION_REJECT)
    harness.wait_run(run_id, "cancelled")
    assert test_workflows.EXECUTIONS.get("two_to_reject.ship") is None


def test_the_last_two_approvals_at_once_continue_exactly_once(harness: BotHarness) -> None:
    """Alice approved; Bob and Mallory give the last approval at the same moment, as their
    clients show the message: one continuation, every approval recorded or told."""
    run_id = _start(harness, "two_of_them", user=CAROL)
    message = harness.pause_message("ship")
    _click(harness, ALICE, message)
    shown = harness.state.message(message.channel, message.ts)
    bodies = [
        interactive_body(
            block_actions_payload(
                harness.state, user_id=user, source=shown, action_id=blocks.ACTION_APPROVE
            )
        )
        for user in (BOB, MALLORY)
    ]
    barrier = threading.Barrier(len(bodies))
    codes: list[int] = []

    def send(body: str) -> None:
        barrier.wait()
        codes.append(send_signed(harness.url, body, signing_secret=SECRET).status_code)

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200, 200]
    harness.wait_run(run_id, "completed")
    assert test_workflows.EXECUTIONS["two_of_them.ship"] == 1
    decisions = harness.runtime.db.get_decisions(run_id)
    final = [d for d in decisions if not d.is_vote]
    assert len(final) == 1 and final[0].decided_by in (BOB, MALLORY)
    assert [d.decided_by for d in decisions if d.is_vote] == [ALICE]


def test_two_group_approvals_at_once_fill_the_group_once(groups: BotHarness) -> None:
    """Alice and Bob are both SRE only (count 1): approving at the same moment, one is
    counted and the other is told; the pause still waits for security."""
    h = groups
    h.state.add_usergroup(SRE, "sre", [ALICE, BOB], name="SRE")
    h.runtime.groups.forget(None)
    run_id = _start(h, "sre_and_security", user=ERIN)
    message = h.pause_message("ship")
    h.actor(BOB)  # joins the channel
    bodies = [
        interactive_body(
            block_actions_payload(
                h.state, user_id=user, source=message, action_id=blocks.ACTION_APPROVE
            )
        )
        for user in (ALICE, BOB)
    ]
    barrier = threading.Barrier(len(bodies))

    def send(body: str) -> None:
        barrier.wait()
        send_signed(h.url, body, signing_secret=SECRET)

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    def answered(state: Any) -> list[Message] | None:
        replies = [m for m in state.messages(message.channel) if m.ephemeral_for in (ALICE, BOB)]
        return replies if len(replies) == len(bodies) else None

    replies = h.wait(answered, "both told")
    counted = [m for m in replies if m.text == "You approved *ship*; 1 more needed."]
    assert len(counted) == 1
    (other,) = [m for m in replies if m not in counted]
    assert other.text.startswith("Your approval is not needed") or "same moment" in other.text
    votes = h.runtime.db.get_decisions(run_id)
    assert len(votes) == 1 and votes[0].decided_by == counted[0].ephemeral_for
    assert h.runtime.db.get_run(run_id).is_paused


def test_votes_on_one_step_of_a_parallel_pause(harness: BotHarness) -> None:
    """A Parallel's pause is one message: a vote on its step that needs two people shows
    there, the other step is answered on its own, and the run goes on once both are."""
    h = harness
    run_id = _start(h, "fan_votes", user=CAROL)
    message = h.pause_message("left")

    def click(user: str, block_id: str) -> str:
        before = {m.ts for m in h.ephemerals_for(user)}
        h.actor(user).click(message, action_id=blocks.ACTION_APPROVE, block_id=block_id)
        found = h.wait(
            lambda s: [
                m
                for m in s.messages(message.channel)
                if m.ephemeral_for == user and m.ts not in before
            ],
            f"the reply to {user}",
        )
        return str(found[-1].text)

    assert click(ALICE, "decision:0") == "You approved *left*; 1 more needed."

    def progressed(state: Any) -> Message | None:
        current = state.message(message.channel, message.ts)
        return current if f"1 of 2 approvals — <@{ALICE}>" in text_of(current) else None

    current = h.wait(progressed, "the vote shown in the one message")
    assert [b.get("block_id") for b in current.blocks if b["type"] == "actions"] == [
        "decision:0",
        "decision:1",
    ]
    assert "You already approved *left*" in click(ALICE, "decision:0")
    h.actor(BOB).click(message, action_id=blocks.ACTION_APPROVE, block_id="decision:1")
    h.wait(
        lambda s: (
            [b for b in s.message(message.channel, message.ts).blocks if b["type"] == "actions"]
            == [b for b in current.blocks if b.get("block_id") == "decision:0"]
            or None
        ),
        "right answered",
    )
    assert h.runtime.db.get_run(run_id).is_paused
    h.actor(MALLORY).click(message, action_id=blocks.ACTION_APPROVE, block_id="decision:0")
    h.wait_run(run_id, "completed")
    assert test_workflows.EXECUTIONS["fan_votes.left"] == 1
    assert test_workflows.EXECUTIONS["fan_votes.right"] == 1


def test_votes_on_a_dm_only_pause_show_in_the_copies_and_hold_up_nothing(
    harness: BotHarness,
) -> None:
    h = harness
    run_id = _start(h, "two_by_dm_only", user=CAROL)
    alice_copy, bob_copy = copy_for(h, ALICE), copy_for(h, BOB)
    h.actor(ALICE, channel_id=alice_copy.channel).click(alice_copy, action_id=blocks.ACTION_APPROVE)

    def progressed(state: Any) -> Message | None:
        copy = state.message(bob_copy.channel, bob_copy.ts)
        return copy if f"1 of 2 approvals — <@{ALICE}>" in text_of(copy) else None

    assert has_buttons(h.wait(progressed, "Bob's copy shows the vote"))
    h.actor(BOB, channel_id=bob_copy.channel).click(bob_copy, action_id=blocks.ACTION_APPROVE)
    h.wait_run(run_id, "completed")
    # The run's thread is not held up by an update of a channel message that never was.
    h.wait(
        lambda s: [m for m in s.messages(DEFAULT_CHANNEL_ID) if "Completed" in m.text],
        "the completion note in the channel",
    )
    assert h.wait_outbox_idle().get("failed") is None


def test_a_voter_no_longer_finds_it_waiting_for_them(harness: BotHarness) -> None:
    h = harness
    run_id = _start(h, "two_of_them", user=CAROL)
    message = h.pause_message("ship")
    h.actor(ALICE).open_home()
    home_of(h, ALICE, lambda v: waiting_count(v) == "Waiting for you (1)", "lists the pause")
    h.wait_outbox_idle()  # the bot has recorded that Alice has a Home tab
    assert run_id[:8] in str(h.actor(ALICE).slash("/signoff", "pending").json())

    _click(h, ALICE, message)
    refreshed_home_of(
        h, ALICE, lambda v: waiting_count(v) == "Waiting for you (0)", "no longer lists it"
    )
    assert run_id[:8] not in str(h.actor(ALICE).slash("/signoff", "pending").json())
    assert run_id[:8] in str(h.actor(BOB).slash("/signoff", "pending").json())
