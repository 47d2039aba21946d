"""The SQLAlchemy storage shared by SqliteDb and PostgresDb."""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, insert, inspect, select, text, update
from sqlalchemy.exc import OperationalError

from engine.clock import require_aware
from engine.db import schema
from engine.db.schema import decisions, runs, sessions
from engine.errors import DuplicateRunError, EngineError, RunNotFoundError, RunNotPausedError
from engine.run.base import RunStatus
from engine.run.requirement import Decision, Outcome, StepRequirement
from engine.run.workflow import PausedRun, WorkflowRunOutput, WorkflowSession

log = logging.getLogger("engine.db")
_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode


# The columns a run's writes set, in the order of a RunState.
SET_COLUMNS = (
    "status",
    "version",
    "paused_step_name",
    "paused_requirement_id",
    "paused_at",
    "expires_at",
    "updated_at",
    "data",
    "lease_owner",
    "lease_expires_at",
)
# Of a new run, written once with its first state.
INSERT_COLUMNS = ("run_id", "session_id", "workflow_name", "user_id", "created_at", *SET_COLUMNS)
SESSION_COLUMNS = ("session_id", "workflow_name", "user_id", "created_at")
DECISION_COLUMNS = (
    "run_id",
    "requirement_id",
    "step_name",
    "outcome",
    "decided_by",
    "decided_at",
    "comment",
    "values",
)


def _paused_query(
    columns: tuple[Any, ...],
    *,
    workflow_name: str | None,
    changed_since: datetime | None,
    limit: int | None,
    offset: int,
) -> Select[Any]:
    """``columns`` of the paused runs (of one workflow; written since ``changed_since``),
    soonest deadline first, no deadline last; a page of them. Callers may add filters."""
    query = select(*columns).where(runs.c.status == RunStatus.paused.value)
    if workflow_name is not None:
        query = query.where(runs.c.workflow_name == workflow_name)
    if changed_since is not None:
        require_aware(changed_since, "changed_since")
        query = query.where(runs.c.updated_at >= changed_since)
    query = query.order_by(runs.c.expires_at.is_(None), runs.c.expires_at, runs.c.id)
    if limit is not None:
        query = query.limit(limit)
    return query.offset(offset) if offset else query


def column_list(names: tuple[str, ...]) -> str:
    """``"a", "b"``: quoted, since a column is called ``values``."""
    return ", ".join(f'"{name}"' for name in names)


def assignments(names: tuple[str, ...], placeholder: str) -> str:
    """``"a" = ?, "b" = ?`` with the driver's placeholder."""
    return ", ".join(f'"{name}" = {placeholder}' for name in names)


# A run's state as SET_COLUMNS, a decision as DECISION_COLUMNS; datetimes aware (UTC).
RunState = tuple[Any, ...]
DecisionRow = tuple[Any, ...]
# The order of _decision_row's values.
_DECISION_COLUMNS = DECISION_COLUMNS
StatementListener = Callable[[str, int], None]
# Run inside the transaction that claims a pause, after the claim and its decisions: a
# front-end's writes that must commit with the claim or not at all (its outbox, its inbox).
ClaimHook = Callable[[Connection], None]
_CLAIM_HOOK: contextvars.ContextVar[ClaimHook | None] = contextvars.ContextVar(
    "engine_claim_hook", default=None
)


@contextmanager
def claim_hook(hook: ClaimHook) -> Iterator[None]:
    """Within this block (this thread or task), every claim of a pause also runs ``hook(conn)``
    in its transaction: the claim commits with what the hook wrote, or neither does (an
    exception from the hook rolls the claim back and reaches the caller)."""
    token = _CLAIM_HOOK.set(hook)
    try:
        yield
    finally:
        _CLAIM_HOOK.reset(token)


class RunWrites(ABC):
    """The writes every run makes — insert, update, claim, lease renewal — as prepared
    driver-level statements on connections held for them, outside SQLAlchemy.

    SQLAlchemy's per-statement work (pool checkout, reset-on-return, compilation, result
    handling) cost more than the SQL and the commit's fsync together; everything else keeps
    going through SQLAlchemy. Each method is one durable transaction, safe to call from any
    thread.
    """

    #: What the driver raises for a unique-key violation (two runs with one run_id).
    integrity_error: type[Exception]
    #: What the driver raises when the database cannot be reached or is busy (it may pass).
    unavailable_error: type[Exception]

    def __init__(self) -> None:
        self._listeners: tuple[StatementListener, ...] = ()

    @abstractmethod
    def insert_run(self, session: tuple[Any, ...], run: tuple[Any, ...]) -> None:
        """The session row unless it exists (SESSION_COLUMNS), then the run row
        (INSERT_COLUMNS)."""

    @abstractmethod
    def update_run(self, run_id: str, version: int, state: RunState) -> bool:
        """Compare-and-set on version; True if the row was at this version."""

    @abstractmethod
    def claim_run(self, run_id: str, version: int, state: RunState, decision: DecisionRow) -> bool:
        """Compare-and-set on status paused and version, with the decision row in the same
        transaction; True for exactly one caller per pause."""

    @abstractmethod
    def renew_leases(self, owner: str, run_ids: list[str], until: datetime) -> int:
        """Extend ``owner``'s leases on these running runs; returns how many."""

    @abstractmethod
    def close(self) -> None:
        """Close the held connections (the next write opens new ones)."""

    def add_listener(self, listener: StatementListener) -> None:
        """Call ``listener`` after each run write from now on."""
        self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: StatementListener) -> None:
        """Stop calling a listener added with ``add_listener``."""
        self._listeners = tuple(x for x in self._listeners if x is not listener)

    def _executed(self, sql: str, rowcount: int) -> None:
        for listener in self._listeners:
            listener(sql, rowcount)


@dataclass(frozen=True)
class InterruptedRun:
    """A run left running by a process that stopped renewing its lease."""

    run: WorkflowRunOutput
    lease_owner: str | None
    lease_expired_at: datetime


class ConcurrentUpdateError(RunNotPausedError):
    """A run changed under a process that believed it owned it."""


class BaseDb:
    """Runs, sessions and the decision audit trail in a SQL database.

    The schema is created on first use (and stamped with its Alembic revision); an older
    schema is upgraded with Alembic.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        run_writes: RunWrites,
        turns: AbstractContextManager[Any] | None = None,
    ) -> None:
        """``turns``: for a database reached through one shared connection (in-memory
        SQLite), which cannot hold two transactions at once, the lock its users take turns
        on (the run writes too)."""
        self.engine = engine
        self._writes = run_writes
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._turns = turns

    def _serialized(self) -> AbstractContextManager[Any]:
        return self._turns if self._turns is not None else nullcontext()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self._serialized(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self._serialized(), self.engine.connect() as conn:
            yield conn

    def write(
        self, *, lock_timeout: float | None = None, urgent: bool = False
    ) -> AbstractContextManager[Connection]:
        """One transaction that writes, committed at the end of the block (rolled back on an
        exception). ``lock_timeout``: at most this many seconds waiting for locks others
        hold (default: the database's own wait), then ``sqlalchemy.exc.OperationalError``.
        ``urgent``: someone waits on this write (a request being answered).

        For everything written outside the run writes (a front-end's tables, a claim with a
        hook). On SQLite this process's writers take turns (``WriteTurns``): they wait on
        each other in order, an urgent writer first, rather than in SQLite's busy handler
        (which sleeps up to 100 ms between tries). PostgreSQL locks rows: no turns.
        """
        return self._write(lock_timeout, urgent=urgent)

    @contextmanager
    def _write(self, lock_timeout: float | None, *, urgent: bool = False) -> Iterator[Connection]:
        del urgent  # only SQLite's writers take turns
        with self._begin() as conn:
            yield conn

    # -- schema ----------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create the tables in an empty database, or upgrade an older schema, once per process and
        under a lock, so replicas starting together do it once."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            with self._schema_transaction() as conn:
                current = self._current_revision(conn)
                if current is None:
                    schema.metadata.create_all(conn)
                    conn.exec_driver_sql(
                        "CREATE TABLE IF NOT EXISTS alembic_version "
                        "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"
                    )
                    conn.execute(
                        text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                        {"v": schema.SCHEMA_REVISION},
                    )
                elif current != schema.SCHEMA_REVISION:
                    # Upgrade under the same lock, on the same connection: processes that
                    # start together on an old schema upgrade it once, the others wait.
                    from engine.db.migrations import upgrade

                    upgrade(self.engine, connection=conn)
            self._schema_ready = True

    def _schema_transaction(self) -> Any:
        """A transaction that serializes schema creation between processes."""
        return self._begin()

    def schema_transaction(self) -> AbstractContextManager[Connection]:
        """A transaction holding the schema lock: processes creating or upgrading tables in
        this database at the same time take turns. For front-ends that keep tables of
        their own next to the engine's."""
        self.ensure_schema()
        transaction: AbstractContextManager[Connection] = self._schema_transaction()
        return transaction

    @staticmethod
    def _current_revision(conn: Connection) -> str | None:
        if not inspect(conn).has_table("alembic_version"):
            if inspect(conn).has_table("wf_runs"):
                raise RuntimeError(
                    "database has Signoff tables but no alembic_version; "
                    "stamp it with `alembic stamp` before use"
                )
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema with Alembic (``signoff migrate`` calls this)."""
        from engine.db.migrations import upgrade

        with self._serialized():
            upgrade(self.engine, revision)
        self._schema_ready = True

    def ping(self) -> bool:
        """Whether the database answers a ``SELECT 1`` now (for health checks); logs why not."""
        try:
            with self._connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            log.warning("database ping failed", exc_info=True)
            return False

    def dispose(self) -> None:
        """Close the run writer's connections and the engine's pool."""
        self._writes.close()
        self.engine.dispose()

    def add_statement_listener(self, listener: StatementListener) -> None:
        """Call ``listener(sql, rowcount)`` after each statement of the run writes (they
        bypass SQLAlchemy, so its engine events do not see them)."""
        self._writes.add_listener(listener)

    def remove_statement_listener(self, listener: StatementListener) -> None:
        """Stop calling a listener added with ``add_statement_listener``."""
        self._writes.remove_listener(listener)

    # -- writing runs --------------------------------------------------------------
    @property
    def unavailable_errors(self) -> tuple[type[Exception], ...]:
        """What a run write or read raises while the database is unreachable or locked:
        errors that may pass by themselves (a connection refused, a backend terminated)."""
        return (OperationalError, self._writes.unavailable_error)

    def save_run(self, run: WorkflowRunOutput) -> None:
        """Insert a new run, or update one this process owns (compare-and-set on version)."""
        self.ensure_schema()
        if run.version == 0:
            self._insert_run(run)
        else:
            self._update_run(run)

    def _insert_run(self, run: WorkflowRunOutput) -> None:
        state = self._run_state(run, version=1)
        session = (run.session_id, run.workflow_name, run.user_id, run.created_at)
        row = (run.run_id, run.session_id, run.workflow_name, run.user_id, run.created_at, *state)
        try:
            self._writes.insert_run(session, row)
        except self._writes.integrity_error as exc:
            if self.get_run(run.run_id) is not None:  # two runs started with one run_id
                raise DuplicateRunError(run.run_id) from exc
            raise
        run.version = 1

    def _update_run(self, run: WorkflowRunOutput) -> None:
        state = self._run_state(run, version=run.version + 1)
        if not self._writes.update_run(run.run_id, run.version, state):
            raise ConcurrentUpdateError(
                run.run_id,
                status="unknown",
                resolution="the run was changed by another process while this one ran it",
            )
        run.version += 1

    def claim_paused_run(
        self,
        run: WorkflowRunOutput,
        *,
        expected_version: int,
        decision: Decision,
        lease_owner: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> None:
        """Atomically move a paused run to running and record the decision.

        Succeeds for exactly one caller per pause; every other caller gets
        RunNotPausedError describing how the pause was resolved.
        """
        self.ensure_schema()
        if _CLAIM_HOOK.get() is not None:
            self.claim_paused_run_with_decisions(
                run,
                expected_version=expected_version,
                decisions_made=[decision],
                lease_owner=lease_owner,
                lease_expires_at=lease_expires_at,
            )
            return
        state = self._run_state(
            run,
            version=expected_version + 1,
            lease_owner=lease_owner,
            lease_expires_at=lease_expires_at,
        )
        if self._writes.claim_run(
            run.run_id, expected_version, state, self._decision_row(decision)
        ):
            run.version = expected_version + 1
            return
        raise self.not_paused_error(run.run_id)

    def claim_paused_run_with_decisions(
        self,
        run: WorkflowRunOutput,
        *,
        expected_version: int,
        decisions_made: list[Decision],
        lease_owner: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> None:
        """``claim_paused_run`` for a pause with several requirements (a Parallel's): one
        compare-and-set, and every decision recorded in its transaction."""
        self.ensure_schema()
        values = self._run_values(
            run,
            version=expected_version + 1,
            lease_owner=lease_owner,
            lease_expires_at=lease_expires_at,
        )
        claim = (
            update(runs)
            .where(
                runs.c.run_id == run.run_id,
                runs.c.status == RunStatus.paused.value,
                runs.c.version == expected_version,
            )
            .values(values)
        )
        hook = _CLAIM_HOOK.get()
        claimed = False
        with self.write() as conn:
            if conn.execute(claim).rowcount == 1:
                conn.execute(
                    insert(decisions),
                    [
                        dict(zip(_DECISION_COLUMNS, self._decision_row(d), strict=True))
                        for d in decisions_made
                    ],
                )
                if hook is not None:
                    hook(conn)
                claimed = True
        if claimed:
            run.version = expected_version + 1
            return
        raise self.not_paused_error(run.run_id)

    # -- leases of running runs ---------------------------------------------------------
    def renew_leases(self, owner: str, run_ids: list[str], *, until: datetime) -> int:
        """Extend the leases ``owner`` holds on these running runs; returns how many."""
        if not run_ids:
            return 0
        self.ensure_schema()
        return self._writes.renew_leases(owner, run_ids, until)

    def list_interrupted_runs(
        self, *, workflow_name: str | None = None, before: datetime, limit: int = 100
    ) -> list[InterruptedRun]:
        """Running runs whose lease expired before ``before``: their process is gone."""
        self.ensure_schema()
        query = (
            select(runs.c.data, runs.c.version, runs.c.lease_owner, runs.c.lease_expires_at)
            .where(
                runs.c.status == RunStatus.running.value,
                runs.c.lease_expires_at < before,
            )
            .order_by(runs.c.lease_expires_at)
            .limit(limit)
        )
        if workflow_name is not None:
            query = query.where(runs.c.workflow_name == workflow_name)
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [
            InterruptedRun(
                run=WorkflowRunOutput.from_dict(json.loads(row.data), version=row.version),
                lease_owner=row.lease_owner,
                lease_expired_at=row.lease_expires_at,
            )
            for row in rows
        ]

    def take_over_run(
        self, run: WorkflowRunOutput, *, owner: str, now: datetime, until: datetime
    ) -> bool:
        """Take a running run whose lease expired; True for exactly one taker."""
        values = self._run_values(
            run, version=run.version + 1, lease_owner=owner, lease_expires_at=until
        )
        with self.write() as conn:
            result = conn.execute(
                update(runs)
                .where(
                    runs.c.run_id == run.run_id,
                    runs.c.status == RunStatus.running.value,
                    runs.c.version == run.version,
                    runs.c.lease_expires_at < now,
                )
                .values(values)
            )
        if result.rowcount != 1:
            return False
        run.version += 1
        return True

    def not_paused_error(self, run_id: str) -> EngineError:
        """An error saying how and by whom the run's pause was resolved."""
        self.ensure_schema()
        with self._connect() as conn:
            row = conn.execute(
                select(runs.c.status, runs.c.paused_step_name).where(runs.c.run_id == run_id)
            ).first()
            if row is None:
                return RunNotFoundError(run_id)
            last = conn.execute(
                select(decisions)
                .where(decisions.c.run_id == run_id)
                .order_by(decisions.c.id.desc())
                .limit(1)
            ).first()
        decision = self._decision_from_row(last._mapping) if last else None
        parts = []
        if decision:
            parts.append(decision.describe())
        if row.status == RunStatus.paused.value:
            parts.append(f"the run now waits at step '{row.paused_step_name}'")
        else:
            parts.append(f"the run is {row.status}")
        return RunNotPausedError(
            run_id,
            status=row.status,
            resolution="; ".join(parts),
            decided_by=decision.decided_by if decision else None,
            decision=decision.outcome.value if decision else None,
            decided_at=decision.decided_at if decision else None,
        )

    def _run_values(
        self,
        run: WorkflowRunOutput,
        *,
        version: int,
        lease_owner: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> dict[str, Any]:
        """The run's state as column values, for SQLAlchemy statements."""
        state = self._run_state(
            run, version=version, lease_owner=lease_owner, lease_expires_at=lease_expires_at
        )
        return dict(zip(SET_COLUMNS, state, strict=True))

    @staticmethod
    def _run_state(
        run: WorkflowRunOutput,
        *,
        version: int,
        lease_owner: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> RunState:
        req: StepRequirement | None = (
            run.step_requirements[0]
            if run.status is RunStatus.paused and run.step_requirements
            else None
        )
        return (
            run.status.value,
            version,
            req.step_name if req else None,
            req.requirement_id if req else None,
            req.paused_at if req else None,
            run.expires_at if req else None,
            run.updated_at,
            _dumps(run.to_dict()),
            lease_owner,
            lease_expires_at,
        )

    # -- reading -------------------------------------------------------------------
    def get_run(self, run_id: str) -> WorkflowRunOutput | None:
        """The run with this id as last stored (with its version), or None."""
        self.ensure_schema()
        with self._connect() as conn:
            row = conn.execute(
                select(runs.c.data, runs.c.version).where(runs.c.run_id == run_id)
            ).first()
        if row is None:
            return None
        return WorkflowRunOutput.from_dict(json.loads(row.data), version=row.version)

    def get_session(self, session_id: str) -> WorkflowSession | None:
        """The session with its runs in the order they were started, or None."""
        self.ensure_schema()
        with self._connect() as conn:
            srow = conn.execute(select(sessions).where(sessions.c.session_id == session_id)).first()
            if srow is None:
                return None
            rows = conn.execute(
                select(runs.c.data, runs.c.version)
                .where(runs.c.session_id == session_id)
                .order_by(runs.c.id)
            ).all()
        return WorkflowSession(
            session_id=session_id,
            workflow_name=srow.workflow_name,
            user_id=srow.user_id,
            created_at=srow.created_at,
            runs=[WorkflowRunOutput.from_dict(json.loads(r.data), version=r.version) for r in rows],
        )

    def list_runs(
        self,
        *,
        workflow_name: str | None = None,
        statuses: list[RunStatus] | None = None,
        user_id: str | None = None,
        limit: int = 50,
    ) -> list[WorkflowRunOutput]:
        """Most recent runs first; of one workflow, statuses or starter (``user_id``)."""
        self.ensure_schema()
        query = select(runs.c.data, runs.c.version).order_by(runs.c.id.desc()).limit(limit)
        if workflow_name is not None:
            query = query.where(runs.c.workflow_name == workflow_name)
        if user_id is not None:
            query = query.where(runs.c.user_id == user_id)
        if statuses:
            query = query.where(runs.c.status.in_([s.value for s in statuses]))
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [WorkflowRunOutput.from_dict(json.loads(r.data), version=r.version) for r in rows]

    def list_paused_runs(
        self,
        *,
        workflow_name: str | None = None,
        session_id: str | None = None,
        step_name: str | None = None,
        expires_before: datetime | None = None,
        has_deadline: bool | None = None,
        changed_since: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[PausedRun]:
        """Paused runs across the database, soonest deadline first (no deadline last);
        ``changed_since``: only those written at or after it (``updated_at``, the writer's
        clock); ``limit`` and ``offset`` page through them."""
        self.ensure_schema()
        query = _paused_query(
            (runs.c.data, runs.c.version),
            workflow_name=workflow_name,
            changed_since=changed_since,
            limit=limit,
            offset=offset,
        )
        if session_id is not None:
            query = query.where(runs.c.session_id == session_id)
        if step_name is not None:
            query = query.where(runs.c.paused_step_name == step_name)
        if expires_before is not None:
            require_aware(expires_before, "list_paused_runs(expires_before=...)")
            query = query.where(runs.c.expires_at <= expires_before)
        if has_deadline is True:
            query = query.where(runs.c.expires_at.is_not(None))
        elif has_deadline is False:
            query = query.where(runs.c.expires_at.is_(None))
        with self._connect() as conn:
            rows = conn.execute(query).all()
        result = []
        for row in rows:
            run = WorkflowRunOutput.from_dict(json.loads(row.data), version=row.version)
            if not run.step_requirements:
                continue
            req = run.step_requirements[0]
            result.append(
                PausedRun(
                    workflow_name=run.workflow_name,
                    session_id=run.session_id,
                    run_id=run.run_id,
                    step_name=req.step_name,
                    requirement=req,
                    paused_at=req.paused_at,
                    expires_at=req.expires_at,
                    user_id=run.user_id,
                    version=row.version,
                    run=run,
                )
            )
        return result

    def list_paused_requirement_ids(
        self,
        *,
        workflow_name: str | None = None,
        changed_since: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[tuple[str, str | None]]:
        """(run id, id of the pause it waits at) of each paused run, in ``list_paused_runs``'
        order, without reading any run's data: what a poll needs to find pauses it has not
        seen. The pause's id is None for a run last written by a release before the column
        (``get_run`` has it)."""
        self.ensure_schema()
        query = _paused_query(
            (runs.c.run_id, runs.c.paused_requirement_id),
            workflow_name=workflow_name,
            changed_since=changed_since,
            limit=limit,
            offset=offset,
        )
        with self._connect() as conn:
            return [(row.run_id, row.paused_requirement_id) for row in conn.execute(query)]

    def count_paused_runs(self, *, workflow_names: list[str] | None = None) -> int:
        """How many runs are paused (of these workflows): a count, no run's data read."""
        self.ensure_schema()
        query = (
            select(func.count()).select_from(runs).where(runs.c.status == RunStatus.paused.value)
        )
        if workflow_names is not None:
            query = query.where(runs.c.workflow_name.in_(workflow_names))
        with self._connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def get_decisions(self, run_id: str) -> list[Decision]:
        """The run's audit trail: every recorded decision, oldest first."""
        self.ensure_schema()
        with self._connect() as conn:
            rows = conn.execute(
                select(decisions).where(decisions.c.run_id == run_id).order_by(decisions.c.id)
            ).all()
        return [self._decision_from_row(r._mapping) for r in rows]

    @staticmethod
    def _decision_row(decision: Decision) -> DecisionRow:
        return (
            decision.run_id,
            decision.requirement_id,
            decision.step_name,
            decision.outcome.value,
            decision.decided_by,
            decision.decided_at,
            decision.comment,
            _dumps(decision.values) if decision.values is not None else None,
        )

    @staticmethod
    def _decision_from_row(row: Any) -> Decision:
        return Decision(
            run_id=row["run_id"],
            requirement_id=row["requirement_id"],
            step_name=row["step_name"],
            outcome=Outcome(row["outcome"]),
            decided_by=row["decided_by"],
            decided_at=row["decided_at"],
            comment=row["comment"],
            values=json.loads(row["values"]) if row["values"] is not None else None,
        )
