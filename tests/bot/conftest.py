"""The bot under test: served over real HTTP on loopback, talking to the Slack fake over
real HTTP, on a SQLite file, with an injected clock and the scheduler driven by it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.routing import SlackRoute, StepRoute
from bot.sandbox import DEFAULT_CHANNEL_ID, Message, SlackActor, SlackFakeServer
from bot.server import Runtime, ServerThread
from bot.testing import wait_outbox_idle
from engine import ManualClock, SqliteDb
from engine.db.base import BaseDb
from engine.db.postgres import PostgresDb
from tests.bot import workflows as test_workflows

SECRET = "test-signing-secret"
ALICE, BOB, CAROL, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"


@dataclass
class BotHarness:
    fake: SlackFakeServer
    runtime: Runtime
    server: ServerThread
    clock: ManualClock
    db_file: Path

    @property
    def url(self) -> str:
        return f"{self.server.url}/slack/events"

    @property
    def state(self) -> Any:
        return self.fake.state

    def actor(self, user_id: str, channel_id: str = DEFAULT_CHANNEL_ID) -> SlackActor:
        return SlackActor(
            bot_url=self.url,
            signing_secret=SECRET,
            fake=self.fake,
            user_id=user_id,
            channel_id=channel_id,
        )

    def wait(self, predicate: Callable[[Any], Any], what: str, timeout: float = 10.0) -> Any:
        return self.state.wait_for(predicate, timeout=timeout, what=what)

    def recorded(self, message: Message) -> bool:
        """Whether the bot has recorded this pause message as posted (it updates the message
        it recorded; a click before that waits for the outbox's next pass)."""
        tokens = {
            e.get("value")
            for b in message.blocks
            if b.get("type") == "actions"
            for e in b.get("elements") or []
            if e.get("type") == "button"
        }
        store = self.runtime.signoff.store
        pauses = [store.get_pause(t) for t in tokens if isinstance(t, str)]
        return any(p is not None and p.message_ts == message.ts for p in pauses)

    def pause_message(self, step_name: str, *, after: Message | None = None) -> Message:
        """The pause message for ``step_name`` (posted after ``after``, if given), once the
        bot has recorded it."""

        def find(state: Any) -> Message | None:
            for m in state.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False):
                if after is not None and m.ts <= after.ts:
                    continue
                if any(b.get("type") == "actions" for b in m.blocks) and step_name in m.text:
                    return m if self.recorded(m) else None
            return None

        return self.wait(find, f"pause message for {step_name}")

    def pause_message_of(self, run_id: str) -> Message:
        """The pause message (with its buttons) of one run, once posted."""

        def find(state: Any) -> Message | None:
            run = self.runtime.db.get_run(run_id)
            if run is None or not run.step_requirements:
                return None
            pause = self.runtime.signoff.store.get_pause(run.step_requirements[0].requirement_id)
            if pause is None or pause.message_ts is None:
                return None
            return state.message(pause.channel_id or pause.channel, pause.message_ts)

        return self.wait(find, f"pause message of run {run_id}")

    def wait_run(self, run_id: str, status: str, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        db = self.runtime.db
        while time.monotonic() < deadline:
            run = db.get_run(run_id)
            if run is not None and run.status.value == status:
                return run
            time.sleep(0.01)
        run = db.get_run(run_id)
        raise AssertionError(f"run {run_id} is {run.status if run else 'missing'}, not {status}")

    def expire_cached_groups(self) -> None:
        """Once what is being posted is out (App Home refreshes list groups too), the cached
        members of every group expire: the next permission check asks Slack."""
        self.wait_outbox_idle()
        self.runtime.groups.forget(None)

    def wait_outbox_idle(self, timeout: float = 10.0) -> dict[str, int]:
        """Until no outbox row is due or in flight (``bot.testing.wait_outbox_idle``)."""
        return wait_outbox_idle(self.runtime, timeout=timeout)

    def ephemerals_for(self, user_id: str) -> list[Message]:
        return [m for m in self.state.messages(DEFAULT_CHANNEL_ID) if m.ephemeral_for == user_id]


def make_routes() -> list[SlackRoute]:
    wfs = {wf.name: wf for wf in test_workflows.make_workflows()}
    kinds = test_workflows.pause_kind_workflows()
    return [
        SlackRoute(
            workflow=wfs["approve_me"], approvers=(ALICE, "S0APPROVERS"), allow_requester=False
        ),
        SlackRoute(
            workflow=wfs["cancel_me"],
            steps={"danger": StepRoute(approvers=(BOB,))},
            reminder_before=timedelta(minutes=10),
        ),
        SlackRoute(workflow=wfs["configure_me"]),
        SlackRoute(workflow=wfs["slow_one"]),
        SlackRoute(workflow=wfs["skip_on_timeout"]),
        SlackRoute(workflow=wfs["broken"]),
        *(SlackRoute(workflow=wf) for wf in kinds),
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[BaseDb, BaseDb]]:
    """One database, reached through two separate connection pools (one per replica)."""
    if request.param == "sqlite":
        pair: tuple[BaseDb, BaseDb] = (
            SqliteDb(db_file=tmp_path / "signoff.db"),
            SqliteDb(db_file=tmp_path / "signoff.db"),
        )
    else:
        factory: Callable[[], str] = request.getfixturevalue("pg_database_factory")
        url = factory()
        pair = (PostgresDb(url, pool_size=4), PostgresDb(url, pool_size=4))
    yield pair
    for db in pair:
        db.dispose()


@pytest.fixture
def bot_routes() -> list[SlackRoute]:
    """The routes the harness serves; a test module overrides this fixture for its own."""
    return make_routes()


@pytest.fixture
def harness(tmp_path: Path, bot_routes: list[SlackRoute]) -> Iterator[BotHarness]:
    test_workflows.EXECUTIONS.clear()
    test_workflows.SLOW_GATE.clear()
    test_workflows.FLAKY_FAILURES["left"] = 0
    fake = SlackFakeServer().start()
    fake.state.add_user(MALLORY, "mallory", real_name="Mallory")
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    db_file = tmp_path / "signoff.db"
    settings = Settings(
        SLACK_BOT_TOKEN=fake.state.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
        SIGNOFF_CHANNEL=DEFAULT_CHANNEL_ID,
        SIGNOFF_DATABASE_URL=f"sqlite:///{db_file}",
        SIGNOFF_POLL_SECONDS=3600,
    )
    runtime = Runtime(
        settings,
        routes=bot_routes,
        db=SqliteDb(db_file=db_file),
        clock=clock,
        scheduler_paused=True,
        outbox_poll_interval=0.05,
    )
    runtime.start()
    server = ServerThread(runtime.asgi).start()
    try:
        yield BotHarness(fake, runtime, server, clock, db_file)
    finally:
        test_workflows.SLOW_GATE.set()
        server.stop()
        runtime.stop()
        fake.stop()


# -- two replicas on one database (tests/bot/test_replica_*.py) --------------------------------
def make_replica(fake: SlackFakeServer, db: BaseDb, clock: ManualClock) -> Runtime:
    settings = Settings(
        SLACK_BOT_TOKEN=fake.state.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
        SIGNOFF_CHANNEL=DEFAULT_CHANNEL_ID,
        SIGNOFF_POLL_SECONDS=3600,  # polls are called by the test
    )
    return Runtime(
        settings,
        routes=make_routes(),
        db=db,
        clock=clock,
        scheduler_paused=True,
        outbox_poll_interval=0.05,
    )


@pytest.fixture
def replicas(
    database_pair: tuple[BaseDb, BaseDb],
) -> Iterator[tuple[SlackFakeServer, ManualClock, Runtime, Runtime]]:
    test_workflows.EXECUTIONS.clear()
    fake = SlackFakeServer().start()
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    first = make_replica(fake, database_pair[0], clock)
    second = make_replica(fake, database_pair[1], clock)
    started: list[Runtime] = []
    try:
        for replica in (first, second):
            replica.start()
            started.append(replica)
        yield fake, clock, first, second
    finally:
        for replica in started:
            replica.stop()
        fake.stop()
