"""Forms open on a pause are replaced by a notice when the pause is decided or times out,
whichever replica decides it: the open forms are in the database (``slack_open_forms``), the
notice is an outbox item (issue 10, bug 4).

Two ``Runtime``s on one database (``replicas`` in ``tests/bot/conftest.py``), each served over
HTTP: the form is opened through the first, the pause decided or expired through the second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from bot import blocks
from bot.decisions import DecisionAction
from bot.forms import FORMS_KEPT, OpenForm, OpenForms
from bot.kinds import OutboxKind
from bot.sandbox import DEFAULT_CHANNEL_ID, SlackActor, SlackFakeServer, View
from bot.server import Runtime, ServerThread
from bot.store import BotStore, slack_open_forms, slack_outbox
from bot.testing import ManualClock, wait_outbox_idle
from engine.db.base import BaseDb
from tests.bot.conftest import ALICE, BOB, CAROL, SECRET
from tests.bot.test_replica_deadlines import in_parallel

Replicas = tuple[SlackFakeServer, ManualClock, Runtime, Runtime]
T = TypeVar("T")
# Across replicas an outbox item can find the one before it in its run still in flight with
# the other replica (NotReady): it is retried 200 ms later, on the shared manual clock.
NOT_READY_RETRY = timedelta(milliseconds=200)


def eventually(replicas: Replicas, predicate: Callable[[Any], T | None], what: str) -> T:
    """``predicate``'s first truthy value on the fake, the manual clock moved on past each
    NotReady retry while waiting (as time moves in production)."""
    fake, clock = replicas[0], replicas[1]
    deadline = time.monotonic() + 10
    while True:
        try:
            return fake.state.wait_for(predicate, timeout=0.25, what=what)
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise
            clock.advance(NOT_READY_RETRY)


def delivered(replicas: Replicas) -> None:
    """Until every outbox item made so far has been sent, by either replica."""
    store, clock = replicas[2].signoff.store, replicas[1]
    deadline = time.monotonic() + 10
    while (counts := store.outbox_counts()).get("pending", 0) + counts.get("sending", 0):
        assert time.monotonic() < deadline, f"outbox not delivered within 10s: {counts}"
        time.sleep(0.05)
        clock.advance(NOT_READY_RETRY)


def pause_message(replicas: Replicas, step_name: str) -> Any:
    def find(state: Any) -> Any:
        for m in state.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False):
            if any(b.get("type") == "actions" for b in m.blocks) and step_name in m.text:
                return m
        return None

    return eventually(replicas, find, f"pause message for {step_name}")


@pytest.fixture
def first_url(replicas: Replicas) -> Iterator[str]:
    """The first replica served over HTTP (the one the form is opened through)."""
    server = ServerThread(replicas[2].asgi).start()
    try:
        yield f"{server.url}/slack/events"
    finally:
        server.stop()


def open_forms(runtime: Runtime) -> list[tuple[str, str, str]]:
    """(view id, requirement id, user id) of every form the database holds as open."""
    with runtime.signoff.db.engine.connect() as conn:
        rows = conn.execute(
            select(
                slack_open_forms.c.view_id,
                slack_open_forms.c.requirement_id,
                slack_open_forms.c.user_id,
            )
        ).all()
    return [(r.view_id, r.requirement_id, r.user_id) for r in rows]


def bob_at(fake: SlackFakeServer, url: str) -> SlackActor:
    return SlackActor(
        bot_url=url, signing_secret=SECRET, fake=fake, user_id=BOB, channel_id=DEFAULT_CHANNEL_ID
    )


def open_reason_form(replicas: Replicas, url: str, step_name: str) -> tuple[View, str]:
    """Bob opens the reject-with-reason form of ``step_name``'s pause through ``url``;
    returns the form and the pause's token once the database holds the form as open."""
    fake, _clock, first, _second = replicas
    message = pause_message(replicas, step_name)
    with bob_at(fake, url) as bob:
        bob.click(message, action_id=blocks.ACTION_REJECT_WITH_REASON)
    view: View = fake.state.wait_for(lambda s: s.top_view(BOB), timeout=10, what="reason modal")
    token = str(view.payload["private_metadata"])
    # Recorded after views.open answered, in the click's lazy listener.
    fake.state.wait_for(
        lambda s: open_forms(first) == [(view.id, token, BOB)] or None,
        timeout=10,
        what="the form recorded as open",
    )
    return view, token


def notice_of(replicas: Replicas, view: View) -> Any:
    return eventually(
        replicas,
        lambda s: (v := s.view(view.id)) and v.callback_id == blocks.VIEW_CLOSED and v,
        "the open form replaced by a notice",
    )


def updates_of(fake: SlackFakeServer, view: View) -> list[Any]:
    return [c for c in fake.state.calls("views.update") if c.params.get("view_id") == view.id]


def test_a_form_opened_through_one_replica_is_updated_when_another_decides(
    replicas: Replicas, first_url: str
) -> None:
    fake, _clock, first, second = replicas
    run_id = first.signoff.start_run("approve_me", "", user_id=CAROL)
    view, token = open_reason_form(replicas, first_url, "ship")
    result = second.decider.decide(token, user_id=ALICE, action=DecisionAction.confirm)
    assert result.ok, result.message
    updated = notice_of(replicas, view)
    text = str(updated.blocks)
    assert "Already decided" in text and f"<@{ALICE}>" in text
    assert not any(b["type"] == "input" for b in updated.blocks)
    delivered(replicas)
    final = first.db.get_run(run_id)
    assert final is not None and final.status.value == "completed"
    # Told once, through the outbox, and forgotten by the database.
    assert len(updates_of(fake, view)) == 1
    assert open_forms(first) == []
    with first.signoff.db.engine.connect() as conn:
        kinds = conn.execute(
            select(slack_outbox.c.dedupe_key).where(slack_outbox.c.kind == OutboxKind.form_closed)
        ).all()
    assert [k.dedupe_key for k in kinds] == [f"form:{view.id}"]


def test_a_form_opened_through_one_replica_is_updated_when_another_expires_it(
    replicas: Replicas, first_url: str
) -> None:
    fake, clock, first, second = replicas
    run_id = first.signoff.start_run("cancel_me", "", user_id=CAROL)
    view, _token = open_reason_form(replicas, first_url, "danger")
    clock.advance(timedelta(hours=1, seconds=1))
    second.scheduler.poll()  # the second replica finds the deadline passed and expires it
    decisions = second.db.get_decisions(run_id)
    assert [d.outcome.value for d in decisions] == ["timed_out"]
    text = str(notice_of(replicas, view).blocks)
    assert "Too late" in text and "deadline passed" in text and "<!date^" in text
    delivered(replicas)
    assert len(updates_of(fake, view)) == 1
    assert open_forms(first) == []


def test_a_form_update_slack_fails_is_retried_by_the_outbox(
    replicas: Replicas, first_url: str
) -> None:
    fake, clock, first, second = replicas
    first.signoff.start_run("approve_me", "", user_id=CAROL)
    view, token = open_reason_form(replicas, first_url, "ship")
    fake.state.http_error_next("views.update", status=503)
    assert second.decider.decide(token, user_id=ALICE, action=DecisionAction.confirm).ok
    eventually(replicas, lambda s: updates_of(fake, view) or None, "the first views.update")
    # The 503's outcome recorded (the item waits for its retry) before the clock jumps: a
    # jump past the lease of an item still being delivered would hand it to the other
    # replica as if this one had died.
    wait_outbox_idle(first)
    clock.advance(timedelta(minutes=1))  # past the outbox's backoff
    text = str(notice_of(replicas, view).blocks)
    assert "Already decided" in text
    delivered(replicas)
    assert len(updates_of(fake, view)) == 2  # the 503, then the update


def test_a_submitted_form_is_not_told_of_its_own_decision(
    replicas: Replicas, first_url: str
) -> None:
    fake, _clock, first, _second = replicas
    run_id = first.signoff.start_run("approve_me", "", user_id=CAROL)
    view, _token = open_reason_form(replicas, first_url, "ship")
    with bob_at(fake, first_url) as bob:
        response = bob.submit(view, {blocks.REASON_BLOCK: "not today"})
    assert response.status_code == 200 and not response.content, response.text
    eventually(
        replicas,
        lambda s: (r := first.db.get_run(run_id)) is not None and r.status.value != "paused",
        "the run decided",
    )
    delivered(replicas)
    assert [d.outcome.value for d in first.db.get_decisions(run_id)] == ["rejected"]
    assert updates_of(fake, view) == []
    assert open_forms(first) == []


def test_a_form_recorded_after_its_pause_was_decided_is_told_at_once(
    replicas: Replicas, first_url: str
) -> None:
    fake, _clock, first, second = replicas
    run_id = first.signoff.start_run("approve_me", "", user_id=CAROL)
    view, token = open_reason_form(replicas, first_url, "ship")
    run = first.db.get_run(run_id)
    assert run is not None
    (req,) = [r for r in run.step_requirements if r.requirement_id == token]  # as loaded
    # The race: the decision's event ran between the form's views.open and its record.
    first.signoff.forms.closed(view.id)
    assert second.decider.decide(token, user_id=ALICE, action=DecisionAction.confirm).ok
    delivered(replicas)
    assert updates_of(fake, view) == []
    first.signoff.forms.opened(token, BOB, view.id)  # what the click's listener does then
    first.decider.form_opened(run_id, req)
    assert "Already decided" in str(notice_of(replicas, view).blocks)
    delivered(replicas)
    assert len(updates_of(fake, view)) == 1
    assert open_forms(first) == []


# -- the store ------------------------------------------------------------------------------------
@pytest.fixture
def form_stores(
    database_pair: tuple[BaseDb, BaseDb],
) -> tuple[ManualClock, OpenForms, OpenForms]:
    """One table of open forms, reached by two replicas."""
    clock = ManualClock()
    for db in database_pair:
        BotStore(db).ensure_schema()
    return clock, OpenForms(database_pair[0], clock), OpenForms(database_pair[1], clock)


def test_each_open_form_is_taken_by_one_replica(
    form_stores: tuple[ManualClock, OpenForms, OpenForms],
) -> None:
    _clock, one, other = form_stores
    for n in range(20):
        one.opened(f"req{n}", BOB, f"V{n}a")
        other.opened(f"req{n}", ALICE, f"V{n}b")
    taken: list[list[OpenForm]] = [[], []]

    def take(forms: OpenForms, requirement_id: str, into: list[OpenForm]) -> Callable[[], None]:
        return lambda: into.extend(forms.take(requirement_id))

    for n in range(20):
        in_parallel(take(one, f"req{n}", taken[0]), take(other, f"req{n}", taken[1]))
    views = sorted(f.view_id for f in taken[0] + taken[1])
    assert views == sorted([f"V{n}a" for n in range(20)] + [f"V{n}b" for n in range(20)])
    assert one.take("req0") == [] and other.take("req0") == []


def test_open_forms_are_closed_and_age_out(
    form_stores: tuple[ManualClock, OpenForms, OpenForms],
) -> None:
    clock, one, other = form_stores
    one.opened("req1", BOB, "V1")
    one.opened("req1", ALICE, "V2")
    other.closed("V1")  # closed by Bob, the close delivered to the other replica
    assert one.take("req1") == [OpenForm("req1", ALICE, "V2")]
    one.opened("req2", BOB, "V3")
    one.opened("req3", BOB, "V4")
    clock.advance(FORMS_KEPT + timedelta(seconds=1))
    one.opened("req3", ALICE, "V5")
    # Past their retention: not updated (taken off all the same), and dropped by the cleanup.
    assert other.take("req2") == []
    assert other.forget_before(clock.now() - FORMS_KEPT) == 1  # V4
    assert one.take("req3") == [OpenForm("req3", ALICE, "V5")]
