"""Channels given by name are resolved to IDs once at start-up (``conversations.list``, paged):
permalinks and updates work with them, and a channel that does not exist stops start-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Settings
from bot.routing import SlackRoute, StepRoute
from bot.sandbox import DEFAULT_CHANNEL_ID, SlackFakeServer
from bot.server import Runtime, ServerThread
from engine import ManualClock, SqliteDb
from tests.bot import workflows as test_workflows
from tests.bot.conftest import ALICE, CAROL, SECRET, BotHarness
from tests.bot.test_approval_flow import _start


def _settings(fake: SlackFakeServer, db_file: Path, channel: str) -> Settings:
    return Settings(
        SLACK_BOT_TOKEN=fake.state.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
        SIGNOFF_CHANNEL=channel,
        SIGNOFF_DATABASE_URL=f"sqlite:///{db_file}",
        SIGNOFF_POLL_SECONDS=3600,
    )


@pytest.fixture
def fake() -> Iterator[SlackFakeServer]:
    server = SlackFakeServer().start()
    # More channels than one conversations.list page holds, so the lookup must page.
    for n in range(1_050):
        server.state.add_channel(f"C0FILL{n:04d}", f"filler-{n:04d}")
    server.state.add_channel("C0DEPLOYS", "deploys")
    try:
        yield server
    finally:
        server.stop()


def _routes() -> list[SlackRoute]:
    wfs = {wf.name: wf for wf in test_workflows.make_workflows()}
    return [
        SlackRoute(workflow=wfs["approve_me"], channel="#general", approvers=(ALICE,)),
        SlackRoute(workflow=wfs["cancel_me"], steps={"danger": StepRoute(channel="deploys")}),
    ]


def test_channel_names_become_ids_and_pending_links_work(
    fake: SlackFakeServer, tmp_path: Path
) -> None:
    test_workflows.EXECUTIONS.clear()
    db_file = tmp_path / "signoff.db"
    runtime = Runtime(
        _settings(fake, db_file, "#signoff"),
        routes=_routes(),
        db=SqliteDb(db_file=db_file),
        clock=ManualClock(datetime.now(UTC).replace(microsecond=0)),
        scheduler_paused=True,
        outbox_poll_interval=0.05,
    )
    routes = runtime.signoff.routes
    assert routes["approve_me"].channel == "C0GENERAL"
    assert routes["cancel_me"].steps["danger"].channel == "C0DEPLOYS"
    assert runtime.signoff.default_channel == DEFAULT_CHANNEL_ID
    lists = [c for c in fake.state.calls() if c.method == "conversations.list"]
    assert len(lists) == 2  # once at start-up, two pages

    runtime.start()
    server = ServerThread(runtime.asgi).start()
    try:
        harness = BotHarness(fake, runtime, server, runtime.signoff.clock, db_file)  # type: ignore[arg-type]
        response = harness.actor(CAROL, "C0GENERAL").slash("/signoff", "run approve_me")
        run_id = response.json()["text"].split("run `")[1].split("`")[0]
        harness.wait(
            lambda s: (
                runtime.signoff.store.get_pause(
                    runtime.db.get_run(run_id).step_requirements[0].requirement_id
                ).permalink
                if runtime.db.get_run(run_id) and runtime.db.get_run(run_id).is_paused
                else None
            ),
            "pause posted in #general, its permalink stored",
        )
        pending = harness.actor(ALICE, "C0GENERAL").slash("/signoff", "pending").json()
        assert "|open>" in str(pending["blocks"]), pending
    finally:
        test_workflows.SLOW_GATE.set()
        server.stop()
        runtime.stop()


@pytest.mark.parametrize(
    ("channel", "route_channel", "named"),
    [("#nowhere", None, "SIGNOFF_CHANNEL"), (DEFAULT_CHANNEL_ID, "#gone", "route 'approve_me'")],
)
def test_a_missing_channel_stops_start_up_naming_it(
    fake: SlackFakeServer, tmp_path: Path, channel: str, route_channel: str | None, named: str
) -> None:
    wf = next(w for w in test_workflows.make_workflows() if w.name == "approve_me")
    db_file = tmp_path / "signoff.db"
    with pytest.raises(ValueError, match=named) as raised:
        Runtime(
            _settings(fake, db_file, channel),
            routes=[SlackRoute(workflow=wf, channel=route_channel)],
            db=SqliteDb(db_file=db_file),
        )
    assert (route_channel or channel) in str(raised.value)


def test_ids_need_no_lookup(harness: BotHarness) -> None:
    assert [c for c in harness.state.calls() if c.method == "conversations.list"] == []
    _start(harness, "approve_me")
    harness.pause_message("ship")
