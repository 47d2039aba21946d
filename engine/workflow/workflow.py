"""``Workflow``: a tree of steps and groups whose runs can pause for people and resume
later, in any process, exactly once.

A thin facade: the run logic is one I/O-free state machine (``engine.workflow._machine``)
walking the tree of components, carried out by a sync or an async driver
(``engine.workflow._drivers``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, overload

from engine.clock import SYSTEM_CLOCK, Clock, require_aware
from engine.errors import (
    DecisionTooLateError,
    DuplicateRunError,
    RequirementsUnresolvedError,
    RunNotFoundError,
    RunNotPausedError,
    WorkflowConfigError,
)
from engine.run.base import RunStatus
from engine.run.events import (
    StepPausedEvent,
    WorkflowCancelledEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowRunEvent,
    WorkflowStartedEvent,
)
from engine.run.requirement import TIMEOUT_ACTOR, Decision, RejectAction, StepRequirement
from engine.run.workflow import PausedRun, WorkflowRunOutput, WorkflowSession
from engine.workflow._drivers import Drivers
from engine.workflow._leases import LeaseKeeper, process_owner_id
from engine.workflow._machine import Machine, RunMachine, check_fits
from engine.workflow._tree import Component, as_components
from engine.workflow.types import RequirementKind, to_timedelta

if TYPE_CHECKING:
    from engine.db.base import BaseDb

log = logging.getLogger("engine.workflow")

Observer = Callable[[WorkflowRunEvent], None]
_WORKFLOW_EVENTS = (
    WorkflowStartedEvent,
    WorkflowCompletedEvent,
    WorkflowCancelledEvent,
    WorkflowErrorEvent,
    StepPausedEvent,
)


class AsyncEventStream:
    """The events of an async run. ``async for event in stream`` iterates them; awaiting
    the stream gives it back, so ``async for event in await wf.arun(...)`` works too."""

    def __init__(self, events: AsyncIterator[WorkflowRunEvent]) -> None:
        self._events = events

    def __aiter__(self) -> AsyncIterator[WorkflowRunEvent]:
        return self._events

    def __await__(self) -> Generator[Any, None, AsyncEventStream]:
        return self._itself().__await__()

    async def _itself(self) -> AsyncEventStream:
        return self


class Workflow:
    """An ordered list of steps, some of which may pause for a person.

    One Workflow object serves any number of runs, also concurrently: it keeps no
    per-run state. ``db`` stores runs (default: an in-memory SQLite database);
    ``clock`` is where deadlines get their time (inject a ``ManualClock`` in tests).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        steps: Sequence[Any],
        db: BaseDb | None = None,
        description: str | None = None,
        session_id: str | None = None,
        clock: Clock | None = None,
        lease: timedelta | float = timedelta(seconds=60),
        on_interrupted: str = "fail",
        id: str | None = None,
    ) -> None:
        self.name = name or "workflow"
        self.id = id or self.name
        self.description = description
        self.session_id = session_id
        # Steps and groups (Steps, Parallel, Loop, Condition, Router), functions, nested lists.
        self.steps: list[Component] = as_components(steps, owner=f"Workflow {self.name!r}")
        if not self.steps:
            raise WorkflowConfigError(f"Workflow {self.name!r} has no steps")
        self._check_distinct_from()
        self._db = db
        self._db_given = db is not None
        if on_interrupted not in ("fail", "resume"):
            raise WorkflowConfigError(
                f"Workflow {self.name!r}: on_interrupted must be 'fail' or 'resume', "
                f"got {on_interrupted!r}"
            )
        self.on_interrupted = on_interrupted
        lease_td = to_timedelta(lease, what=f"Workflow {self.name!r} lease")
        assert lease_td is not None
        self._leases = LeaseKeeper(db=lambda: self.db, now=lambda: self.clock.now(), lease=lease_td)
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._observers: tuple[Observer, ...] = ()
        self._lock = threading.Lock()
        self._last_session_id: str | None = None
        self._machine = RunMachine(self)
        self._drivers = Drivers(self)

    # -- configuration -------------------------------------------------------
    @property
    def db(self) -> BaseDb:
        """Where runs are stored; if none was given, an in-memory SQLite database (this process)."""
        if self._db is None:
            with self._lock:
                if self._db is None:
                    from engine.db.sqlite import SqliteDb

                    self._db = SqliteDb()  # in memory: runs live as long as the process
        return self._db

    @db.setter
    def db(self, value: BaseDb) -> None:
        self._db = value
        self._db_given = True

    def use_default_db(self, db: BaseDb) -> None:
        """Store runs in ``db`` unless this workflow was given a database of its own.

        A front-end (the Slack bot) calls this for the workflows it serves; calling it again
        with another database (another bot in the same process) moves them along.
        """
        if not self._db_given:
            self._db = db

    @property
    def has_own_db(self) -> bool:
        """Whether a database was given to this workflow (not a front-end's default)."""
        return self._db_given

    @property
    def has_db(self) -> bool:
        """Whether a database was given (a front-end may supply its own otherwise)."""
        return self._db is not None

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer(event)`` for every event of every run of this workflow, in the
        thread that produced it. Returns a function that unsubscribes it."""
        with self._lock:
            self._observers = (*self._observers, observer)

        def unsubscribe() -> None:
            with self._lock:
                self._observers = tuple(o for o in self._observers if o is not observer)

        return unsubscribe

    # -- public API: run ------------------------------------------------------
    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: Literal[False] = False,
        stream_events: bool = False,
        session_id: str | None = None,
        user_id: str | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> WorkflowRunOutput: ...
    @overload
    def run(
        self,
        input: Any = None,
        *,
        stream: Literal[True],
        stream_events: bool = False,
        session_id: str | None = None,
        user_id: str | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> Iterator[WorkflowRunEvent]: ...

    def run(
        self,
        input: Any = None,
        *,
        stream: bool = False,
        stream_events: bool = False,
        session_id: str | None = None,
        user_id: str | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> WorkflowRunOutput | Iterator[WorkflowRunEvent]:
        """Run the workflow until it completes, fails, is cancelled or pauses."""
        run = self._new_run(
            input,
            session_id=session_id,
            user_id=user_id,
            additional_data=additional_data,
            run_id=run_id,
        )
        machine = self._machine.start(run)
        if stream:
            return self._stream(machine, stream_events)
        self._drain(machine)
        return run

    @overload
    def continue_run(
        self,
        run_output: WorkflowRunOutput | None = None,
        *,
        run_response: WorkflowRunOutput | None = None,
        stream: Literal[False] = False,
        stream_events: bool = False,
        run_id: str | None = None,
        session_id: str | None = None,
        step_requirements: list[StepRequirement] | None = None,
    ) -> WorkflowRunOutput: ...
    @overload
    def continue_run(
        self,
        run_output: WorkflowRunOutput | None = None,
        *,
        run_response: WorkflowRunOutput | None = None,
        stream: Literal[True],
        stream_events: bool = False,
        run_id: str | None = None,
        session_id: str | None = None,
        step_requirements: list[StepRequirement] | None = None,
    ) -> Iterator[WorkflowRunEvent]: ...

    def continue_run(
        self,
        run_output: WorkflowRunOutput | None = None,
        *,
        run_response: WorkflowRunOutput | None = None,
        stream: bool = False,
        stream_events: bool = False,
        run_id: str | None = None,
        session_id: str | None = None,
        step_requirements: list[StepRequirement] | None = None,
    ) -> WorkflowRunOutput | Iterator[WorkflowRunEvent]:
        """Resume a paused run whose requirements were answered.

        Either pass the paused ``run_output``, or ``run_id`` (and ``session_id``) with the
        answered ``step_requirements`` — e.g. from another process. Continuing claims the
        pause atomically in the database: of two concurrent calls, one runs the remaining
        steps and the other gets ``RunNotPausedError`` saying how the pause was resolved.
        ``run_response=`` is agno's name for ``run_output``.

        A pause with an approval policy (``approvals=N`` / ``reject_quorum=M``) counts each
        answer as one person's vote, recorded in the audit trail: until the pause resolves
        the run comes back still paused, its requirement showing ``approved_by``,
        ``rejected_by`` and ``approvals_needed`` (and a ``StepApprovalProgressEvent`` is
        emitted). The same person twice raises ``AlreadyDecidedError``; a person in
        ``excluded_deciders`` raises ``DeciderNotAllowedError``; nothing is recorded then.
        Votes given at the same moment in any processes are all counted, and exactly one
        of them resolves the pause and runs the rest.
        """
        run_output = _one_run(run_output, run_response)
        run, decisions, votes = self._prepare_continue(
            run_output, run_id=run_id, session_id=session_id, step_requirements=step_requirements
        )
        machine = self._machine.resume(run, decisions, votes)
        if stream:
            return self._stream(machine, stream_events, mirror=run_output)
        self._drain(machine)
        if run_output is not None and run_output is not run:
            _copy_into(run_output, run)
        return run

    # -- public API: async -------------------------------------------------------
    # Not ``async def``: like the engines our users come from, ``await wf.arun(...)`` gives
    # the run and ``async for event in wf.arun(..., stream=True)`` iterates its events.
    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: Literal[False] = False,
        stream_events: bool = False,
        session_id: str | None = None,
        user_id: str | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> Coroutine[Any, Any, WorkflowRunOutput]: ...
    @overload
    def arun(
        self,
        input: Any = None,
        *,
        stream: Literal[True],
        stream_events: bool = False,
        session_id: str | None = None,
        user_id: str | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> AsyncEventStream: ...

    def arun(
        self,
        input: Any = None,
        *,
        stream: bool = False,
        stream_events: bool = False,
        session_id: str | None = None,
        user_id: str | None = None,
        additional_data: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> Coroutine[Any, Any, WorkflowRunOutput] | AsyncEventStream:
        """Async ``run``: await it for the run, or with ``stream=True`` iterate its events."""
        run = self._new_run(
            input,
            session_id=session_id,
            user_id=user_id,
            additional_data=additional_data,
            run_id=run_id,
        )
        machine = self._machine.start(run)
        if stream:
            return AsyncEventStream(self._astream(machine, stream_events))
        return self._arun_to_end(machine, run)

    async def _arun_to_end(self, machine: Machine, run: WorkflowRunOutput) -> WorkflowRunOutput:
        async for _ in self._adrive(machine):
            pass
        return run

    @overload
    def acontinue_run(
        self,
        run_output: WorkflowRunOutput | None = None,
        *,
        run_response: WorkflowRunOutput | None = None,
        stream: Literal[False] = False,
        stream_events: bool = False,
        run_id: str | None = None,
        session_id: str | None = None,
        step_requirements: list[StepRequirement] | None = None,
    ) -> Coroutine[Any, Any, WorkflowRunOutput]: ...
    @overload
    def acontinue_run(
        self,
        run_output: WorkflowRunOutput | None = None,
        *,
        run_response: WorkflowRunOutput | None = None,
        stream: Literal[True],
        stream_events: bool = False,
        run_id: str | None = None,
        session_id: str | None = None,
        step_requirements: list[StepRequirement] | None = None,
    ) -> AsyncEventStream: ...

    def acontinue_run(
        self,
        run_output: WorkflowRunOutput | None = None,
        *,
        run_response: WorkflowRunOutput | None = None,
        stream: bool = False,
        stream_events: bool = False,
        run_id: str | None = None,
        session_id: str | None = None,
        step_requirements: list[StepRequirement] | None = None,
    ) -> Coroutine[Any, Any, WorkflowRunOutput] | AsyncEventStream:
        """Async ``continue_run``: await it for the run, or with ``stream=True`` iterate its
        events (a refused continue raises on the first iteration)."""
        run_output = _one_run(run_output, run_response)
        if stream:
            return AsyncEventStream(
                self._acontinue_events(
                    run_output, run_id, session_id, step_requirements, stream_events
                )
            )
        return self._acontinue_to_end(run_output, run_id, session_id, step_requirements)

    async def _aprepare_continue(
        self,
        run_output: WorkflowRunOutput | None,
        run_id: str | None,
        session_id: str | None,
        step_requirements: list[StepRequirement] | None,
    ) -> tuple[WorkflowRunOutput, list[Decision], list[StepRequirement] | None]:
        return await asyncio.to_thread(
            self._prepare_continue,
            run_output,
            run_id=run_id,
            session_id=session_id,
            step_requirements=step_requirements,
        )

    async def _acontinue_to_end(
        self,
        run_output: WorkflowRunOutput | None,
        run_id: str | None,
        session_id: str | None,
        step_requirements: list[StepRequirement] | None,
    ) -> WorkflowRunOutput:
        run, decisions, votes = await self._aprepare_continue(
            run_output, run_id, session_id, step_requirements
        )
        async for _ in self._adrive(self._machine.resume(run, decisions, votes)):
            pass
        if run_output is not None and run_output is not run:
            _copy_into(run_output, run)
        return run

    async def _acontinue_events(
        self,
        run_output: WorkflowRunOutput | None,
        run_id: str | None,
        session_id: str | None,
        step_requirements: list[StepRequirement] | None,
        stream_events: bool,
    ) -> AsyncIterator[WorkflowRunEvent]:
        run, decisions, votes = await self._aprepare_continue(
            run_output, run_id, session_id, step_requirements
        )
        machine = self._machine.resume(run, decisions, votes)
        async for event in self._astream(machine, stream_events, mirror=run_output):
            yield event

    # -- public API: deadlines -------------------------------------------------
    def expire_run(self, run_id: str, *, now: datetime | None = None) -> WorkflowRunOutput:
        """Apply ``on_reject`` to a paused run whose deadline has passed.

        Exactly once, like ``continue_run``: a concurrent expiry or decision wins or loses
        the same claim. Raises RunNotPausedError if the run is not paused or its deadline
        has not passed yet.
        """
        now = require_aware(now, "expire_run(now=...)") if now else self.clock.now()
        while True:
            run = self._load_for_continue(run_id, None)
            ids = [r.requirement_id for r in run.step_requirements]
            try:
                return self._expire(run, now=now)
            except RunNotPausedError:
                # A vote recorded meanwhile on a pause that counts them moved the run's
                # version without resolving it: the deadline still decides, on the fresh run.
                current = self.db.get_run(run_id)
                if (
                    current is None
                    or not current.is_paused
                    or current.version == run.version
                    or not any(r.counts_votes for r in run.step_requirements)
                    or [r.requirement_id for r in current.step_requirements] != ids
                ):
                    raise

    def _expire(self, run: WorkflowRunOutput, *, now: datetime) -> WorkflowRunOutput:
        run_id = run.run_id
        # Like continue_run: never apply a decision to a run this definition does not fit
        # (skipping would carry on with the wrong steps).
        check_fits(self, run)
        due = run.expires_at
        if due is None or due > now:
            name = run.paused_step_name
            raise RunNotPausedError(
                run_id,
                status=run.status.value,
                resolution=(
                    f"step '{name}' has no deadline"
                    if due is None
                    else f"step '{name}' is due at {due.isoformat()}"
                ),
            )
        # The pause's deadline is its earliest requirement's: when it passes, the timeout
        # decides every requirement of the pause (each by its own on_timeout / on_reject).
        for req in run.step_requirements:
            self._time_out(req, now=now, due=req.expires_at or due)
        decisions = [
            Decision.from_requirement(run.run_id, r, at=now) for r in run.step_requirements
        ]
        self._drain(self._machine.resume(run, decisions))
        return run

    @staticmethod
    def _time_out(req: StepRequirement, *, now: datetime, due: datetime) -> None:
        approve = req.reject_action_on_timeout() is RejectAction.approve
        req.timed_out = True
        req.confirmed = approve
        req.decided_by = TIMEOUT_ACTOR
        req.decided_at = now
        req.reason = f"no decision before the deadline ({due.isoformat()})"
        if not approve or req.kind is not RequirementKind.confirmation:
            req.user_input = None
        req.selected_choices = None
        req.edited_output = None

    def expire_due_runs(
        self, *, now: datetime | None = None, limit: int = 100
    ) -> list[WorkflowRunOutput]:
        """Expire every paused run of this workflow whose deadline is at or before ``now``.
        Runs another process expired first are left to it."""
        now = require_aware(now, "expire_due_runs(now=...)") if now else self.clock.now()
        expired = []
        for paused in self.db.list_paused_runs(
            workflow_name=self.name, expires_before=now, limit=limit
        ):
            try:
                expired.append(self.expire_run(paused.run_id, now=now))
            except RunNotPausedError:
                continue
            except WorkflowConfigError:
                # One run the current definition does not fit must not block the others.
                log.warning("cannot expire run %s", paused.run_id, exc_info=True)
        return expired

    def recover_interrupted_runs(
        self, *, now: datetime | None = None, limit: int = 100
    ) -> list[WorkflowRunOutput]:
        """Find runs of this workflow left running by a process that died (its lease
        expired) and apply ``on_interrupted``: ``"fail"`` ends them as ``error`` with a
        message saying so; ``"resume"`` runs them on from their last decided pause, so the
        steps after it may run a second time. Each run is taken over exactly once."""
        now = require_aware(now, "now") if now is not None else self.clock.now()
        recovered = []
        for item in self.db.list_interrupted_runs(workflow_name=self.name, before=now, limit=limit):
            run = item.run
            until = now + self._leases.lease
            if not self.db.take_over_run(run, owner=process_owner_id(), now=now, until=until):
                continue  # another process took it, or its owner came back
            self._leases.hold(run.run_id)
            log.warning(
                "run %s was interrupted (lease of %s expired at %s); policy %s",
                run.run_id,
                item.lease_owner,
                item.lease_expired_at,
                self.on_interrupted,
            )
            machine = self._machine.recover(
                run,
                owner=item.lease_owner,
                expired_at=item.lease_expired_at,
                policy=self.on_interrupted,
            )
            try:
                self._drain(machine)
            finally:
                self._leases.release(run.run_id)
            recovered.append(run)
        return recovered

    def list_paused_runs(
        self,
        *,
        session_id: str | None = None,
        step_name: str | None = None,
        expires_before: datetime | None = None,
        has_deadline: bool | None = None,
        changed_since: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[PausedRun]:
        """Paused runs of this workflow, soonest deadline first (``db.list_paused_runs``
        lists every workflow's); ``changed_since``: only those written at or after it;
        ``limit`` and ``offset`` page through them."""
        return self.db.list_paused_runs(
            workflow_name=self.name,
            session_id=session_id,
            step_name=step_name,
            expires_before=expires_before,
            has_deadline=has_deadline,
            changed_since=changed_since,
            limit=limit,
            offset=offset,
        )

    def list_paused_requirement_ids(
        self,
        *,
        changed_since: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[tuple[str, str | None]]:
        """(run id, pause id) of this workflow's paused runs, no run's data read
        (``db.list_paused_requirement_ids``)."""
        return self.db.list_paused_requirement_ids(
            workflow_name=self.name, changed_since=changed_since, limit=limit, offset=offset
        )

    # -- public API: loading -----------------------------------------------------
    def get_run(self, run_id: str) -> WorkflowRunOutput | None:
        """The run with this id as last stored, or None."""
        return self.db.get_run(run_id)

    def get_session(self, session_id: str | None = None) -> WorkflowSession | None:
        """The session ``session_id``, or without it the session of this workflow's last run."""
        session_id = session_id or self._last_session_id or self.session_id
        if session_id is None:
            return None
        return self.db.get_session(session_id)

    def get_decisions(self, run_id: str) -> list[Decision]:
        """The run's audit trail: every recorded decision, oldest first."""
        return self.db.get_decisions(run_id)

    def step_named(self, name: str) -> Component | None:
        """The component named ``name``: a top-level one first, else the first at any depth."""
        top = next((s for s in self.steps if s.name == name), None)
        if top is not None:
            return top
        todo = list(self.steps)
        while todo:
            node = todo.pop(0)
            if node.name == name:
                return node
            todo.extend(node.children())
        return None

    # -- internals -----------------------------------------------------------------
    def _check_distinct_from(self) -> None:
        """A ``distinct_from`` name that is no step of this workflow would silently exclude
        nobody: refuse it."""
        todo: list[Component] = list(self.steps)
        names: set[str] = set()
        components: list[Component] = []
        while todo:
            node = todo.pop()
            names.add(node.name)
            components.append(node)
            todo.extend(node.children())
        for component in components:
            unknown = sorted(set(getattr(component, "distinct_from", ())) - names)
            if unknown:
                raise WorkflowConfigError(
                    f"Workflow {self.name!r}: {component.name!r} has distinct_from={unknown}, "
                    "which are not steps of this workflow"
                )

    def _new_run(
        self,
        input: Any,
        *,
        session_id: str | None,
        user_id: str | None,
        additional_data: dict[str, Any] | None,
        run_id: str | None,
    ) -> WorkflowRunOutput:
        if run_id is not None and self.db.get_run(run_id) is not None:
            # Refuse before any step runs: the clash would surface only at the first save.
            raise DuplicateRunError(run_id)
        session_id = session_id or self.session_id or uuid.uuid4().hex
        self._last_session_id = session_id
        now = self.clock.now()
        return WorkflowRunOutput(
            run_id=run_id or uuid.uuid4().hex,
            session_id=session_id,
            workflow_name=self.name,
            input=input,
            user_id=user_id,
            status=RunStatus.running,
            additional_data=dict(additional_data or {}),
            created_at=now,
            updated_at=now,
        )

    def _load_for_continue(self, run_id: str, session_id: str | None) -> WorkflowRunOutput:
        run = self.db.get_run(run_id)
        if run is None or (session_id is not None and run.session_id != session_id):
            raise RunNotFoundError(run_id)
        if run.workflow_name != self.name:
            raise WorkflowConfigError(
                f"run {run_id} belongs to workflow {run.workflow_name!r}, not {self.name!r}"
            )
        if not run.is_paused:
            raise self.db.not_paused_error(run_id)
        return run

    # Checks each way a continue_run call can be wrong, in the order the errors are reported.
    def _prepare_continue(  # noqa: PLR0912, PLR0915
        self,
        run_output: WorkflowRunOutput | None,
        *,
        run_id: str | None,
        session_id: str | None,
        step_requirements: list[StepRequirement] | None,
    ) -> tuple[WorkflowRunOutput, list[Decision], list[StepRequirement] | None]:
        """The run to resume, the decisions its claim records, and for a pause whose
        requirements count votes the answers to tally (the machine tallies them, again on
        a fresh copy if a concurrent vote lands first)."""
        if run_output is not None and not isinstance(run_output, WorkflowRunOutput):
            raise TypeError(
                "continue_run takes the paused WorkflowRunOutput (or run_id=...), "
                f"got {type(run_output).__name__}"
            )
        if run_output is not None and run_id is not None and run_id != run_output.run_id:
            raise TypeError(
                f"continue_run got run {run_output.run_id} and run_id={run_id!r}: give one"
            )
        if run_output is not None:
            if run_output.workflow_name not in (None, self.name):
                raise WorkflowConfigError(
                    f"run {run_output.run_id} belongs to workflow "
                    f"{run_output.workflow_name!r}, not {self.name!r}"
                )
            if not run_output.is_paused:
                raise self.db.not_paused_error(run_output.run_id)
            # Work on a private copy: the caller's object may be shared between threads,
            # and a losing caller must not see it change. The version is read first because
            # _copy_into writes it last: a copy torn by a concurrent winner then carries an
            # old version, and its claim fails cleanly. The copy carries the answers too.
            version = run_output.version
            run = WorkflowRunOutput.from_dict(run_output.to_dict(), version=version)
            answers = []
        elif run_id is not None:
            run = self._load_for_continue(run_id, session_id)
            answers = step_requirements or []
        else:
            raise TypeError("continue_run needs a run_output, or run_id= with step_requirements=")
        # get_session() with no argument follows the run this workflow touched last, also
        # when it only continued one (a fresh process that started nothing).
        self._last_session_id = run.session_id
        if not run.step_requirements:
            raise self.db.not_paused_error(run.run_id)
        voting = any(r.counts_votes for r in run.step_requirements)
        decided = set()
        if voting:
            # A step whose quorum an earlier call reached (the pause waiting for another
            # of its requirements) takes no more votes.
            decided = {r.requirement_id for r in run.step_requirements if r.quorum_reached}
            by_id = {r.requirement_id: r for r in run.step_requirements}
            by_step = {r.step_name: r for r in run.step_requirements}
            for answer in answers:
                target = by_id.get(answer.requirement_id) or by_step.get(answer.step_name)
                if target is not None and target.requirement_id in decided:
                    raise target._already_decided(
                        run.run_id, answer.decided_by or "someone", approved=bool(target.confirmed)
                    )
        self._apply_answers(run, answers)
        if not voting:
            problems = [p for r in run.step_requirements for p in r.unresolved_reasons()]
            if problems:
                raise RequirementsUnresolvedError(run.run_id, problems)
            for req in run.step_requirements:
                if req.excluded_deciders:
                    req.check_decider(run.run_id)
        now = self.clock.now()
        for req in run.step_requirements:
            if req.user_input is not None and not req.is_rejected:
                # Re-validate: values may have been set by hand or loaded from elsewhere.
                req.set_user_input(req.user_input, by=req.decided_by)
            if req.selected_choices is not None and req.kind is RequirementKind.route_selection:
                req.select(*req.selected_choices, by=req.decided_by)
        check_fits(self, run)
        for req in run.step_requirements:
            if req.expires_at is not None and req.expires_at <= now:
                # Its deadline passed: the timeout decides, even if no timer fired yet. A
                # stale copy whose pause is already resolved is told how, as any loser is.
                current = self.db.get_run(run.run_id)
                if current is None or not current.is_paused or current.version != run.version:
                    raise self.db.not_paused_error(run.run_id)
                raise DecisionTooLateError(
                    run.run_id, step_name=req.step_name, expires_at=req.expires_at
                )
        if voting:
            given = [
                StepRequirement.from_dict(r.to_dict())
                for r in run.step_requirements
                if r.requirement_id not in decided
            ]
            return run, [], given
        decisions = [
            Decision.from_requirement(run.run_id, r, at=now) for r in run.step_requirements
        ]
        return run, decisions, None

    @staticmethod
    def _apply_answers(run: WorkflowRunOutput, answers: list[StepRequirement]) -> None:
        stored = {r.requirement_id: r for r in run.step_requirements}
        by_step = {r.step_name: r for r in run.step_requirements}
        for answer in answers:
            target = stored.get(answer.requirement_id) or by_step.get(answer.step_name)
            if target is None:
                raise RequirementsUnresolvedError(
                    run.run_id, [f"step '{answer.step_name}' is not what this run waits for"]
                )
            if target is not answer:
                target.apply_answer_from(answer)

    def locate(self, path: Sequence[int]) -> Component | None:
        """The component at ``path`` (indexes through the tree), or None."""
        if not path or not 0 <= path[0] < len(self.steps):
            return None
        return self.steps[path[0]].locate(path[1:])

    def _drive(self, machine: Machine) -> Iterator[WorkflowRunEvent]:
        return self._drivers.drive(machine)

    def _adrive(self, machine: Machine) -> AsyncIterator[WorkflowRunEvent]:
        return self._drivers.adrive(machine)

    def _drain(self, machine: Machine) -> None:
        for _ in self._drive(machine):
            pass

    def _stream(
        self,
        machine: Machine,
        stream_events: bool,
        mirror: WorkflowRunOutput | None = None,
    ) -> Iterator[WorkflowRunEvent]:
        for event in self._drive(machine):
            if stream_events or isinstance(event, _WORKFLOW_EVENTS):
                yield event
        if mirror is not None and event.run_output is not None:
            _copy_into(mirror, event.run_output)

    async def _astream(
        self,
        machine: Machine,
        stream_events: bool,
        mirror: WorkflowRunOutput | None = None,
    ) -> AsyncIterator[WorkflowRunEvent]:
        last: WorkflowRunEvent | None = None
        async for event in self._adrive(machine):
            last = event
            if stream_events or isinstance(event, _WORKFLOW_EVENTS):
                yield event
        if mirror is not None and last is not None and last.run_output is not None:
            _copy_into(mirror, last.run_output)

    def __repr__(self) -> str:
        return f"Workflow(name={self.name!r}, steps={[s.name for s in self.steps]})"


def _one_run(
    run_output: WorkflowRunOutput | None, run_response: WorkflowRunOutput | None
) -> WorkflowRunOutput | None:
    if run_output is not None and run_response is not None and run_output is not run_response:
        raise TypeError("continue_run got run_output and run_response: give one")
    return run_output if run_output is not None else run_response


def _copy_into(target: WorkflowRunOutput, source: WorkflowRunOutput) -> None:
    # The version last: a thread copying ``target`` meanwhile reads it first (see
    # _prepare_continue), so it never pairs old requirements with a new version.
    state = dict(source.__dict__)
    version = state.pop("version")
    target.__dict__.update(state)
    target.version = version
