"""Channels given by name are resolved to IDs once at start-up (``conversations.list``, paged):
permalinks and updates work with them, and a channel that does not exist stops start-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.config import Settings
from bot.routing import ChannelDirectory, ChannelLookupError, SlackRoute, StepRoute
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
    assert [c for c in fake.state.calls() if c.method == "conversations.list"] == []
    runtime.start()
    routes = runtime.signoff.routes
    channels = runtime.channels
    assert channels.channel_for(routes["approve_me"], None) == "C0GENERAL"
    assert channels.channel_for(routes["cancel_me"], "danger") == "C0DEPLOYS"
    assert channels.channel_for(routes["cancel_me"], None) == DEFAULT_CHANNEL_ID
    lists = [c for c in fake.state.calls() if c.method == "conversations.list"]
    assert len(lists) == 2  # once at start-up, two pages
    server = ServerThread(runtime.asgi).start()
    try:
        harness = BotHarness(fake, runtime, server, runtime.signoff.clock, db_file)  # type: ignore[arg-type]
        response = harness.actor(CAROL, "C0GENERAL").slash("/signoff", "run approve_me")
        run_id = response.json()["text"].split("run `")[1].split("`")[0]

        def linked(_state: object) -> str | None:
            # The run pauses, the bot records its pause, the outbox posts it and stores its
            # permalink (what /signoff pending links to).
            run = runtime.db.get_run(run_id)
            if run is None or not run.is_paused:
                return None
            pause = runtime.signoff.store.get_pause(run.step_requirements[0].requirement_id)
            return pause.permalink if pause is not None else None

        harness.wait(linked, "pause posted in #general, its permalink stored")
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
    runtime = Runtime(
        _settings(fake, db_file, channel),
        routes=[SlackRoute(workflow=wf, channel=route_channel)],
        db=SqliteDb(db_file=db_file),
    )
    try:
        with pytest.raises(ValueError, match=named) as raised:
            runtime.start()
    finally:
        runtime.stop()
    assert (route_channel or channel) in str(raised.value)


def test_slack_unreachable_at_start_up_posts_by_name_until_the_lookup_succeeds(
    tmp_path: Path,
) -> None:
    wf = next(w for w in test_workflows.make_workflows() if w.name == "approve_me")
    routes = [SlackRoute(workflow=wf, channel="#deploys")]
    directory = ChannelDirectory(routes, "#signoff")
    down = WebClient(base_url="http://127.0.0.1:9/api/", timeout=1)
    down.retry_handlers = []
    with pytest.raises(ChannelLookupError, match=r"conversations\.list"):
        directory.load(down)
    assert not directory.loaded
    assert directory.channel_for(routes[0], None) == "#deploys"
    server = SlackFakeServer().start()
    try:
        server.state.add_channel("C0DEPLOYS", "deploys")
        server.state.add_channel("C0SIGNOFF", "signoff")
        directory.load(WebClient(token=server.state.bot_token, base_url=server.api_url))
    finally:
        server.stop()
    assert directory.loaded
    assert directory.channel_for(routes[0], None) == "C0DEPLOYS"
    assert directory.id_of("#signoff") == "C0SIGNOFF"


def test_ids_need_no_lookup(harness: BotHarness) -> None:
    assert [c for c in harness.state.calls() if c.method == "conversations.list"] == []
    _start(harness, "approve_me")
    harness.pause_message("ship")
