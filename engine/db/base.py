"""The SQLAlchemy storage shared by SqliteDb and PostgresDb."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from engine.clock import require_aware
from engine.db import schema
from engine.db.schema import decisions, runs, sessions
from engine.errors import DuplicateRunError, EngineError, RunNotFoundError, RunNotPausedError
from engine.run.base import RunStatus
from engine.run.requirement import Decision, Outcome, StepRequirement
from engine.run.workflow import PausedRun, WorkflowRunOutput, WorkflowSession

log = logging.getLogger("engine.db")
_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode


# Statements built once: building them per call cost more than the SQL itself
# (bind parameters and cache keys are made anew for every new statement object).
_SET_COLUMNS = (
    "status",
    "version",
    "paused_step_name",
    "paused_at",
    "expires_at",
    "updated_at",
    "data",
    "lease_owner",
    "lease_expires_at",
)
_SET = {c: bindparam(f"v_{c}", type_=runs.c[c].type) for c in _SET_COLUMNS}
_UPDATE_OWNED_RUN = (
    update(runs)
    .where(runs.c.run_id == bindparam("w_run_id"), runs.c.version == bindparam("w_version"))
    .values(_SET)
)
_CLAIM_PAUSED_RUN = (
    update(runs)
    .where(
        runs.c.run_id == bindparam("w_run_id"),
        runs.c.status == RunStatus.paused.value,
        runs.c.version == bindparam("w_version"),
    )
    .values(_SET)
)
_INSERT_RUN = insert(runs)
_INSERT_DECISION = insert(decisions)


def _set_params(values: dict[str, Any], *, run_id: str, version: int) -> dict[str, Any]:
    params = {f"v_{k}": v for k, v in values.items()}
    params["w_run_id"] = run_id
    params["w_version"] = version
    return params


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

    def __init__(self, engine: Engine, *, single_connection: bool = False) -> None:
        self.engine = engine
        self._insert_session = self._insert_ignore(sessions)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        # A database reached through one shared connection (in-memory SQLite) cannot hold
        # two transactions at once: threads sharing it take turns.
        self._turns: threading.RLock | None = threading.RLock() if single_connection else None

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

    # -- schema ----------------------------------------------------------------
    def ensure_schema(self) -> None:
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
        return self._schema_transaction()

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
        try:
            with self._connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            log.warning("database ping failed", exc_info=True)
            return False

    def dispose(self) -> None:
        self.engine.dispose()

    # -- writing runs --------------------------------------------------------------
    def save_run(self, run: WorkflowRunOutput) -> None:
        """Insert a new run, or update one this process owns (compare-and-set on version)."""
        self.ensure_schema()
        if run.version == 0:
            self._insert_run(run)
        else:
            self._update_run(run)

    def _insert_run(self, run: WorkflowRunOutput) -> None:
        values = self._run_values(run, version=1)
        try:
            self._insert_run_rows(run, values)
        except IntegrityError as exc:
            if self.get_run(run.run_id) is not None:  # two runs started with one run_id
                raise DuplicateRunError(run.run_id) from exc
            raise
        run.version = 1

    def _insert_run_rows(self, run: WorkflowRunOutput, values: dict[str, Any]) -> None:
        with self._begin() as conn:
            conn.execute(
                self._insert_session,
                {
                    "session_id": run.session_id,
                    "workflow_name": run.workflow_name,
                    "user_id": run.user_id,
                    "created_at": run.created_at,
                },
            )
            conn.execute(
                _INSERT_RUN,
                {
                    **values,
                    "run_id": run.run_id,
                    "session_id": run.session_id,
                    "workflow_name": run.workflow_name,
                    "user_id": run.user_id,
                    "created_at": run.created_at,
                },
            )

    def _update_run(self, run: WorkflowRunOutput) -> None:
        values = self._run_values(run, version=run.version + 1)
        with self._begin() as conn:
            result = conn.execute(
                _UPDATE_OWNED_RUN, _set_params(values, run_id=run.run_id, version=run.version)
            )
            if result.rowcount != 1:
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
        values = self._run_values(
            run,
            version=expected_version + 1,
            lease_owner=lease_owner,
            lease_expires_at=lease_expires_at,
        )
        with self._begin() as conn:
            result = conn.execute(
                _CLAIM_PAUSED_RUN,
                _set_params(values, run_id=run.run_id, version=expected_version),
            )
            if result.rowcount == 1:
                conn.execute(_INSERT_DECISION, self._decision_values(decision))
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
        with self._begin() as conn:
            if conn.execute(claim).rowcount == 1:
                conn.execute(insert(decisions), [self._decision_values(d) for d in decisions_made])
                run.version = expected_version + 1
                return
        raise self.not_paused_error(run.run_id)

    # -- leases of running runs ---------------------------------------------------------
    def renew_leases(self, owner: str, run_ids: list[str], *, until: datetime) -> int:
        """Extend the leases ``owner`` holds on these running runs; returns how many."""
        if not run_ids:
            return 0
        with self._begin() as conn:
            result = conn.execute(
                update(runs)
                .where(
                    runs.c.run_id.in_(run_ids),
                    runs.c.lease_owner == owner,
                    runs.c.status == RunStatus.running.value,
                )
                .values(lease_expires_at=until)
            )
        return int(result.rowcount)

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
        with self._begin() as conn:
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
        req: StepRequirement | None = (
            run.step_requirements[0]
            if run.status is RunStatus.paused and run.step_requirements
            else None
        )
        return {
            "status": run.status.value,
            "version": version,
            "paused_step_name": req.step_name if req else None,
            "paused_at": req.paused_at if req else None,
            "expires_at": run.expires_at if req else None,
            "updated_at": run.updated_at,
            "data": _dumps(run.to_dict()),
            "lease_owner": lease_owner,
            "lease_expires_at": lease_expires_at,
        }

    def _insert_ignore(self, table: Any) -> Any:
        raise NotImplementedError

    # -- reading -------------------------------------------------------------------
    def get_run(self, run_id: str) -> WorkflowRunOutput | None:
        self.ensure_schema()
        with self._connect() as conn:
            row = conn.execute(
                select(runs.c.data, runs.c.version).where(runs.c.run_id == run_id)
            ).first()
        if row is None:
            return None
        return WorkflowRunOutput.from_dict(json.loads(row.data), version=row.version)

    def get_session(self, session_id: str) -> WorkflowSession | None:
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
        limit: int = 50,
    ) -> list[WorkflowRunOutput]:
        """Most recent runs first."""
        self.ensure_schema()
        query = select(runs.c.data, runs.c.version).order_by(runs.c.id.desc()).limit(limit)
        if workflow_name is not None:
            query = query.where(runs.c.workflow_name == workflow_name)
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
        limit: int | None = None,
    ) -> list[PausedRun]:
        """Paused runs across the database, soonest deadline first (no deadline last)."""
        self.ensure_schema()
        query = select(runs.c.data, runs.c.version).where(runs.c.status == RunStatus.paused.value)
        if workflow_name is not None:
            query = query.where(runs.c.workflow_name == workflow_name)
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
        query = query.order_by(runs.c.expires_at.is_(None), runs.c.expires_at, runs.c.id)
        if limit is not None:
            query = query.limit(limit)
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
                )
            )
        return result

    def get_decisions(self, run_id: str) -> list[Decision]:
        self.ensure_schema()
        with self._connect() as conn:
            rows = conn.execute(
                select(decisions).where(decisions.c.run_id == run_id).order_by(decisions.c.id)
            ).all()
        return [self._decision_from_row(r._mapping) for r in rows]

    @staticmethod
    def _decision_values(decision: Decision) -> dict[str, Any]:
        return {
            "run_id": decision.run_id,
            "requirement_id": decision.requirement_id,
            "step_name": decision.step_name,
            "outcome": decision.outcome.value,
            "decided_by": decision.decided_by,
            "decided_at": decision.decided_at,
            "comment": decision.comment,
            "values": _dumps(decision.values) if decision.values is not None else None,
        }

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
