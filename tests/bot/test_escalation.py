"""Escalation over real signed HTTP against the Slack fake, time by the injected clock: a
pause still open after ``escalate_after`` is escalated once — the escalation group and user
mentioned in the thread, sent copies (notify=Notify.both), allowed to decide — and two replicas
firing the same job escalate it once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import blocks
from bot.config import Settings
from bot.routing import Notify, SlackRoute, StepRoute
from bot.sandbox import DEFAULT_CHANNEL_ID, Message, SlackFakeServer
from bot.server import Runtime
from bot.store import slack_escalations
from bot.testing import ManualClock, pending_jobs, run_due_jobs, wait_outbox_idle
from engine import SqliteDb, Step, Workflow
from engine.db.base import BaseDb
from engine.db.postgres import PostgresDb
from tests.bot import workflows as test_workflows
from tests.bot.conftest import ALICE, BOB, CAROL, SECRET, BotHarness
from tests.bot.test_approval_flow import _start
from tests.bot.test_reach import copy_for, dm_channel, has_buttons, home_of, waiting_count

BOSS, LEADS, LEAD = "U0BOSS", "S0LEADS", "U0LEAD"


def _gate(name: str) -> Workflow:
    return Workflow(
        name=name,
        steps=[
            Step(
                name="ship",
                executor=test_workflows.counted(f"{name}.ship"),
                requires_confirmation=True,
                confirmation_message="Ship it?",
            )
        ],
    )


def escalation_routes() -> list[SlackRoute]:
    return [
        SlackRoute(
            workflow=_gate("escalates"),
            approvers=(ALICE,),
            notify=Notify.both,
            escalate_after=timedelta(hours=2),
            escalate_to=(LEADS, BOSS),
        ),
        # Set on the step: the route itself does not escalate.
        SlackRoute(
            workflow=_gate("step_escalates"),
            approvers=(ALICE,),
            steps={
                "ship": StepRoute(escalate_after=timedelta(minutes=30), escalate_to=(BOSS,))
            },
        ),
    ]


@pytest.fixture
def bot_routes() -> list[SlackRoute]:
    return escalation_routes()


def _people(state: Any) -> None:
    for user, name in ((BOSS, "boss"), (LEAD, "lead")):
        state.add_user(user, name, real_name=name.title())
    state.add_usergroup(LEADS, "leads", [LEAD], name="Leads")


@pytest.fixture
def esc(harness: BotHarness) -> BotHarness:
    _people(harness.state)
    return harness


def _notes(h: BotHarness, message: Message, needle: str) -> list[Message]:
    assert message.thread_ts is not None
    return [m for m in h.state.thread(message.channel, message.thread_ts) if needle in m.text]


def _reply(h: BotHarness, user: str, message: Message) -> str:
    channel = message.channel
    before = {m.ts for m in h.state.messages(channel) if m.ephemeral_for == user}
    h.actor(user, channel_id=channel).click(message, action_id=blocks.ACTION_APPROVE)
    found = h.wait(
        lambda s: [
            m for m in s.messages(channel) if m.ephemeral_for == user and m.ts not in before
        ],
        f"the reply to {user}",
    )
    return str(found[-1].text)


def test_an_open_pause_escalates_once_and_the_escalation_may_decide(esc: BotHarness) -> None:
    h = esc
    run_id = _start(h, "escalates", user=CAROL)
    message = h.pause_message("ship")
    req = h.runtime.db.get_run(run_id).step_requirements[0]
    job = f"escalate:{req.requirement_id}"
    assert req.paused_at is not None
    assert pending_jobs(h.runtime.scheduler)[job] == req.paused_at + timedelta(hours=2)
    assert "not allowed" in _reply(h, BOSS, message)  # not yet escalated
    h.actor(BOSS).open_home()
    assert waiting_count(home_of(h, BOSS)) == "Waiting for you (0)"
    h.wait_outbox_idle()  # the bot has recorded that the boss has a Home tab

    h.clock.advance(timedelta(hours=1, minutes=59))
    assert run_due_jobs(h.runtime.scheduler) == 0
    h.clock.advance(timedelta(minutes=1))
    assert run_due_jobs(h.runtime.scheduler) == 1
    note = h.wait(lambda s: _notes(h, message, "escalated to"), "the escalation note")
    assert len(note) == 1
    assert f"<!subteam^{LEADS}>" in note[0].text and f"<@{BOSS}>" in note[0].text
    assert "still waits after 2 hours" in note[0].text
    # notify=Notify.both: a copy to each escalation person (the group's members expanded).
    lead_copy = copy_for(h, LEAD)
    copy_for(h, BOSS)
    # The pause message (and the approvers' copies) say so, buttons kept.
    escalated = f"Escalated to <!subteam^{LEADS}>, <@{BOSS}>"

    def says_escalated(state: Any) -> Message | None:
        current = state.message(message.channel, message.ts)
        return current if escalated in str(current.blocks) else None

    assert has_buttons(h.wait(says_escalated, "the pause message shows the escalation"))
    home_of(h, BOSS, lambda v: waiting_count(v) == "Waiting for you (1)", "lists the pause")
    h.wait(
        lambda s: escalated in str(copy_for(h, ALICE).blocks) or None, "Alice's copy shows it"
    )
    assert h.state.messages(dm_channel(h, CAROL)) == []

    # A poll after it fired schedules nothing again, and escalates nothing again.
    assert h.runtime.scheduler.reconcile() == 0
    assert job not in pending_jobs(h.runtime.scheduler)
    h.wait_outbox_idle()
    assert len(_notes(h, message, "escalated to")) == 1

    # The lead (in the escalation group) decides from their copy.
    h.actor(LEAD, channel_id=lead_copy.channel).click(lead_copy, action_id=blocks.ACTION_APPROVE)
    h.wait_run(run_id, "completed")
    (decision,) = h.runtime.db.get_decisions(run_id)
    assert decision.decided_by == LEAD
    (record,) = h.runtime.escalator.for_run(run_id)
    assert record.escalated_to == (LEADS, BOSS) and record.step_name == "ship"
    assert record.escalated_at == req.paused_at + timedelta(hours=2)

    audit = h.actor(CAROL).slash("/signoff", f"audit {run_id}").json()
    lines = [str(b) for b in audit["blocks"] if b["type"] == "context"]
    assert len(lines) == 2
    assert f"escalated to <!subteam^{LEADS}>, <@{BOSS}>" in lines[0]
    assert f"approved by <@{LEAD}>" in lines[1]


def test_a_pause_decided_in_time_is_not_escalated(esc: BotHarness) -> None:
    h = esc
    run_id = _start(h, "escalates", user=CAROL)
    message = h.pause_message("ship")
    h.actor(ALICE).click(message, action_id=blocks.ACTION_APPROVE)
    h.wait_run(run_id, "completed")
    h.clock.advance(timedelta(hours=3))
    run_due_jobs(h.runtime.scheduler)
    h.runtime.scheduler.reconcile()
    assert h.runtime.escalator.for_run(run_id) == []
    h.wait_outbox_idle()
    assert _notes(h, message, "escalated to") == []


def test_a_step_route_escalates_its_step_in_the_channel_only(esc: BotHarness) -> None:
    h = esc
    run_id = _start(h, "step_escalates", user=CAROL)
    message = h.pause_message("ship")
    h.clock.advance(timedelta(minutes=30))
    assert run_due_jobs(h.runtime.scheduler) == 1
    h.wait(lambda s: _notes(h, message, "escalated to"), "the escalation note")
    h.wait_outbox_idle()
    assert h.state.messages(dm_channel(h, BOSS)) == []  # notify=Notify.channel: no copy
    assert "not allowed" in _reply(h, BOB, message)  # Bob is still no approver
    h.actor(BOSS).click(message, action_id=blocks.ACTION_APPROVE)
    h.wait_run(run_id, "completed")


def _outbox_idle(runtime: Runtime, timeout: float = 10.0) -> None:
    """Until no outbox row (of any replica: one table) is due or in flight."""
    wait_outbox_idle(runtime, timeout=timeout)


# -- two replicas ---------------------------------------------------------------------------------
def _replica(fake: SlackFakeServer, db: BaseDb, clock: ManualClock) -> Runtime:
    settings = Settings(
        SLACK_BOT_TOKEN=fake.state.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
        SIGNOFF_CHANNEL=DEFAULT_CHANNEL_ID,
        SIGNOFF_POLL_SECONDS=3600,
    )
    return Runtime(
        settings,
        routes=escalation_routes(),
        db=db,
        clock=clock,
        scheduler_paused=True,
        outbox_poll_interval=0.05,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def two_replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SlackFakeServer, ManualClock, Runtime, Runtime]]:
    """Two runtimes on one database, each through its own connection pool."""
    if request.param == "sqlite":
        dbs: tuple[BaseDb, BaseDb] = (
            SqliteDb(db_file=tmp_path / "signoff.db"),
            SqliteDb(db_file=tmp_path / "signoff.db"),
        )
    else:
        url = request.getfixturevalue("pg_database_factory")()
        dbs = (PostgresDb(url, pool_size=4), PostgresDb(url, pool_size=4))
    fake = SlackFakeServer().start()
    _people(fake.state)
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    first = _replica(fake, dbs[0], clock)
    second = _replica(fake, dbs[1], clock)
    started: list[Runtime] = []
    try:
        for runtime in (first, second):
            runtime.start()
            started.append(runtime)
        yield fake, clock, first, second
    finally:
        for runtime in started:
            runtime.stop()
        fake.stop()
        for db in dbs:
            db.dispose()


def test_two_replicas_firing_the_same_job_escalate_once(
    two_replicas: tuple[SlackFakeServer, ManualClock, Runtime, Runtime],
) -> None:
    fake, clock, first, second = two_replicas
    run_id = first.signoff.start_run("escalates", "x", user_id=CAROL)
    fake.state.wait_for(
        lambda s: (run := first.db.get_run(run_id)) is not None and run.is_paused,
        what="the run paused",
    )
    requirement_id = first.db.get_run(run_id).step_requirements[0].requirement_id
    job = f"escalate:{requirement_id}"
    # The engine stores the pause a moment before the bot records it and schedules its
    # escalation: wait for exactly that, on the replica that ran it.
    deadline = time.monotonic() + 10
    while job not in pending_jobs(first.scheduler):
        assert time.monotonic() < deadline, "the pausing replica scheduled no escalation"
        time.sleep(0.01)
    second.scheduler.reconcile()  # the other replica learns of the pause from the database
    assert job in pending_jobs(second.scheduler)

    clock.advance(timedelta(hours=2))
    barrier = threading.Barrier(2)
    ran: list[int] = []

    def fire(runtime: Runtime) -> None:
        barrier.wait()
        ran.append(run_due_jobs(runtime.scheduler))

    threads = [threading.Thread(target=fire, args=(r,)) for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ran == [1, 1], "both replicas fired the job"
    with first.db.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(slack_escalations)).scalar()
    assert rows == 1

    def notes(state: Any) -> list[Message]:
        return [
            m
            for m in state.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False)
            if "escalated to" in m.text
        ]

    fake.state.wait_for(notes, what="the escalation note")
    _outbox_idle(first)
    assert len(notes(fake.state)) == 1
    copies = [
        c
        for c in fake.state.calls("chat.postMessage")
        if str(c.params["channel"]).startswith("D")
        and c.params.get("channel") in {fake.state.open_dm(u).id for u in (LEAD, BOSS)}
    ]
    assert len(copies) == 2, "one copy each for the lead and the boss"
