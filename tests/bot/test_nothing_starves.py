"""Nothing starves, nothing goes stale (issue 8 §3): every paused run made elsewhere is
posted however many there are; a failed group lookup is never cached and says so; Slack's
subteam events and a short TTL keep group members fresh; delivered outbox rows are kept for
a bounded time and counted by an index."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from bot import blocks
from bot.permissions import GROUP_CACHE_TTL
from bot.publisher import SYNC_PAGE
from bot.sandbox import send_signed
from bot.store import slack_outbox, slack_pauses
from bot.testing import drain_inbox, wait_outbox_idle
from engine import SqliteDb
from tests.bot import workflows as test_workflows
from tests.bot.conftest import ALICE, BOB, SECRET, BotHarness
from tests.bot.test_approval_flow import _start


def test_every_paused_run_made_elsewhere_is_posted_past_one_page(harness: BotHarness) -> None:
    harness.runtime.outbox.stop()  # only what is enqueued matters here, not Slack's load
    elsewhere = SqliteDb(db_file=harness.db_file)  # a script's own process and handle
    try:
        (wf,) = [w for w in test_workflows.make_workflows() if w.name == "approve_me"]
        wf.use_default_db(elsewhere)
        made = SYNC_PAGE + 20
        for i in range(made):
            assert wf.run(f"batch {i}").is_paused
    finally:
        elsewhere.dispose()
    publisher = harness.runtime.publisher
    assert harness.runtime.queries.pending_count() == made
    assert publisher.sync_paused_runs() == made
    assert publisher.sync_paused_runs() == 0  # each once
    with harness.runtime.db.engine.connect() as conn:
        recorded = conn.execute(select(slack_pauses.c.requirement_id)).all()
        queued = conn.execute(
            select(slack_outbox.c.dedupe_key).where(slack_outbox.c.kind == "pause")
        ).all()
    assert len(recorded) == len(queued) == made


def _bob_clicks(harness: BotHarness, run_id: str) -> None:
    message = harness.pause_message_of(run_id)
    assert harness.actor(BOB).click(message, action_id=blocks.ACTION_APPROVE).status_code == 200
    drain_inbox(harness.runtime)


def test_a_failed_group_lookup_is_not_cached_and_the_person_is_told(
    harness: BotHarness,
) -> None:
    run_id = _start(harness, "approve_me")
    harness.pause_message("ship")
    harness.expire_cached_groups()
    # Only the inbox asks Slack from here on: App Home refreshes (outbox) would take the
    # injected failure too.
    harness.runtime.outbox.stop()
    before = len(harness.state.calls("usergroups.users.list"))
    harness.fake.fail_next("usergroups.users.list", "missing_scope")
    _bob_clicks(harness, run_id)  # BOB may approve as a member of S0APPROVERS
    told = harness.wait(lambda s: harness.ephemerals_for(BOB), "bob told")
    assert "could not check" in told[-1].text and "missing_scope" in told[-1].text
    assert harness.runtime.db.get_run(run_id).is_paused
    _bob_clicks(harness, run_id)  # Slack is asked again, not an empty group from a cache
    harness.wait_run(run_id, "completed")
    assert len(harness.state.calls("usergroups.users.list")) - before == 2


def _event(harness: BotHarness, event_id: str, event: dict[str, object]) -> int:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": harness.state.team_id,
            "api_app_id": harness.state.app_id,
            "event_id": event_id,
            "event_time": 1,
            "event": event,
        }
    )
    response = send_signed(
        harness.url, body, signing_secret=SECRET, content_type="application/json"
    )
    return response.status_code


def test_group_members_follow_slack_events_and_a_short_ttl(harness: BotHarness) -> None:
    first, second, third = (_start(harness, "approve_me") for _ in range(3))
    _bob_clicks(harness, first)
    harness.wait_run(first, "completed")
    # BOB leaves the group: Slack says so with subteam_members_changed.
    harness.state.add_usergroup("S0APPROVERS", "approvers", [ALICE], name="Approvers")
    assert (
        _event(
            harness,
            "Ev1",
            {
                "type": "subteam_members_changed",
                "subteam_id": "S0APPROVERS",
                "team_id": harness.state.team_id,
                "removed_users": [BOB],
                "removed_users_count": "1",
            },
        )
        == 200
    )
    _bob_clicks(harness, second)
    told = harness.wait(lambda s: harness.ephemerals_for(BOB), "bob refused")
    assert "not allowed" in told[-1].text
    assert harness.runtime.db.get_decisions(second) == []

    # Back in the group, no event this time: the cache (as of the refusal) holds for its
    # TTL, and then Slack is asked again.
    harness.state.add_usergroup("S0APPROVERS", "approvers", [ALICE, BOB], name="Approvers")
    calls = len(harness.state.calls("usergroups.users.list"))
    harness.clock.advance(GROUP_CACHE_TTL + timedelta(seconds=1))
    _bob_clicks(harness, third)
    harness.wait_run(third, "completed")  # decided by Bob: the cache without him had gone
    # Asked again after the TTL (an App Home refresh that came due with the clock may ask
    # for the group too, before his click does).
    assert len(harness.state.calls("usergroups.users.list")) in (calls + 1, calls + 2)
    assert [d.decided_by for d in harness.runtime.db.get_decisions(third)] == [BOB]


def test_delivered_outbox_rows_are_kept_for_the_retention_only(harness: BotHarness) -> None:
    run_id = _start(harness, "approve_me")
    harness.pause_message_of(run_id)
    wait_outbox_idle(harness.runtime)
    signoff = harness.runtime.signoff
    sent = signoff.store.outbox_counts()["sent"]
    assert sent >= 2  # the root message and the pause, at least
    assert signoff.outbox_retention == timedelta(days=7)  # SIGNOFF_OUTBOX_RETENTION_DAYS
    harness.clock.advance(timedelta(days=6))
    assert signoff.forget_old_outbox() == 0
    harness.clock.advance(timedelta(days=1, seconds=1))
    assert signoff.forget_old_outbox() == sent
    assert signoff.store.outbox_counts().get("sent", 0) == 0
