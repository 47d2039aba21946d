"""The bot's own tables, next to the engine's in the same database.

- ``slack_runs``: each run's channel and root message.
- ``slack_pauses``: each posted pause; its id is the opaque token in buttons and modals.
- ``slack_outbox``: every Slack post/update to make, delivered by a worker with retries,
  so a pause is posted even if Slack was down or rate-limiting when it happened, and
  posted once even when several replicas see it (unique ``dedupe_key`` + a claim).
- ``slack_inbox``: every interaction Slack sent us, keyed by its de-dup key, recorded before
  the ack: a state-changing one (a click, a form, a command that starts or decides) is
  ``pending`` until a worker applies it (``bot/inbox.py``); a repeat of any key is a no-op.
- ``slack_dm_copies``, ``slack_home_users``: direct-message copies of pauses and the people
  with a published App Home (read and written by ``bot/notify.py``).
- ``slack_escalations``, ``slack_delegations``, ``slack_vote_locks``: approval policies
  (``bot/escalation.py``, ``bot/delegation.py``, ``bot/policies.py``).
- ``slack_open_forms``: forms (modals) open on pauses, replaced when the pause is decided or
  times out, by whichever replica (``bot/forms.py``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Enum,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.kinds import REFRESH_KINDS, InboxKind, InboxState, OutboxState
from engine.db.base import BaseDb
from engine.db.schema import UtcDateTime

metadata = MetaData()
UNSENT = (OutboxState.pending, OutboxState.sending)  # an outbox item not delivered nor given up

slack_runs = Table(
    "slack_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("workflow_name", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("channel_id", String(100)),  # as Slack answered; chat.update needs the id
    Column("root_ts", String(32)),
    Column("created_at", UtcDateTime(), nullable=False),
)

slack_pauses = Table(
    "slack_pauses",
    metadata,
    Column("requirement_id", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("workflow_name", String(200), nullable=False),
    Column("step_name", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("channel_id", String(100)),
    Column("message_ts", String(32)),
    Column("permalink", String(500)),  # fetched by the outbox after posting
    Column("created_at", UtcDateTime(), nullable=False),
)

slack_outbox = Table(
    "slack_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("run_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending | sending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime()),
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    # Claims and /metrics counts by state; retention by (state, when it was finished).
    Index("ix_slack_outbox_state_next", "state", "next_attempt_at"),
    # A claim's check of each item's earlier unsent items of its run (claim_due).
    Index("ix_slack_outbox_run_state_id", "run_id", "state", "id"),
)

INBOX_STATES = tuple(s.value for s in InboxState)
slack_inbox = Table(
    "slack_inbox",
    metadata,
    Column("request_key", String(200), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("user_id", String(64)),
    Column("data", Text, nullable=False),
    Column(
        "state",
        Enum(*INBOX_STATES, name="slack_inbox_state", native_enum=False, length=16),
        nullable=False,
    ),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime()),
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Index("ix_slack_inbox_state_next", "state", "next_attempt_at"),
)

# Direct-message copies of pause messages (``bot/notify.py``): one per (pause, approver), so
# a decision in any copy updates every copy.
slack_dm_copies = Table(
    "slack_dm_copies",
    metadata,
    Column("requirement_id", String(64), primary_key=True),
    Column("user_id", String(32), primary_key=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("channel_id", String(100), nullable=False),
    Column("message_ts", String(32), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# People whose App Home tab Signoff has published: refreshed when a pause anyone may decide
# comes or goes (``bot/notify.py``).
slack_home_users = Table(
    "slack_home_users",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("published_at", UtcDateTime(), nullable=False),
)

# Approval policies (``bot/escalation.py``, ``bot/delegation.py``, ``bot/policies.py``): each
# pause escalated once (the row is the claim, across replicas), each delegation given, and
# the short lease that puts the group check and the vote of one pause one after the other.
slack_escalations = Table(
    "slack_escalations",
    metadata,
    Column("requirement_id", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("step_name", String(200), nullable=False),
    Column("escalated_to", Text, nullable=False),  # JSON list of user and user-group IDs
    Column("escalated_at", UtcDateTime(), nullable=False),
)

slack_delegations = Table(
    "slack_delegations",
    metadata,
    Column("requirement_id", String(64), primary_key=True),
    Column("delegator_id", String(32), primary_key=True),
    Column("delegate_id", String(32), nullable=False),
    Column("run_id", String(64), nullable=False, index=True),
    Column("step_name", String(200), nullable=False),
    Column("reason", Text),
    Column("delegated_at", UtcDateTime(), nullable=False),
)

slack_vote_locks = Table(
    "slack_vote_locks",
    metadata,
    Column("requirement_id", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("locked_until", UtcDateTime(), nullable=False),
)


# Forms open on pauses (``bot/forms.py``): shared, so the replica that decides a pause finds
# the forms opened through the others.
slack_open_forms = Table(
    "slack_open_forms",
    metadata,
    Column("view_id", String(64), primary_key=True),
    Column("requirement_id", String(64), nullable=False, index=True),
    Column("user_id", String(32), nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
)


@dataclass(frozen=True)
class RunRef:
    """Where a run's messages are in Slack."""

    run_id: str
    workflow_name: str
    channel: str
    root_ts: str | None
    channel_id: str | None = None


@dataclass(frozen=True)
class PauseRef:
    """A posted pause: its run, step and message."""

    requirement_id: str
    run_id: str
    workflow_name: str
    step_name: str
    channel: str
    message_ts: str | None
    channel_id: str | None = None
    permalink: str | None = None


@dataclass(frozen=True)
class OutboxItem:
    """One claimed outbox item to deliver."""

    id: int
    dedupe_key: str
    run_id: str
    kind: str
    data: dict[str, Any]
    attempts: int


class BotStore:
    """The bot's tables (runs, pauses, outbox, seen requests) in the engine's database."""

    def __init__(self, db: BaseDb) -> None:
        self.db = db
        self.engine: Engine = db.engine
        self._ready = False
        self._lock = threading.Lock()

    def ensure_schema(self) -> list[str]:
        """Create or upgrade the bot's tables with their Alembic migrations (``bot/migrations``);
        returns the revisions this call applied."""
        if self._ready:
            return []
        from bot.migrations import upgrade

        with self._lock:
            if self._ready:
                return []
            # Under the schema lock: replicas starting together migrate once, the others wait
            # and then find nothing to do.
            with self.db.schema_transaction() as conn:
                applied = upgrade(conn)
            self._ready = True
            return applied

    def _insert_ignore(self, table: Table) -> Any:
        """INSERT that skips an existing key and returns the new row's key, if it made one.

        ``rowcount`` cannot tell: PostgreSQL's driver reports -1 for ON CONFLICT DO NOTHING.
        """
        key = next(iter(table.primary_key.columns))
        if self.engine.dialect.name == "postgresql":
            return pg_insert(table).on_conflict_do_nothing().returning(key)
        return sqlite_insert(table).on_conflict_do_nothing().returning(key)

    # -- runs and pauses ---------------------------------------------------------------
    def record_run(self, *, run_id: str, workflow_name: str, channel: str, now: datetime) -> None:
        """Record the run's channel; a second call for the same run changes nothing."""
        with self.db.write() as conn:
            conn.execute(
                self._insert_ignore(slack_runs),
                {
                    "run_id": run_id,
                    "workflow_name": workflow_name,
                    "channel": channel,
                    "created_at": now,
                },
            ).close()  # its RETURNING row is not needed, but must be read before commit

    def get_run_ref(self, run_id: str) -> RunRef | None:
        """Where the run's messages are, or None if it has none yet."""
        with self.engine.connect() as conn:
            row = conn.execute(select(slack_runs).where(slack_runs.c.run_id == run_id)).first()
        if row is None:
            return None
        return RunRef(row.run_id, row.workflow_name, row.channel, row.root_ts, row.channel_id)

    def set_root_ts(self, run_id: str, ts: str, channel_id: str) -> None:
        """Record the run's root message once it is posted."""
        with self.db.write() as conn:
            conn.execute(
                update(slack_runs)
                .where(slack_runs.c.run_id == run_id)
                .values(root_ts=ts, channel_id=channel_id)
            )

    def record_pause(
        self,
        *,
        requirement_id: str,
        run_id: str,
        workflow_name: str,
        step_name: str,
        channel: str,
        now: datetime,
    ) -> bool:
        """Returns True for the one caller that recorded it first."""
        with self.db.write() as conn:
            inserted = (
                conn.execute(
                    self._insert_ignore(slack_pauses),
                    {
                        "requirement_id": requirement_id,
                        "run_id": run_id,
                        "workflow_name": workflow_name,
                        "step_name": step_name,
                        "channel": channel,
                        "created_at": now,
                    },
                ).first()
                is not None
            )
        return inserted

    def get_pause(self, requirement_id: str) -> PauseRef | None:
        """The pause with this token, or None (also for a malformed token)."""
        if not isinstance(requirement_id, str) or not 0 < len(requirement_id) <= 64:  # noqa: PLR2004  String(64) column
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(slack_pauses).where(slack_pauses.c.requirement_id == requirement_id)
            ).first()
        if row is None:
            return None
        return PauseRef(
            row.requirement_id,
            row.run_id,
            row.workflow_name,
            row.step_name,
            row.channel,
            row.message_ts,
            row.channel_id,
            row.permalink,
        )

    def permalinks(self, requirement_ids: list[str]) -> dict[str, str]:
        """The stored permalinks of these pauses (those known): one read, no Slack call."""
        if not requirement_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(slack_pauses.c.requirement_id, slack_pauses.c.permalink).where(
                    slack_pauses.c.requirement_id.in_(requirement_ids),
                    slack_pauses.c.permalink.is_not(None),
                )
            ).all()
        return {r.requirement_id: r.permalink for r in rows}

    def set_pause_permalink(self, requirement_id: str, permalink: str) -> None:
        """Store the pause message's permalink (what ``/signoff pending`` links to)."""
        with self.db.write() as conn:
            conn.execute(
                update(slack_pauses)
                .where(slack_pauses.c.requirement_id == requirement_id)
                .values(permalink=permalink[:500])
            )

    def known_pause_ids(self, requirement_ids: list[str]) -> set[str]:
        """Which of these pauses the bot has already recorded."""
        if not requirement_ids:
            return set()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(slack_pauses.c.requirement_id).where(
                    slack_pauses.c.requirement_id.in_(requirement_ids)
                )
            ).all()
        return {r.requirement_id for r in rows}

    def set_pause_ts(self, requirement_id: str, ts: str, channel_id: str) -> None:
        """Record the pause's message once it is posted."""
        with self.db.write() as conn:
            conn.execute(
                update(slack_pauses)
                .where(slack_pauses.c.requirement_id == requirement_id)
                .values(message_ts=ts, channel_id=channel_id)
            )

    # -- outbox -------------------------------------------------------------------------
    def enqueue(
        self, *, key: str, run_id: str, kind: str, data: dict[str, Any], now: datetime
    ) -> bool:
        """Queue one Slack post or update; returns False if one with ``key`` was queued
        before (or, for a refresh kind, one of its group is still pending)."""
        with self.db.write() as conn:
            return self.enqueue_on(conn, [(key, run_id, kind, data)], now=now) == 1

    def enqueue_many(
        self, items: list[tuple[str, str, str, dict[str, Any]]], *, now: datetime
    ) -> int:
        """Enqueue (key, run_id, kind, data) items in one transaction; returns how many
        were new (a key already enqueued, by this or another replica, is skipped)."""
        if not items:
            return 0
        with self.db.write() as conn:
            return self.enqueue_on(conn, items, now=now)

    def enqueue_on(
        self, conn: Connection, items: list[tuple[str, str, str, dict[str, Any]]], *, now: datetime
    ) -> int:
        """``enqueue_many`` inside the caller's transaction (the engine's claim of a pause:
        the outbox rows it causes commit with it).

        A refresh (``REFRESH_KINDS``: it renders a whole surface as it is when delivered)
        is not added while one of its group and kind is still pending: that one will show
        this change too. So a burst of changes costs one render, not one per change."""
        added = 0
        for key, run_id, kind, data in items:
            if kind in REFRESH_KINDS and self._refresh_pending(conn, run_id, kind):
                continue
            row = _outbox_row(key, run_id, kind, data, now)
            added += int(conn.execute(self._insert_ignore(slack_outbox), row).first() is not None)
        return added

    def enqueue_taken_on(
        self,
        conn: Connection,
        item: tuple[str, str, str, dict[str, Any]],
        *,
        now: datetime,
        lease: timedelta,
    ) -> OutboxItem | None:
        """Add one item inside the caller's transaction already taken by the caller (being
        sent, its lease running), who delivers it as soon as the transaction commits: no
        claim. Only when nothing earlier of its group is unsent (a run's messages go out
        in order); otherwise it is queued as ``enqueue_on`` does and None returned, as it
        is for a key queued before."""
        key, group, kind, data = item
        earlier = conn.execute(
            select(slack_outbox.c.id)
            .where(slack_outbox.c.run_id == group, slack_outbox.c.state.in_(UNSENT))
            .limit(1)
        ).first()
        if earlier is not None:
            self.enqueue_on(conn, [item], now=now)
            return None
        row = _outbox_row(key, group, kind, data, now, taken_until=now + lease)
        new = conn.execute(self._insert_ignore(slack_outbox), row).first()
        return None if new is None else OutboxItem(new.id, key, group, kind, data, 1)

    @staticmethod
    def _refresh_pending(conn: Connection, group: str, kind: str) -> bool:
        o = slack_outbox.c
        query = select(o.id).where(
            o.run_id == group, o.state == OutboxState.pending, o.kind == kind
        )
        return conn.execute(query.limit(1)).first() is not None

    def claim_due(
        self,
        *,
        now: datetime,
        lease: timedelta,
        limit: int = 200,
        kinds: tuple[str, ...] | None = None,
    ) -> list[OutboxItem]:
        """Take every due item (up to ``limit``; of ``kinds`` only, if given) for delivery in
        one transaction.

        Another worker or replica gets none of them until the lease passes. A run's items
        (one ``run_id`` group) go out in order, by one worker at a time: an item is taken
        only with every earlier unsent item of its group, so none is taken while an earlier
        one waits for its retry, is out of ``kinds``, or is being delivered elsewhere.
        """
        item, earlier = slack_outbox, slack_outbox.alias("previous")
        # The group's previous unsent item: checked against what this claim locked, below.
        previous = (
            select(func.max(earlier.c.id))
            .where(
                earlier.c.run_id == item.c.run_id,
                earlier.c.id < item.c.id,
                earlier.c.state.in_(UNSENT),
            )
            .scalar_subquery()
        )
        query = (
            select(item, previous.label("previous_unsent"))
            .where(self._takeable(now, kinds))
            .order_by(item.c.id)
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(of=item, skip_locked=True)
        # SQLite: take the write lock before reading, so the read and the claim are one step.
        with self.db.write() as conn:
            taken: set[int] = set()
            rows: list[Row[Any]] = []
            for row in conn.execute(query).all():
                # SKIP LOCKED leaves out a row another claim is taking right now, and the
                # query cannot see that: its later items stay too (locked here only until
                # this commit).
                if row.previous_unsent is None or row.previous_unsent in taken:
                    taken.add(row.id)
                    rows.append(row)
            if not rows:
                return []
            conn.execute(
                update(slack_outbox)
                .where(slack_outbox.c.id.in_([r.id for r in rows]))
                .values(
                    state=OutboxState.sending,
                    lease_until=now + lease,
                    attempts=slack_outbox.c.attempts + 1,
                )
            )
        return [
            OutboxItem(r.id, r.dedupe_key, r.run_id, r.kind, json.loads(r.data), r.attempts + 1)
            for r in rows
        ]

    @staticmethod
    def _takeable(now: datetime, kinds: tuple[str, ...] | None) -> ColumnElement[bool]:
        """The outbox rows a claim at ``now`` of ``kinds`` may take: each one due, with
        every earlier unsent item of its group due too (taken in the same claim)."""

        def due(table: Any) -> ColumnElement[bool]:
            # Pending and due, or left sending by a lease that ran out.
            ready: ColumnElement[bool] = or_(
                table.c.state == OutboxState.pending,
                (table.c.state == OutboxState.sending) & (table.c.lease_until < now),
            ) & (table.c.next_attempt_at <= now)
            return ready if kinds is None else ready & table.c.kind.in_(kinds)

        item, earlier = slack_outbox, slack_outbox.alias("earlier")
        # An earlier item that waits for its retry, is out of ``kinds``, or is being delivered
        # elsewhere holds back the rest of its group (a pause while its root is being posted).
        held_back = (
            select(earlier.c.id)
            .where(
                earlier.c.run_id == item.c.run_id,
                earlier.c.id < item.c.id,
                earlier.c.state.in_(UNSENT),
                ~due(earlier),
            )
            .exists()
        )
        return due(item) & ~held_back

    def renew_outbox_leases(self, ids: list[int], *, until: datetime) -> int:
        """Keep these items taken until ``until`` while their delivery goes on (those no
        longer being sent are left alone); returns how many were renewed."""
        if not ids:
            return 0
        statement = (
            update(slack_outbox)
            .where(
                slack_outbox.c.id == bindparam("b_id"),
                slack_outbox.c.state == OutboxState.sending,
            )
            .values(lease_until=until)
        )
        with self.db.write() as conn:
            # Row by row in id order, as finish_many: two writers locking the same rows in
            # different orders deadlock on PostgreSQL.
            return int(conn.execute(statement, [{"b_id": i} for i in sorted(ids)]).rowcount)

    def finish_many(
        self,
        outcomes: list[tuple[int, str, str | None, datetime]],
        *,
        claimed: Mapping[int, int] | None = None,
    ) -> None:
        """Record (item id, state, error, next attempt) for a delivery pass, in one commit.

        ``claimed``: item id -> its attempt count as this pass claimed it. An item claimed
        again since (this pass's lease lapsed and another worker took it over) is that
        worker's to record: this pass's outcome is dropped, not written over it."""
        if not outcomes:
            return
        statement = (
            update(slack_outbox)
            .where(slack_outbox.c.id == bindparam("b_id"))
            .values(
                state=bindparam("b_state"),
                last_error=bindparam("b_error"),
                next_attempt_at=bindparam("b_next"),
                lease_until=None,
            )
        )
        if claimed is not None:
            statement = statement.where(slack_outbox.c.attempts == bindparam("b_attempts"))
        rows = [
            {"b_id": i, "b_state": st, "b_error": err, "b_next": nxt}
            | ({"b_attempts": claimed.get(i, -1)} if claimed is not None else {})
            for i, st, err, nxt in sorted(outcomes, key=lambda outcome: outcome[0])
        ]
        with self.db.write() as conn:  # in id order: see renew_outbox_leases
            conn.execute(statement, rows)

    def outbox_counts(self) -> dict[str, int]:
        """Items by state: one GROUP BY on the (state, next_attempt_at) index."""
        return self._counts_by_state(slack_outbox)

    def _counts_by_state(self, table: Table) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.c.state, func.count()).group_by(table.c.state)).all()
        return {str(state): int(n) for state, n in rows}

    def outbox_unsettled(self, *, now: datetime) -> int:
        """Items being delivered or that a claim at ``now`` would take, in ONE read: counted
        apart, an item claimed between the two reads would be in neither."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(slack_outbox)
                    .where(
                        (slack_outbox.c.state == OutboxState.sending) | self._takeable(now, None)
                    )
                ).scalar()
                or 0
            )

    def forget_sent_before(self, when: datetime, *, batch: int = 1000) -> int:
        """Delete delivered items finished before ``when`` (retention), in small batches so
        no transaction holds the write lock for long; returns how many went."""
        removed = 0
        while True:
            with self.db.write() as conn:
                ids = (
                    select(slack_outbox.c.id)
                    .where(
                        slack_outbox.c.state == OutboxState.sent,
                        slack_outbox.c.next_attempt_at < when,
                    )
                    .limit(batch)
                    .scalar_subquery()
                )
                n = conn.execute(delete(slack_outbox).where(slack_outbox.c.id.in_(ids))).rowcount
            removed += n
            if n < batch:
                return removed

    # -- the inbox ------------------------------------------------------------------------
    def record_inbox(
        self,
        entries: list[InboxEntry],
        *,
        now: datetime,
        lock_timeout: float,
        leased: int = 0,
        lease: timedelta = timedelta(0),
    ) -> list[bool]:
        """Insert these interactions in ONE transaction, skipping keys already recorded;
        returns, per entry, whether it was new. The first ``leased`` entries are recorded
        taken by the caller for ``lease`` (it applies them itself, with no claim). Waits at
        most ``lock_timeout`` seconds for a lock others hold (then raises): the caller is
        acking Slack."""
        with self.db.write(lock_timeout=lock_timeout, urgent=True) as conn:
            return self._insert_inbox(conn, entries, now, leased=leased, until=now + lease)

    def _insert_inbox(
        self,
        conn: Connection,
        entries: list[InboxEntry],
        now: datetime,
        *,
        leased: int = 0,
        until: datetime | None = None,
    ) -> list[bool]:
        # In key order: two replicas' batches then lock keys in one order, and cannot
        # deadlock on each other's uncommitted duplicates.
        new_by_index: dict[int, bool] = {}
        for index in sorted(range(len(entries)), key=lambda i: entries[i].key):
            row = entries[index].row(now, leased_until=until if index < leased else None)
            result = conn.execute(self._insert_ignore(slack_inbox), row)
            new_by_index[index] = result.first() is not None
        return [new_by_index[i] for i in range(len(entries))]

    def claim_inbox(self, *, now: datetime, lease: timedelta, limit: int = 50) -> list[InboxItem]:
        """Take due pending interactions (a lease another replica's worker waits out)."""
        due = (
            (slack_inbox.c.state == InboxState.pending)
            & (slack_inbox.c.next_attempt_at <= now)
            & (slack_inbox.c.lease_until.is_(None) | (slack_inbox.c.lease_until < now))
        )
        query = select(slack_inbox).where(due).order_by(slack_inbox.c.next_attempt_at).limit(limit)
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        with self.db.write() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return []
            conn.execute(
                update(slack_inbox)
                .where(slack_inbox.c.request_key.in_([r.request_key for r in rows]))
                .values(lease_until=now + lease, attempts=slack_inbox.c.attempts + 1)
            )
        return [
            InboxItem(r.request_key, r.kind, r.user_id, json.loads(r.data), r.attempts + 1)
            for r in rows
        ]

    def finish_inbox_on(
        self, conn: Connection, key: str, *, state: str, now: datetime, error: str | None = None
    ) -> None:
        """Mark an interaction done or failed inside the caller's transaction."""
        conn.execute(
            update(slack_inbox)
            .where(slack_inbox.c.request_key == key)
            .values(state=state, finished_at=now, lease_until=None, last_error=error)
        )

    def finish_inbox(
        self, key: str, *, state: str, now: datetime, error: str | None = None
    ) -> None:
        """End an inbox row (``done`` or ``failed``) in a transaction of its own."""
        with self.db.write() as conn:
            self.finish_inbox_on(conn, key, state=state, now=now, error=error)

    def retry_inbox(self, key: str, *, at: datetime, error: str) -> None:
        """Give an inbox row back for another attempt at ``at``, with the error seen."""
        with self.db.write() as conn:
            conn.execute(
                update(slack_inbox)
                .where(slack_inbox.c.request_key == key)
                .values(next_attempt_at=at, lease_until=None, last_error=error[:2000])
            )

    def extend_inbox_lease(self, key: str, *, until: datetime) -> None:
        """Keep a row being applied taken (a long apply must not lose it to another worker)."""
        with self.db.write() as conn:
            conn.execute(
                update(slack_inbox)
                .where(slack_inbox.c.request_key == key, slack_inbox.c.state == InboxState.pending)
                .values(lease_until=until)
            )

    def inbox_state(self, key: str) -> str | None:
        """The state of the inbox row ``key`` (None if there is none)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(slack_inbox.c.state).where(slack_inbox.c.request_key == key)
            ).scalar()

    def inbox_in_flight(self, *, now: datetime) -> int:
        """Pending interactions a worker holds right now (an unexpired lease)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        slack_inbox.c.state == InboxState.pending, slack_inbox.c.lease_until >= now
                    )
                ).scalar()
                or 0
            )

    def inbox_counts(self) -> dict[str, int]:
        """Inbox rows by state: one GROUP BY on the (state, next_attempt_at) index."""
        return self._counts_by_state(slack_inbox)

    def next_inbox_due(self) -> datetime | None:
        """When the soonest pending interaction is due (None: nothing pending)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.min(slack_inbox.c.next_attempt_at)).where(
                    slack_inbox.c.state == InboxState.pending
                )
            ).scalar()

    # -- request de-duplication (on the inbox) ---------------------------------------------
    def first_time_seen(self, key: str, *, now: datetime) -> bool:
        """Record an interaction that changes nothing (done at once); True the first time."""
        with self.db.write() as conn:
            inserted = (
                conn.execute(
                    self._insert_ignore(slack_inbox),
                    InboxEntry(key, InboxKind.seen, None, None).row(now),
                ).first()
                is not None
            )
        return inserted

    def forget_seen_before(self, when: datetime) -> None:
        """Drop interactions applied (or only seen) before ``when``; pending ones stay, and
        given-up ones stay until ``forget_failed_before`` (``signoff runs`` shows them)."""
        with self.db.write() as conn:
            conn.execute(
                delete(slack_inbox).where(
                    slack_inbox.c.state == InboxState.done, slack_inbox.c.created_at < when
                )
            )

    def forget_failed_before(self, when: datetime) -> int:
        """Delete given-up rows older than ``when``; returns how many."""
        with self.db.write() as conn:
            return int(
                conn.execute(
                    delete(slack_inbox).where(
                        slack_inbox.c.state == InboxState.failed, slack_inbox.c.created_at < when
                    )
                ).rowcount
            )

    def failed_inbox(self, *, limit: int = 20) -> list[InboxFailure]:
        """The latest interactions given up on, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(slack_inbox)
                .where(slack_inbox.c.state == InboxState.failed)
                .order_by(slack_inbox.c.finished_at.desc())
                .limit(limit)
            ).all()
        return [
            InboxFailure(r.request_key, r.kind, r.user_id, r.attempts, r.last_error, r.finished_at)
            for r in rows
        ]


def _outbox_row(
    key: str,
    group: str,
    kind: str,
    data: dict[str, Any],
    now: datetime,
    *,
    taken_until: datetime | None = None,
) -> dict[str, Any]:
    """The outbox row to insert for one item at ``now``: pending, or (``taken_until``)
    already being sent by the process adding it, its first attempt."""
    return {
        "dedupe_key": key,
        "run_id": group,
        "kind": kind,
        "data": json.dumps(data, default=str),
        "state": OutboxState.pending if taken_until is None else OutboxState.sending,
        "attempts": 0 if taken_until is None else 1,
        "next_attempt_at": now,
        "lease_until": taken_until,
        "created_at": now,
    }


@dataclass(frozen=True)
class InboxEntry:
    """One interaction to record: ``data`` None means it changes nothing (recorded done,
    for de-duplication only)."""

    key: str
    kind: str
    user_id: str | None
    data: dict[str, Any] | None

    def row(self, now: datetime, *, leased_until: datetime | None = None) -> dict[str, Any]:
        """The row to insert for this entry at ``now`` (``leased_until``: already taken by
        the recording process, which applies it at once: its first attempt)."""
        return {
            "request_key": self.key[:200],
            "kind": self.kind,
            "user_id": self.user_id,
            "data": json.dumps(self.data or {}, default=str),
            "state": InboxState.pending if self.data is not None else InboxState.done,
            "attempts": 0 if leased_until is None else 1,
            "next_attempt_at": now,
            "lease_until": leased_until,
            "created_at": now,
            "finished_at": None if self.data is not None else now,
        }

    def taken(self) -> InboxItem:
        """This entry as the item its first attempt applies (recorded leased)."""
        return InboxItem(self.key[:200], self.kind, self.user_id, dict(self.data or {}), 1)


@dataclass(frozen=True)
class InboxFailure:
    key: str
    kind: str
    user_id: str | None
    attempts: int
    error: str | None
    finished_at: datetime | None


@dataclass(frozen=True)
class InboxItem:
    """A recorded interaction taken by a worker to apply."""

    key: str
    kind: str
    user_id: str | None
    data: dict[str, Any]
    attempts: int


__all__ = [
    "BotStore",
    "InboxEntry",
    "InboxItem",
    "OutboxItem",
    "PauseRef",
    "RunRef",
    "metadata",
]
