"""The tables of direct-message copies and App Home users (``bot/notify.py``), on SQLite files
and on PostgreSQL: a copy recorded once, every copy of a pause found, a person's latest
decisions read from the engine's audit trail with their workflow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.notify import NotifyStore
from bot.store import BotStore, slack_runs
from engine import Outcome, SqliteDb
from engine.db.base import BaseDb
from engine.db.postgres import PostgresDb
from engine.db.schema import decisions

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseDb]:
    if request.param == "sqlite":
        made: BaseDb = SqliteDb(db_url=f"sqlite:///{tmp_path / 'signoff.db'}")
    else:
        made = PostgresDb(request.getfixturevalue("pg_database_factory")())
    made.ensure_schema()
    BotStore(made).ensure_schema()
    yield made
    made.dispose()


def test_copies_are_recorded_once_and_found_per_pause(db: BaseDb) -> None:
    store = NotifyStore(db)
    for user, ts, at in (("U0BOB", "2.0", NOW), ("U0ALICE", "1.0", NOW - timedelta(seconds=1))):
        store.add_copy(
            requirement_id="r1",
            user_id=user,
            run_id="run1",
            channel_id=f"D{user}",
            message_ts=ts,
            now=at,
        )
    # A repeat (a retried delivery) keeps the first record.
    store.add_copy(
        requirement_id="r1",
        user_id="U0BOB",
        run_id="run1",
        channel_id="DX",
        message_ts="9.0",
        now=NOW,
    )
    assert store.copies("r1") == [("U0ALICE", "DU0ALICE", "1.0"), ("U0BOB", "DU0BOB", "2.0")]
    assert store.copy_of("r1", "U0BOB") == ("DU0BOB", "2.0")
    assert store.copy_of("r1", "U0CAROL") is None
    assert store.copies("r2") == []


def test_home_users_are_marked_once_each(db: BaseDb) -> None:
    store = NotifyStore(db)
    assert store.home_users() == []
    store.mark_home("U0ALICE", NOW)
    store.mark_home("U0ALICE", NOW + timedelta(minutes=1))
    store.mark_home("U0BOB", NOW)
    assert sorted(store.home_users()) == ["U0ALICE", "U0BOB"]


def test_recent_decisions_are_the_persons_newest_first_with_their_workflow(db: BaseDb) -> None:
    with db.engine.begin() as conn:
        for run_id, workflow in (("run1", "deploy"), ("run2", "report")):
            conn.execute(
                slack_runs.insert(),
                {"run_id": run_id, "workflow_name": workflow, "channel": "C1", "created_at": NOW},
            )
        for i, (run_id, who, outcome) in enumerate(
            [
                ("run1", "U0ALICE", Outcome.confirmed),
                ("run2", "U0ALICE", Outcome.rejected),
                ("run2", "U0BOB", Outcome.confirmed),
            ]
        ):
            conn.execute(
                decisions.insert(),
                {
                    "run_id": run_id,
                    "requirement_id": f"req{i}",
                    "step_name": f"step{i}",
                    "outcome": outcome.value,
                    "decided_by": who,
                    "decided_at": NOW + timedelta(minutes=i),
                },
            )
    store = NotifyStore(db)
    found = store.recent_decisions("U0ALICE", limit=10)
    assert [(name, d.step_name, d.outcome) for name, d in found] == [
        ("report", "step1", Outcome.rejected),
        ("deploy", "step0", Outcome.confirmed),
    ]
    assert found[0][1].decided_at == NOW + timedelta(minutes=1)
    assert [d.step_name for _, d in store.recent_decisions("U0ALICE", limit=1)] == ["step1"]
    assert store.recent_decisions("U0CAROL", limit=10) == []
