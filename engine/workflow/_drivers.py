"""Drivers: carry out the machine's instructions, synchronously or asynchronously.

Both drivers share one definition of what happens between instructions (``_Stepper``: what
to send back into the machine, what to throw into it, which runs it claimed); they differ
only in how an instruction is carried out (called, or awaited).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import RunNotPausedError
from engine.run.base import RunStatus
from engine.run.events import WorkflowRunEvent
from engine.workflow._leases import process_owner_id
from engine.workflow._machine import Machine
from engine.workflow._tree import Call, Claim, ContinueExecutor, Instruction, Invoke, Reload, Save
from engine.workflow.step import call_blocking

if TYPE_CHECKING:
    from engine.run.workflow import WorkflowRunOutput
    from engine.workflow.workflow import Workflow

log = logging.getLogger("engine.workflow")
# A run's save after its step ran is retried this long while the database is unreachable
# (well within the default one-minute lease, which recovery would otherwise wait out).
SAVE_RETRY_FOR = timedelta(seconds=30)
SAVE_RETRY_FIRST = 0.05
SAVE_RETRY_MAX = 2.0


class _Stepper:
    """The machine's side of a drive: ``next()`` gives the next instruction (None at the
    end); ``done(value)`` / ``failed(exc)`` report how the last one went."""

    def __init__(self, machine: Machine) -> None:
        self._machine = machine
        self._send: Any = None
        self._throw: BaseException | None = None
        self.claimed: list[str] = []

    def next(self) -> Instruction | None:
        send, throw = self._send, self._throw
        self._send, self._throw = None, None
        try:
            return self._machine.throw(throw) if throw is not None else self._machine.send(send)
        except StopIteration:
            return None

    def done(self, item: Instruction, value: Any) -> None:
        self._send = value
        if isinstance(item, Claim) and not item.keeps_paused and value is not False:
            self.claimed.append(item.run.run_id)

    def failed(self, exc: Exception) -> None:
        self._throw = exc


# Instructions whose exceptions go back into the machine (a step that raised is the run's
# business); a failing save or claim ends the drive and reaches the caller.
_USER_CODE = (Invoke, ContinueExecutor, Call)


class Drivers:
    def __init__(self, workflow: Workflow) -> None:
        self.wf = workflow

    # -- carrying out one instruction ----------------------------------------------------
    def perform(self, item: Instruction) -> Any:
        if isinstance(item, Invoke):
            return item.step.execute(item.step_input)
        if isinstance(item, ContinueExecutor):
            return item.step.continue_executor(item.step_input, item.requirement)
        if isinstance(item, Call):
            return call_blocking(item.fn, item.args)
        return self.store(item)

    async def aperform(self, item: Instruction) -> Any:
        if isinstance(item, Invoke):
            return await item.step.aexecute(item.step_input)
        if isinstance(item, ContinueExecutor):
            return await item.step.acontinue_executor(item.step_input, item.requirement)
        if isinstance(item, Call):
            result = item.fn(*item.args)
            return await result if inspect.isawaitable(result) else result
        return await asyncio.to_thread(self.store, item)

    def store(self, item: Instruction) -> Any:
        wf = self.wf
        if isinstance(item, Save):
            self._save(item.run)
            if item.run.status is not RunStatus.running:
                wf._leases.release(item.run.run_id)
            return None
        if isinstance(item, Reload):
            fresh = wf.db.get_run(item.run_id)
            if (
                fresh is None
                or not fresh.is_paused
                or [r.requirement_id for r in fresh.step_requirements] != item.requirement_ids
            ):
                raise wf.db.not_paused_error(item.run_id)
            return fresh
        assert isinstance(item, Claim)
        if item.contended:
            try:
                self._claim(item)
            except RunNotPausedError:
                return False
            return True
        self._claim(item)
        return None

    def _save(self, run: WorkflowRunOutput) -> None:
        """Save a run this process drives; while the database is briefly unreachable (a
        restart, a connection cut), wait and try again instead of dropping a run whose step
        already ran. A failed attempt may have committed before its answer was lost: the
        stored version says so (nobody else writes a run this process holds the lease of)."""
        db, deadline = self.wf.db, time.monotonic() + SAVE_RETRY_FOR.total_seconds()
        delay, tried = SAVE_RETRY_FIRST, False
        while True:
            try:
                if tried and run.version:
                    stored = db.get_run(run.run_id)
                    if stored is not None and stored.version == run.version + 1:
                        run.version = stored.version  # the lost answer was a commit
                        return
                db.save_run(run)
                return
            except db.unavailable_errors as exc:
                if run.version == 0 or time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "saving run %s failed (%s); trying again in %.1fs", run.run_id, exc, delay
                )
                time.sleep(delay)
                delay, tried = min(delay * 2, SAVE_RETRY_MAX), True

    def _claim(self, item: Claim) -> None:
        wf = self.wf
        if item.keeps_paused:
            owner, until = None, None
        else:
            owner, until = process_owner_id(), wf._leases.until()
        if len(item.decisions) == 1:
            wf.db.claim_paused_run(
                item.run,
                expected_version=item.expected_version,
                decision=item.decisions[0],
                lease_owner=owner,
                lease_expires_at=until,
            )
        else:  # a Parallel's pause: one claim, every decision in its transaction
            wf.db.claim_paused_run_with_decisions(
                item.run,
                expected_version=item.expected_version,
                decisions_made=item.decisions,
                lease_owner=owner,
                lease_expires_at=until,
            )
        if not item.keeps_paused:
            wf._leases.hold(item.run.run_id)

    # -- the two drives --------------------------------------------------------------------
    def drive(self, machine: Machine) -> Iterator[WorkflowRunEvent]:
        stepper = _Stepper(machine)
        try:
            while (item := stepper.next()) is not None:
                if isinstance(item, WorkflowRunEvent):
                    self._notify(item)
                    yield item
                    continue
                try:
                    value = self.perform(item)
                except Exception as exc:
                    if not isinstance(item, _USER_CODE):
                        raise
                    stepper.failed(exc)
                    continue
                stepper.done(item, value)
        except BaseException:
            self._abandon(stepper.claimed)
            raise

    async def adrive(self, machine: Machine) -> AsyncIterator[WorkflowRunEvent]:
        stepper = _Stepper(machine)
        try:
            while (item := stepper.next()) is not None:
                if isinstance(item, WorkflowRunEvent):
                    self._notify(item)
                    yield item
                    continue
                try:
                    value = await self.aperform(item)
                except Exception as exc:
                    if not isinstance(item, _USER_CODE):
                        raise
                    stepper.failed(exc)
                    continue
                stepper.done(item, value)
        except BaseException:
            self._abandon(stepper.claimed)
            raise

    def _notify(self, event: WorkflowRunEvent) -> None:
        for observer in self.wf._observers:
            try:
                observer(event)
            except Exception:  # an observer's bug must not break the run
                log.exception("workflow observer %r failed on %s", observer, event.event)

    def _abandon(self, run_ids: list[str]) -> None:
        """A drive that ends early (an abandoned stream, a cancelled task, a BaseException
        from a step) leaves its run ``running``: stop renewing its lease so that it lapses
        and ``recover_interrupted_runs`` applies ``on_interrupted``, instead of this process
        keeping a run nobody drives alive for as long as it lives."""
        for run_id in run_ids:
            self.wf._leases.release(run_id)


ObserverFn = Callable[[WorkflowRunEvent], None]
