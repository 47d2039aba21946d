"""Record, then ack (issue 8 §1): every click, form and ``/signoff run`` is one durable insert
before its ack; if that cannot happen in time the person is told at once (503 for a click,
an inline error for a form, an ephemeral text for a command) and nothing is done. What was
acked is applied by a worker — after a crash by another one — retried while the failure is
transient, and given up with a word to the person and a count in /metrics."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from bot import blocks
from bot.app import CachedAuthorization
from bot.config import Settings
from bot.inbox import LEASE, MAX_ATTEMPTS, NOT_RECORDED, InboxWorker
from bot.kinds import InboxKind
from bot.middleware.dedupe import interaction_key
from bot.runs_cli import show_runs
from bot.store import InboxEntry
from bot.testing import drain_inbox, wait_outbox_idle
from tests.bot.conftest import ALICE, BOB, SECRET, BotHarness
from tests.bot.test_approval_flow import _start

# What Slack gives a request before it shows the person an error: the tests' HTTP clients
# wait no longer, so an ack later than this fails the test.
SLACK_ACK_LIMIT = 3.0


@contextmanager
def write_locked(harness: BotHarness) -> Iterator[None]:
    """Another process holding SQLite's write lock (as ``sqlite3`` from a script would)."""
    conn = sqlite3.connect(harness.db_file, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def _metric(harness: BotHarness, line_start: str) -> float:
    text = harness.runtime.signoff.metrics.render().decode()
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_click_is_recorded_before_its_ack_and_applied_after_it(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    harness.runtime.inbox.stop()  # nobody applies anything: what the ack promised is on disk
    alice = harness.actor(ALICE)
    alice.timeout = SLACK_ACK_LIMIT
    assert alice.click(message, action_id=blocks.ACTION_APPROVE).status_code == 200
    key = interaction_key(alice.last_payload or {})
    assert key is not None
    store = harness.runtime.signoff.store
    assert store.inbox_state(key) == "pending"
    assert harness.runtime.db.get_run(run_id).is_paused

    # The replica that took it died holding its lease (kill -9 before the claim committed):
    # another one applies it once the lease has run out, not before.
    taken = store.claim_inbox(now=harness.clock.now(), lease=LEASE)
    assert [i.key for i in taken] == [key]
    worker = harness.runtime.inbox
    other = InboxWorker(harness.runtime.signoff, handlers=worker.handlers, reply=worker.reply)
    assert other.apply_due() == 0
    harness.clock.advance(LEASE + timedelta(seconds=1))
    assert other.apply_due() == 1
    harness.wait_run(run_id, "completed")
    assert store.inbox_state(key) == "done"  # marked in the claim's own transaction
    assert [d.decided_by for d in harness.runtime.db.get_decisions(run_id)] == [ALICE]
    assert other.apply_due() == 0  # done: never applied twice
    other.stop()


def test_what_is_recorded_while_a_thread_is_free_is_handed_over_leased_not_claimed(
    harness: BotHarness,
) -> None:
    harness.runtime.inbox.stop()  # closes its slots: a stopped worker is handed nothing
    signoff = harness.runtime.signoff
    store, slots, writer = signoff.store, signoff.apply_slots, signoff.inbox_writer

    def entry(key: str) -> InboxEntry:
        return InboxEntry(key, InboxKind.decide, ALICE, {"decide": {"token": "t"}})

    assert writer.record(entry("stopped"))
    assert slots.take_handed() == []
    assert [i.key for i in store.claim_inbox(now=harness.clock.now(), lease=LEASE)] == ["stopped"]

    slots.open(1)  # as a running worker with one thread free
    assert writer.record(entry("first"))
    assert [(i.key, i.attempts) for i in slots.take_handed()] == [("first", 1)]
    # Recorded leased to this process: no other worker (or replica) claims it meanwhile.
    assert store.claim_inbox(now=harness.clock.now(), lease=LEASE) == []

    assert writer.record(entry("second"))  # no thread free: left for the worker's claim
    assert slots.take_handed() == []
    assert [i.key for i in store.claim_inbox(now=harness.clock.now(), lease=LEASE)] == ["second"]

    slots.release(1)  # the first one's thread is free again
    assert not writer.record(entry("first"))  # a repeat: not handed, its slot given back
    assert slots.take_handed() == []
    assert slots.reserve(1) == 1

    # This process died holding the first: once its lease runs out, another worker takes it.
    harness.clock.advance(LEASE + timedelta(seconds=1))
    taken = store.claim_inbox(now=harness.clock.now(), lease=LEASE)
    assert ("first", 2) in [(i.key, i.attempts) for i in taken]


def test_a_write_locked_database_is_an_error_within_3_s_never_a_lost_ack(
    harness: BotHarness,
) -> None:
    run_id = _start(harness, "cancel_me")
    message = harness.pause_message("danger")
    bob = harness.actor(BOB)
    bob.timeout = SLACK_ACK_LIMIT
    bob.click(message, action_id=blocks.ACTION_REJECT_WITH_REASON)
    view = harness.wait(lambda s: s.top_view(BOB), "reason modal")
    carol = harness.actor("U0CAROL")
    carol.timeout = SLACK_ACK_LIMIT
    with write_locked(harness):
        click = bob.click(message, action_id=blocks.ACTION_APPROVE)
        submitted = bob.submit(view, {blocks.REASON_BLOCK: "not now"})
        command = carol.slash("/signoff", "run approve_me")
    # A click: non-2xx, so Slack shows the person it failed.
    assert click.status_code == 503
    # A form: stays open with the error under its field.
    assert submitted.status_code == 200
    assert submitted.json()["response_action"] == "errors"
    assert "could not record" in submitted.json()["errors"][blocks.REASON_BLOCK]
    # A command: the answer says nothing was done.
    assert command.status_code == 200 and command.json()["text"] == NOT_RECORDED
    assert _metric(harness, "signoff_inbox_record_failures_total") == 3
    drain_inbox(harness.runtime)
    assert harness.runtime.db.get_run(run_id).is_paused
    assert harness.runtime.db.get_decisions(run_id) == []
    assert len(harness.runtime.db.list_runs(workflow_name="approve_me")) == 0

    # The lock gone, the same click goes through, once.
    assert bob.click(message, action_id=blocks.ACTION_APPROVE).status_code == 200
    drain_inbox(harness.runtime)
    harness.wait_run(run_id, "completed")
    assert [d.decided_by for d in harness.runtime.db.get_decisions(run_id)] == [BOB]


def test_a_transient_failure_is_retried_with_backoff_then_applied(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    harness.expire_cached_groups()
    # Only the inbox asks Slack from here on: App Home refreshes (outbox) would take the
    # injected failures too.
    harness.runtime.outbox.stop()
    before = len(harness.state.calls("usergroups.users.list"))
    # BOB may decide as a member of S0APPROVERS; Slack fails to list it twice.
    harness.fake.http_error_next("usergroups.users.list", status=500, times=2)
    assert harness.actor(BOB).click(message, action_id=blocks.ACTION_APPROVE).status_code == 200
    drain_inbox(harness.runtime)
    for _ in range(2):
        assert harness.runtime.db.get_run(run_id).is_paused
        harness.clock.advance(timedelta(minutes=2))  # past any backoff with its jitter
        drain_inbox(harness.runtime)
    harness.wait_run(run_id, "completed")
    assert len(harness.state.calls("usergroups.users.list")) - before == 3
    assert _metric(harness, 'signoff_inbox_retries_total{kind="decide"}') == 2
    assert harness.ephemerals_for(BOB) == []


def test_a_failure_that_does_not_pass_is_given_up_and_the_person_told(
    harness: BotHarness,
) -> None:
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    harness.expire_cached_groups()
    harness.runtime.outbox.stop()  # only the inbox asks Slack (see above)
    harness.fake.http_error_next("usergroups.users.list", status=503, times=MAX_ATTEMPTS)
    bob = harness.actor(BOB)
    assert bob.click(message, action_id=blocks.ACTION_APPROVE).status_code == 200
    key = interaction_key(bob.last_payload or {})
    drain_inbox(harness.runtime)
    for _ in range(MAX_ATTEMPTS - 1):
        harness.clock.advance(timedelta(minutes=2))
        drain_inbox(harness.runtime)
    assert harness.runtime.signoff.store.inbox_state(key or "") == "failed"
    assert _metric(harness, 'signoff_inbox_given_up_total{kind="decide"}') == 1
    told = harness.wait(lambda s: harness.ephemerals_for(BOB), "bob told")
    assert "could not carry this out" in told[-1].text
    assert told[-1].thread_ts == message.thread_ts
    assert harness.runtime.db.get_run(run_id).is_paused
    assert harness.runtime.db.get_decisions(run_id) == []
    # The operator sees it too.
    out = io.StringIO()
    settings = Settings(SIGNOFF_DATABASE_URL=f"sqlite:///{harness.db_file}")
    assert show_runs(settings, run_id=None, limit=5, out=out, now=harness.clock.now()) == 0
    given_up = out.getvalue().split("Given up: 1")[1].splitlines()
    assert given_up[2].split()[:3] == ["decide", BOB, str(MAX_ATTEMPTS)], given_up


def test_a_start_is_recorded_and_runs_once_under_the_announced_id(harness: BotHarness) -> None:
    harness.runtime.inbox.stop()
    run_id = _start(harness, "approve_me")
    assert harness.runtime.db.get_run(run_id) is None  # acked, recorded, not applied yet
    drain_inbox(harness.runtime)
    harness.wait_run(run_id, "paused")
    drain_inbox(harness.runtime)
    assert len(harness.runtime.db.list_runs(workflow_name="approve_me")) == 1


def test_nothing_before_an_ack_waits_on_slack(harness: BotHarness) -> None:
    run_ids = [_start(harness, "approve_me") for _ in range(3)]
    for run_id in run_ids:
        harness.pause_message_of(run_id)
    wait_outbox_idle(harness.runtime)  # permalinks are stored by the outbox after posting
    harness.fake.set_down(True)  # from here, any Slack call before an ack would fail

    def slack_reads() -> int:
        return len(harness.state.calls("chat.getPermalink")) + len(
            harness.state.calls("usergroups.users.list")
        )

    before = slack_reads()
    alice = harness.actor(ALICE)
    alice.timeout = SLACK_ACK_LIMIT
    pending = alice.slash("/signoff", "pending").json()
    links = str(pending["blocks"]).count("|open>")
    assert links == len(run_ids), pending
    assert slack_reads() == before  # not one chat.getPermalink


def test_auth_test_is_asked_in_the_background_never_before_a_request(
    harness: BotHarness,
) -> None:
    harness.fake.set_down(True)
    auth = CachedAuthorization(harness.runtime.client, start=False)
    before = len(harness.state.calls("auth.test"))
    result = auth.authorize(enterprise_id=None, team_id="T1")
    assert result.bot_token == harness.runtime.client.token and result.bot_user_id is None
    assert len(harness.state.calls("auth.test")) == before  # the request did not ask Slack
    assert auth.refresh() is False  # the background's try: failed, nothing cached
    harness.fake.set_down(False)
    assert auth.refresh() is True
    assert auth.authorize(enterprise_id=None, team_id="T1").bot_user_id == harness.state.bot_user_id


def test_a_retried_command_names_the_run_its_first_delivery_started(harness: BotHarness) -> None:
    from urllib.parse import urlencode

    from bot.sandbox import DEFAULT_CHANNEL_ID, send_signed, slash_command_form

    form = slash_command_form(
        harness.state,
        command="/signoff",
        user_id="U0CAROL",
        channel_id=DEFAULT_CHANNEL_ID,
        text="run approve_me",
    )
    first, retry = (
        send_signed(harness.url, urlencode(form), signing_secret=SECRET, retry_num=n).json()
        for n in (None, 1)
    )
    assert first["text"] == retry["text"] and "Started" in first["text"]
    drain_inbox(harness.runtime)
    assert len(harness.runtime.db.list_runs(workflow_name="approve_me")) == 1


def test_a_click_that_queued_past_its_budget_is_refused_not_recorded(
    harness: BotHarness,
) -> None:
    import time

    from bot.inbox import ACK_BUDGET
    from bot.sandbox import block_actions_payload, interactive_body
    from bot.server import _dispatch

    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    payload = block_actions_payload(
        harness.state, user_id=ALICE, source=message, action_id=blocks.ACTION_APPROVE
    )
    body = interactive_body(payload)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    # As if it had waited in the server's queues for longer than the ack budget (the time is
    # what the server measured at its arrival; nothing here waits).
    late = _dispatch(harness.runtime.bolt, body, "", dict(headers), time.monotonic() - ACK_BUDGET)
    assert late.status == 503
    key = interaction_key(payload)
    assert key is not None and harness.runtime.signoff.store.inbox_state(key) is None
    on_time = _dispatch(harness.runtime.bolt, body, "", dict(headers), time.monotonic())
    assert on_time.status == 200
    drain_inbox(harness.runtime)
    harness.wait_run(run_id, "completed")
