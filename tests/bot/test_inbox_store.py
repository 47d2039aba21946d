"""The inbox table on SQLite files and PostgreSQL: one insert per key (a retry is a no-op),
a bounded wait for a lock held elsewhere, leases another replica waits out, and a decision's
row marked done in the engine's claim transaction (or not at all)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.store import BotStore, InboxEntry
from engine import SqliteDb
from engine.db.base import BaseDb
from engine.db.postgres import PostgresDb

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOCK_WAIT = 0.3


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BotStore]:
    if request.param == "sqlite":
        db: BaseDb = SqliteDb(db_file=tmp_path / "signoff.db")
    else:
        db = PostgresDb(request.getfixturevalue("pg_database_factory")())
    store = BotStore(db)
    store.ensure_schema()
    yield store
    db.dispose()


def _entry(key: str) -> InboxEntry:
    return InboxEntry(key, "decide", "U1", {"decide": {"token": "t", "action": "confirm"}})


def test_one_row_per_key_and_a_repeat_is_a_no_op(store: BotStore) -> None:
    assert store.record_inbox(
        [_entry("a"), _entry("b"), _entry("a")], now=T0, lock_timeout=LOCK_WAIT
    ) == [True, True, False]
    assert store.record_inbox([_entry("b")], now=T0, lock_timeout=LOCK_WAIT) == [False]
    assert store.inbox_counts() == {"pending": 2}


def test_a_lock_held_elsewhere_is_waited_for_a_bounded_time(store: BotStore) -> None:
    if store.engine.dialect.name == "sqlite":
        database = store.engine.url.database
        assert database is not None
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        release = other.rollback
    else:
        holder = store.engine.connect()
        holder.execute(text("LOCK TABLE slack_inbox IN EXCLUSIVE MODE"))
        release = holder.rollback
    started = time.monotonic()
    try:
        with pytest.raises(Exception, match=r"(?i)lock|timeout|cancel"):
            store.record_inbox([_entry("a")], now=T0, lock_timeout=LOCK_WAIT)
        waited = time.monotonic() - started
    finally:
        release()
    # Bounded by the lock timeout asked for, well inside Slack's 3 s, not by the 30 s the
    # engine's own writes wait for a lock.
    assert waited < 3.0
    assert store.record_inbox([_entry("a")], now=T0, lock_timeout=LOCK_WAIT) == [True]
    # The connection's own lock wait is back to the engine's after the bounded insert.
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_a_lock_released_within_the_bound_is_waited_for_then_taken(store: BotStore) -> None:
    # Another writer's ordinary commit must not fail the insert: it waits for the lock.
    if store.engine.dialect.name == "sqlite":
        database = store.engine.url.database
        assert database is not None
        other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = other.rollback
    else:
        holder = store.engine.connect()
        holder.execute(text("LOCK TABLE slack_inbox IN EXCLUSIVE MODE"))
        release = holder.rollback
    timer = threading.Timer(0.2, release)
    timer.start()
    try:
        assert store.record_inbox([_entry("b")], now=T0, lock_timeout=10.0) == [True]
    finally:
        timer.join()


def test_a_lease_is_waited_out_then_taken_over(store: BotStore) -> None:
    store.record_inbox([_entry("a")], now=T0, lock_timeout=LOCK_WAIT)
    lease = timedelta(seconds=60)
    (first,) = store.claim_inbox(now=T0, lease=lease)
    assert first.attempts == 1 and first.data["decide"]["action"] == "confirm"
    assert store.claim_inbox(now=T0 + timedelta(seconds=59), lease=lease) == []
    (again,) = store.claim_inbox(now=T0 + timedelta(seconds=61), lease=lease)
    assert again.key == "a" and again.attempts == 2
    store.retry_inbox("a", at=T0 + timedelta(minutes=5), error="database is locked")
    assert store.claim_inbox(now=T0 + timedelta(minutes=4), lease=lease) == []
    assert [i.key for i in store.claim_inbox(now=T0 + timedelta(minutes=5), lease=lease)] == ["a"]


def test_done_in_the_claim_transaction_or_not_at_all(store: BotStore) -> None:
    store.record_inbox([_entry("a")], now=T0, lock_timeout=LOCK_WAIT)
    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        store.finish_inbox_on(conn, "a", state="done", now=T0)
        raise RuntimeError("the claim failed")
    assert store.inbox_state("a") == "pending"
    with store.engine.begin() as conn:
        store.finish_inbox_on(conn, "a", state="done", now=T0)
    assert store.inbox_state("a") == "done"
    assert store.claim_inbox(now=T0 + timedelta(days=1), lease=timedelta(seconds=60)) == []
