"""A run's outbox items go out in order, by one worker at a time, across replicas: two
claimers on one database (SQLite file, PostgreSQL) never split a run's items, the fast lane
never overtakes a run's earlier items, and an item held back is not counted as due (an idle
outbox is one with nothing in flight and nothing a claim would take)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.kinds import OutboxKind, OutboxState
from bot.outbox import URGENT_KINDS, OutboxWorker
from bot.sandbox import DEFAULT_CHANNEL_ID, SlackFakeServer
from bot.server import Runtime
from bot.store import BotStore, OutboxItem, slack_outbox
from engine import ManualClock
from engine.db.base import BaseDb
from tests.bot.conftest import SECRET, make_routes

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
RUN = "run-1"
Handler = Callable[[OutboxItem], None]


@pytest.fixture
def stores(database_pair: tuple[BaseDb, BaseDb]) -> tuple[BotStore, BotStore]:
    for db in database_pair:
        db.ensure_schema()
    first, second = BotStore(database_pair[0]), BotStore(database_pair[1])
    first.ensure_schema()
    second.ensure_schema()
    return first, second


def enqueue(store: BotStore, key: str, kind: str, run_id: str = RUN) -> None:
    assert store.enqueue(key=key, run_id=run_id, kind=kind, data={}, now=NOW)


def keys(items: list[OutboxItem]) -> list[str]:
    return [i.dedupe_key for i in items]


def sent(store: BotStore, items: list[OutboxItem]) -> None:
    store.finish_many([(i.id, OutboxState.sent, None, NOW) for i in items])


def test_a_runs_later_item_waits_while_another_replica_delivers_an_earlier_one(
    stores: tuple[BotStore, BotStore],
) -> None:
    first, second = stores
    enqueue(first, "root", OutboxKind.root)
    enqueue(first, "other-root", OutboxKind.root, run_id="run-2")
    root = first.claim_due(now=NOW, lease=LEASE, limit=1)
    assert keys(root) == ["root"]
    enqueue(first, "pause", OutboxKind.pause)  # recorded while the root is being posted
    # The other replica takes the other run, not this run's pause.
    assert keys(second.claim_due(now=NOW, lease=LEASE)) == ["other-root"]
    # In flight: the two roots; the pause is nothing a claim would take yet.
    assert second.outbox_unsettled(now=NOW) == 2
    sent(first, root)
    assert keys(second.claim_due(now=NOW, lease=LEASE)) == ["pause"]


def test_a_refresh_is_not_added_while_one_of_its_group_waits(
    stores: tuple[BotStore, BotStore],
) -> None:
    first, second = stores
    enqueue(first, "refresh-1", OutboxKind.root_update)
    # Still pending: it will render the run as it is when it goes, so the next is redundant
    # (from either replica); other kinds and other groups are added as ever.
    added = [
        second.enqueue(key="refresh-2", run_id=RUN, kind=OutboxKind.root_update, data={}, now=NOW),
        second.enqueue(key="note-1", run_id=RUN, kind=OutboxKind.note, data={}, now=NOW),
        second.enqueue(
            key="refresh-3", run_id="run-2", kind=OutboxKind.root_update, data={}, now=NOW
        ),
    ]
    assert added == [False, True, True]
    taken = first.claim_due(now=NOW, lease=LEASE)
    assert keys(taken) == ["refresh-1", "note-1", "refresh-3"]
    # Being delivered, it may have read the run already: a change now needs a new refresh.
    enqueue(second, "refresh-4", OutboxKind.root_update)
    sent(first, taken)
    assert keys(first.claim_due(now=NOW, lease=LEASE)) == ["refresh-4"]


def test_a_decisions_update_is_taken_as_it_is_added_unless_its_run_has_unsent_items(
    stores: tuple[BotStore, BotStore],
) -> None:
    first, second = stores

    def take(store: BotStore, key: str, run_id: str = RUN) -> OutboxItem | None:
        with store.db.write() as conn:
            return store.enqueue_taken_on(
                conn, (key, run_id, OutboxKind.resolve, {}), now=NOW, lease=LEASE
            )

    taken = take(first, "resolve-1")
    assert taken is not None and (taken.dedupe_key, taken.attempts) == ("resolve-1", 1)
    # Being sent by the replica that added it: no claim (here or elsewhere) takes it.
    assert second.claim_due(now=NOW, lease=LEASE) == []
    assert take(second, "resolve-1") is None  # a key added before
    # Its run has an unsent item now: the next one waits its turn in the queue.
    assert take(second, "resolve-2") is None
    sent(first, [taken])
    assert keys(first.claim_due(now=NOW, lease=LEASE)) == ["resolve-2"]
    assert take(first, "other", run_id="run-2") is not None  # another run: taken at once


def test_a_run_is_taken_whole_up_to_an_item_not_due(stores: tuple[BotStore, BotStore]) -> None:
    first, second = stores
    for key, kind in [("root", OutboxKind.root), ("pause", OutboxKind.pause)]:
        enqueue(first, key, kind)
    (root, pause) = first.claim_due(now=NOW, lease=LEASE)
    # The pause waits for a retry (Slack rate-limited it); the root went out.
    later = NOW + timedelta(seconds=30)
    first.finish_many(
        [(root.id, OutboxState.sent, None, NOW), (pause.id, OutboxState.pending, "x", later)]
    )
    enqueue(first, "note", OutboxKind.note)
    assert second.claim_due(now=NOW, lease=LEASE) == []
    assert second.outbox_unsettled(now=NOW) == 0  # the note cannot go before the pause
    assert keys(second.claim_due(now=later, lease=LEASE)) == ["pause", "note"]


def test_an_expired_lease_gives_the_run_back_in_order(stores: tuple[BotStore, BotStore]) -> None:
    first, second = stores
    enqueue(first, "root", OutboxKind.root)
    assert keys(first.claim_due(now=NOW, lease=LEASE)) == ["root"]
    enqueue(first, "pause", OutboxKind.pause)
    assert second.claim_due(now=NOW + LEASE / 2, lease=LEASE) == []
    # The first replica died mid-post: once its lease runs out, root and pause go together.
    later = NOW + LEASE + timedelta(seconds=1)
    assert keys(second.claim_due(now=later, lease=LEASE)) == ["root", "pause"]


def test_a_lapsed_claims_outcome_does_not_overwrite_the_claim_that_took_over(
    stores: tuple[BotStore, BotStore],
) -> None:
    first, second = stores
    enqueue(first, "root", OutboxKind.root)
    (stale,) = first.claim_due(now=NOW, lease=LEASE)
    later = NOW + LEASE + timedelta(seconds=1)  # the first worker stalled past its lease
    (taken,) = second.claim_due(now=later, lease=LEASE)
    assert taken.id == stale.id and taken.attempts == stale.attempts + 1
    second.finish_many(
        [(taken.id, OutboxState.sent, None, later)], claimed={taken.id: taken.attempts}
    )
    # The stalled worker comes back with a failure to record: dropped, the row stays sent.
    retry_at = later + timedelta(seconds=30)
    first.finish_many(
        [(stale.id, OutboxState.pending, "timed out", retry_at)],
        claimed={stale.id: stale.attempts},
    )
    assert first.outbox_counts().get("sent") == 1 and not first.outbox_counts().get("pending")
    assert second.claim_due(now=retry_at, lease=LEASE) == []


def test_the_fast_lane_never_overtakes_a_runs_earlier_items(
    stores: tuple[BotStore, BotStore],
) -> None:
    first, second = stores
    enqueue(first, "root", OutboxKind.root)
    sent(first, first.claim_due(now=NOW, lease=LEASE))
    enqueue(first, "pause", OutboxKind.pause)
    enqueue(first, "resolve", OutboxKind.resolve)  # decided before its message went out
    assert second.claim_due(now=NOW, lease=LEASE, kinds=URGENT_KINDS) == []
    assert keys(first.claim_due(now=NOW, lease=LEASE)) == ["pause", "resolve"]
    enqueue(first, "resolve-2", OutboxKind.resolve, run_id="run-2")
    # Another run's resolve, with nothing before it, is the fast lane's.
    assert keys(second.claim_due(now=NOW, lease=LEASE, kinds=URGENT_KINDS)) == ["resolve-2"]


def test_a_run_whose_earlier_item_another_claim_is_taking_is_left_whole(
    stores: tuple[BotStore, BotStore],
) -> None:
    # PostgreSQL: SKIP LOCKED passes over the root another replica's claim has locked but
    # not committed yet; its pause must not be taken on its own. (SQLite: that claim holds
    # the write lock, so here the claim is committed first; the outcome is the same.)
    first, second = stores
    enqueue(first, "root", OutboxKind.root)
    enqueue(first, "pause", OutboxKind.pause)
    enqueue(first, "other-root", OutboxKind.root, run_id="run-2")
    db = first.db
    if db.engine.dialect.name != "postgresql":
        first.claim_due(now=NOW, lease=LEASE, limit=1)
        assert keys(second.claim_due(now=NOW, lease=LEASE)) == ["other-root"]
        return
    with db.engine.connect() as conn, conn.begin():
        locked = conn.execute(
            select(slack_outbox.c.id)
            .where(slack_outbox.c.dedupe_key == "root")
            .with_for_update(skip_locked=True)
        ).all()
        assert len(locked) == 1
        assert keys(second.claim_due(now=NOW, lease=LEASE)) == ["other-root"]
    assert keys(second.claim_due(now=NOW, lease=LEASE)) == ["root", "pause"]


def lease_until(store: BotStore, key: str) -> datetime | None:
    with store.engine.connect() as conn:
        until: datetime | None = conn.execute(
            select(slack_outbox.c.lease_until).where(slack_outbox.c.dedupe_key == key)
        ).scalar()
    return until


@dataclass
class Workers:
    """Two replicas' outbox workers on one database, driven by the test (not started):
    their handlers record what they delivered, the root's waiting for ``release``."""

    clock: ManualClock
    store: BotStore
    runtimes: list[Runtime]
    delivered: list[str]
    entered: threading.Event
    release: threading.Event
    made: list[OutboxWorker] = field(default_factory=list)

    def worker(self, index: int, *, lease: timedelta = LEASE) -> OutboxWorker:
        def post_root(item: OutboxItem) -> None:
            self.entered.set()
            assert self.release.wait(10), "the test did not release the root"
            self.delivered.append(item.dedupe_key)

        def post(item: OutboxItem) -> None:
            self.delivered.append(item.dedupe_key)

        runtime = self.runtimes[index]
        handlers: dict[str, Handler] = {
            OutboxKind.root: post_root,
            OutboxKind.pause: post,
            OutboxKind.note: post,
        }
        made = OutboxWorker(runtime.signoff, runtime.queries, handlers=handlers, lease=lease)
        self.made.append(made)
        return made

    def deliver_in_background(self, worker: OutboxWorker) -> Callable[[], int]:
        """Start ``worker``'s pass in a thread once its root's delivery has begun; the
        returned call releases the root and returns how many the pass delivered."""
        results: list[int] = []
        thread = threading.Thread(target=lambda: results.append(worker.deliver_due()))
        thread.start()
        assert self.entered.wait(10)

        def finish() -> int:
            self.release.set()
            thread.join(10)
            assert not thread.is_alive()
            (delivered,) = results
            return delivered

        return finish

    def stop(self) -> None:
        self.release.set()
        for worker in self.made:
            worker.stop()
        for runtime in self.runtimes:
            runtime.signoff.stop()


@pytest.fixture
def workers(database_pair: tuple[BaseDb, BaseDb]) -> Iterator[Workers]:
    fake = SlackFakeServer().start()
    clock = ManualClock(NOW)
    settings = Settings(
        SLACK_BOT_TOKEN=fake.state.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
        SIGNOFF_CHANNEL=DEFAULT_CHANNEL_ID,
    )
    runtimes = [Runtime(settings, routes=make_routes(), db=db, clock=clock) for db in database_pair]
    for runtime in runtimes:
        runtime.signoff.start()  # the schemas only: the test drives the workers itself
    made = Workers(
        clock, runtimes[0].signoff.store, runtimes, [], threading.Event(), threading.Event()
    )
    try:
        yield made
    finally:
        made.stop()
        fake.stop()


def test_two_replicas_workers_deliver_a_run_in_order_while_its_root_is_held(
    workers: Workers,
) -> None:
    first, second = workers.worker(0), workers.worker(1)
    enqueue(workers.store, "root", OutboxKind.root)
    finish = workers.deliver_in_background(first)
    enqueue(workers.store, "pause", OutboxKind.pause)
    enqueue(workers.store, "note", OutboxKind.note)
    assert second.deliver_due() == 0  # the run is the first replica's until it is done
    assert workers.delivered == []
    assert finish() == 1
    assert second.deliver_due() == 2
    assert workers.delivered == ["root", "pause", "note"]


def test_a_slow_delivery_keeps_its_lease_and_its_run(workers: Workers) -> None:
    # A short lease (a dead replica's claim frees its run soon) is renewed while the pass
    # runs: a slow Slack call does not lose the item to the other replica.
    lease = timedelta(milliseconds=300)
    first, second = workers.worker(0, lease=lease), workers.worker(1, lease=lease)
    store = workers.store
    enqueue(store, "root", OutboxKind.root)
    finish = workers.deliver_in_background(first)
    assert lease_until(store, "root") == NOW + lease
    workers.clock.advance(timedelta(seconds=5))  # far past the lease it was claimed with
    renewed = NOW + timedelta(seconds=5) + lease
    wait_until = time.monotonic() + 10
    while lease_until(store, "root") != renewed:  # the keeper's next renewal
        assert time.monotonic() < wait_until, "the lease was not renewed"
        time.sleep(0.01)
    assert second.deliver_due() == 0
    assert finish() == 1
    assert workers.delivered == ["root"]
    assert lease_until(store, "root") is None


def test_finishing_and_renewing_the_same_items_at_once_never_deadlock(
    stores: tuple[BotStore, BotStore],
) -> None:
    """A delivery pass records its outcomes while the lease keeper renews leases on some of
    the same rows (seen on PostgreSQL under load: ``deadlock detected`` between the two).
    Both lock the rows in id order, whatever order they are given in."""
    first, second = stores
    for n in range(40):
        enqueue(first, f"item-{n}", OutboxKind.note, run_id=f"run-{n}")
    items = first.claim_due(now=NOW, lease=LEASE)
    assert len(items) == 40
    ids = [i.id for i in items]
    errors: list[BaseException] = []
    stop = time.monotonic() + 2.0

    def finish() -> None:
        while time.monotonic() < stop and not errors:
            outcomes: list[tuple[int, str, str | None, datetime]] = [
                (i, OutboxState.sending, None, NOW) for i in reversed(ids)
            ]
            try:
                first.finish_many(outcomes)
            except Exception as exc:
                errors.append(exc)

    def renew() -> None:
        while time.monotonic() < stop and not errors:
            try:
                second.renew_outbox_leases(ids, until=NOW + LEASE)
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=finish), threading.Thread(target=renew)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
