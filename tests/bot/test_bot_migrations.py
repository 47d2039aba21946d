"""The bot's tables are made and versioned by Alembic (``bot/migrations``), apart from the
engine's; a database made by the previous release (its ``create_all``, no bot version row) is
adopted and upgraded. On SQLite files and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, inspect, select

from bot import migrations
from bot.store import BotStore, metadata, slack_outbox
from engine import SqliteDb
from engine.db.base import BaseDb
from engine.db.postgres import PostgresDb
from engine.db.schema import UtcDateTime


def previous_release_tables() -> MetaData:
    """The bot's tables exactly as the release before Alembic made them (frozen here: the
    live ``bot.store.metadata`` moves on)."""
    md = MetaData()
    Table(
        "slack_runs",
        md,
        Column("run_id", String(64), primary_key=True),
        Column("workflow_name", String(200), nullable=False),
        Column("channel", String(100), nullable=False),
        Column("channel_id", String(100)),
        Column("root_ts", String(32)),
        Column("created_at", UtcDateTime(), nullable=False),
    )
    Table(
        "slack_pauses",
        md,
        Column("requirement_id", String(64), primary_key=True),
        Column("run_id", String(64), nullable=False, index=True),
        Column("workflow_name", String(200), nullable=False),
        Column("step_name", String(200), nullable=False),
        Column("channel", String(100), nullable=False),
        Column("channel_id", String(100)),
        Column("message_ts", String(32)),
        Column("created_at", UtcDateTime(), nullable=False),
    )
    Table(
        "slack_outbox",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("dedupe_key", String(200), nullable=False, unique=True),
        Column("run_id", String(64), nullable=False, index=True),
        Column("kind", String(32), nullable=False),
        Column("data", Text, nullable=False),
        Column("state", String(16), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", UtcDateTime(), nullable=False),
        Column("lease_until", UtcDateTime()),
        Column("last_error", Text),
        Column("created_at", UtcDateTime(), nullable=False),
    )
    Table(
        "slack_seen_requests",
        md,
        Column("request_key", String(200), primary_key=True),
        Column("seen_at", UtcDateTime(), nullable=False),
    )
    return md


@pytest.fixture(params=["sqlite", "postgresql"])
def make_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], BaseDb]]:
    """Makes handles (separate connection pools, as separate processes have) on one new
    database per test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'signoff.db'}"
    else:
        url = request.getfixturevalue("pg_database_factory")()
    made: list[BaseDb] = []

    def make() -> BaseDb:
        db: BaseDb = SqliteDb(db_url=url) if url.startswith("sqlite") else PostgresDb(url)
        made.append(db)
        return db

    yield make
    for db in made:
        db.dispose()


def schema_of(db: BaseDb, tables: list[str]) -> dict[str, Any]:
    """What a reader of the database sees of ``tables``: columns (type, nullability),
    primary keys, unique constraints, indexes."""
    with db.engine.connect() as conn:
        insp = inspect(conn)
        return {
            t: {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)
                ],
                "pk": insp.get_pk_constraint(t)["constrained_columns"],
                "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(t)),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in insp.get_indexes(t)
                ),
            }
            for t in tables
        }


def test_migration_0001_is_the_previous_release_schema_exactly(
    make_db: Callable[[], BaseDb],
) -> None:
    migrated = make_db()
    migrated.ensure_schema()
    with migrated.schema_transaction() as conn:
        assert migrations.upgrade(conn, migrations.BASELINE_REVISION) == ["0001_bot_tables"]
    baseline = previous_release_tables()
    names = sorted(baseline.tables)
    expected_schema = schema_of(migrated, names)
    # The same tables made by the previous release's create_all, in their place.
    with migrated.engine.begin() as conn:
        for table in reversed(baseline.sorted_tables):
            table.drop(conn)
        baseline.create_all(conn)
    assert schema_of(migrated, names) == expected_schema


def test_head_matches_the_tables_the_bot_uses(make_db: Callable[[], BaseDb]) -> None:
    db = make_db()
    assert BotStore(db).ensure_schema() == _revisions_after("base")
    with db.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head_revision()
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Only the bot's tables: the engine's and the version tables are not in this metadata.
    ours = [d for d in diff if _table_of(d) in metadata.tables]
    assert ours == [], f"bot/store.py differs from bot/migrations at head: {ours}"


def _table_of(entry: Any) -> str | None:
    if isinstance(entry, list):  # column modifications come grouped
        return _table_of(entry[0])
    if entry[0] in ("add_table", "remove_table"):
        return str(entry[1].name)
    if entry[0] in ("add_index", "remove_index"):
        return str(entry[1].table.name)
    if entry[0] in ("add_constraint", "remove_constraint"):
        return str(entry[1].table.name)
    if entry[0] in ("add_column", "remove_column"):
        return str(entry[2])
    return str(entry[2]) if len(entry) > 2 else None


def test_a_previous_release_database_is_adopted_and_upgraded(
    make_db: Callable[[], BaseDb],
) -> None:
    old = make_db()
    old.ensure_schema()  # the engine's tables, as the previous release made them
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with old.engine.begin() as conn:
        previous_release_tables().create_all(conn)
        conn.execute(
            previous_release_tables().tables["slack_outbox"].insert(),
            {
                "dedupe_key": "pause:r1",
                "run_id": "r1",
                "kind": "pause",
                "data": "{}",
                "state": "sent",
                "attempts": 1,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
    with old.engine.connect() as conn:
        assert migrations.current_revision(conn) is None

    upgraded = make_db()
    store = BotStore(upgraded)
    applied = store.ensure_schema()
    assert applied == _revisions_after(migrations.BASELINE_REVISION)
    with upgraded.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head_revision()
        rows = conn.execute(select(slack_outbox.c.dedupe_key, slack_outbox.c.state)).all()
    assert [tuple(r) for r in rows] == [("pause:r1", "sent")], "the rows are kept"
    # The adopted outbox keeps its unique keys: the same post is not enqueued twice.
    assert store.enqueue(key="pause:r1", run_id="r1", kind="pause", data={}, now=now) is False
    assert BotStore(make_db()).ensure_schema() == []


def _revisions_after(revision: str) -> list[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrations.HERE))
    later = [r.revision for r in script.iterate_revisions(migrations.head_revision(), revision)]
    return list(reversed(later))


def test_replicas_starting_together_migrate_once(make_db: Callable[[], BaseDb]) -> None:
    stores = [BotStore(make_db()) for _ in range(3)]
    barrier = threading.Barrier(len(stores))
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def start(store: BotStore) -> None:
        barrier.wait()
        try:
            results.append(store.ensure_schema())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results, key=len) == [[], [], _revisions_after("base")]


def test_upgrade_from_0001_carries_seen_requests_into_the_inbox(
    make_db: Callable[[], BaseDb],
) -> None:
    from bot.store import slack_inbox, slack_pauses

    db = make_db()
    db.ensure_schema()
    with db.schema_transaction() as conn:
        assert migrations.upgrade(conn, migrations.BASELINE_REVISION) == ["0001_bot_tables"]
    seen_at = datetime(2026, 1, 1, tzinfo=UTC)
    with db.engine.begin() as conn:
        conn.execute(
            previous_release_tables().tables["slack_seen_requests"].insert(),
            {"request_key": "action:U1:approve:1.2", "seen_at": seen_at},
        )
    store = BotStore(make_db())
    assert store.ensure_schema() == [
        "0002_inbox",
        "0003_dm_copies_and_home",
        "0004_policies",
        "0005_open_forms",
        "0005_outbox_run_order",
    ]
    with store.engine.connect() as conn:
        assert not inspect(conn).has_table("slack_seen_requests")
        outbox_indexes = {i["name"] for i in inspect(conn).get_indexes("slack_outbox")}
        assert "ix_slack_outbox_run_state_id" in outbox_indexes
        assert "ix_slack_outbox_run_id" not in outbox_indexes
        row = conn.execute(select(slack_inbox)).one()
        assert "permalink" in {c["name"] for c in inspect(conn).get_columns(slack_pauses.name)}
    assert (row.request_key, row.kind, row.state) == ("action:U1:approve:1.2", "seen", "done")
    # A retry of the request handled before the upgrade is still a repeat.
    assert store.first_time_seen("action:U1:approve:1.2", now=seen_at) is False
    assert store.first_time_seen("action:U1:approve:9.9", now=seen_at) is True
