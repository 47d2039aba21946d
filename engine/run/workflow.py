"""The output of a workflow run, and the events it streams."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.clock import format_time, parse_time, utcnow
from engine.run.base import RunStatus
from engine.run.events import (
    LIFECYCLE_EVENTS,
    StepCompletedEvent,
    StepContinuedEvent,
    StepPausedEvent,
    StepSkippedEvent,
    StepStartedEvent,
    StepTimedOutEvent,
    WorkflowCancelledEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowRunEvent,
    WorkflowStartedEvent,
)
from engine.run.requirement import Decision, Outcome, StepRequirement
from engine.workflow.types import PauseKind, RequirementKind, StepOutput, _jsonable


@dataclass
class WorkflowRunOutput:
    """One run of a workflow: its status, results and, while paused, what it waits for."""

    run_id: str
    session_id: str
    workflow_name: str | None = None
    input: Any = None
    user_id: str | None = None
    status: RunStatus = RunStatus.pending
    content: Any = None
    step_results: list[StepOutput] = field(default_factory=list)
    # The requirements of the current pause (empty unless paused).
    step_requirements: list[StepRequirement] = field(default_factory=list)
    # Where the run waits: the path of indexes of its first requirement's component.
    pause_path: list[int] | None = None
    # Where each component of the tree stands while paused (the machine's frames, as JSON).
    cursor: dict[str, Any] | None = None
    # Requirements of earlier pauses of this run, answered (oldest first).
    requirement_history: list[StepRequirement] = field(default_factory=list)
    additional_data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    # Incremented by every write; the compare-and-set that makes continuing exactly-once.
    version: int = 0

    @property
    def is_paused(self) -> bool:
        """Whether the run waits for a person."""
        return self.status is RunStatus.paused

    @property
    def is_cancelled(self) -> bool:
        """Whether the run was cancelled."""
        return self.status is RunStatus.cancelled

    @property
    def is_completed(self) -> bool:
        """Whether the run ran to its end."""
        return self.status is RunStatus.completed

    @property
    def steps_requiring_confirmation(self) -> list[StepRequirement]:
        """Requirements of the current pause still waiting for confirm() or reject()."""
        return [r for r in self.step_requirements if r.needs_confirmation]

    @property
    def steps_requiring_user_input(self) -> list[StepRequirement]:
        """Requirements of the current pause still waiting for set_user_input()."""
        return [r for r in self.step_requirements if r.needs_user_input]

    @property
    def steps_requiring_route(self) -> list[StepRequirement]:
        """Routers of the current pause waiting for a person's choice."""
        return [r for r in self.step_requirements if r.needs_route_selection]

    @property
    def steps_requiring_output_review(self) -> list[StepRequirement]:
        """Outputs (of steps, or of loop iterations) waiting for review."""
        return [r for r in self.step_requirements if r.needs_output_review]

    @property
    def steps_requiring_executor_input(self) -> list[StepRequirement]:
        """Steps whose agent waits for answers to its own requirements."""
        return [r for r in self.step_requirements if r.needs_executor_resolution]

    @property
    def error_requirements(self) -> list[StepRequirement]:
        """Steps of the current pause that raised (``on_error="pause"``)."""
        return [r for r in self.step_requirements if r.kind is RequirementKind.error]

    @property
    def steps_with_errors(self) -> list[StepRequirement]:
        """The error pauses still waiting for ``retry()`` or ``skip()``."""
        return [r for r in self.error_requirements if r.needs_decision]

    @property
    def active_step_requirements(self) -> list[StepRequirement]:
        """The requirements of the current pause (``step_requirements``)."""
        return list(self.step_requirements)

    @property
    def all_step_requirements(self) -> list[StepRequirement]:
        """Every requirement of this run, answered ones of earlier pauses first."""
        return [*self.requirement_history, *self.step_requirements]

    @property
    def paused_step_index(self) -> int | None:
        """The index of the step the run is paused at, or None."""
        return self.step_requirements[0].step_index if self.step_requirements else None

    @property
    def pause_kind(self) -> PauseKind | None:
        """Whether the run waits on a step's own pause or an agent's (executor) requirement."""
        if not self.is_paused or not self.step_requirements:
            return None
        if any(r.kind is RequirementKind.executor for r in self.step_requirements):
            return PauseKind.EXECUTOR
        return PauseKind.STEP

    @property
    def is_error(self) -> bool:
        """Whether the run ended on an exception."""
        return self.status is RunStatus.error

    @property
    def paused_step_name(self) -> str | None:
        """The name of the step the run is paused at, or None."""
        return self.step_requirements[0].step_name if self.step_requirements else None

    @property
    def expires_at(self) -> datetime | None:
        """The earliest deadline of the current pause, or None."""
        deadlines = [r.expires_at for r in self.step_requirements if r.expires_at]
        return min(deadlines) if deadlines else None

    def to_dict(self) -> dict[str, Any]:
        """Its stored form, JSON-safe; ``from_dict`` reads it back."""
        return {
            "run_id": self.run_id,
            "session_id": self.session_id,
            "workflow_name": self.workflow_name,
            "input": _jsonable(self.input),
            "user_id": self.user_id,
            "status": self.status.value,
            "content": _jsonable(self.content),
            "step_results": [s.to_dict() for s in self.step_results],
            "step_requirements": [r.to_dict() for r in self.step_requirements],
            "pause_path": self.pause_path,
            **({"cursor": self.cursor} if self.cursor is not None else {}),
            **(
                {"requirement_history": [r.to_dict() for r in self.requirement_history]}
                if self.requirement_history
                else {}
            ),
            "additional_data": _jsonable(self.additional_data),
            "error": self.error,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, version: int = 0) -> WorkflowRunOutput:
        """A run from its stored form, with ``version`` from the row it was read from."""
        return cls(
            run_id=data["run_id"],
            session_id=data["session_id"],
            workflow_name=data.get("workflow_name"),
            input=data.get("input"),
            user_id=data.get("user_id"),
            status=RunStatus(data.get("status") or "pending"),
            content=data.get("content"),
            step_results=[StepOutput.from_dict(s) for s in data.get("step_results") or []],
            step_requirements=[
                StepRequirement.from_dict(r) for r in data.get("step_requirements") or []
            ],
            pause_path=data.get("pause_path"),
            cursor=data.get("cursor"),
            requirement_history=[
                StepRequirement.from_dict(r) for r in data.get("requirement_history") or []
            ],
            additional_data=dict(data.get("additional_data") or {}),
            error=data.get("error"),
            created_at=parse_time(data.get("created_at")) or utcnow(),
            updated_at=parse_time(data.get("updated_at")) or utcnow(),
            version=version,
        )


@dataclass
class WorkflowSession:
    """A session groups the runs of one conversation or job; ``runs`` oldest first."""

    session_id: str
    workflow_name: str | None = None
    user_id: str | None = None
    runs: list[WorkflowRunOutput] = field(default_factory=list)
    created_at: datetime | None = None


@dataclass(frozen=True)
class PausedRun:
    """A row of the paused-runs query: one run waiting at one pause."""

    workflow_name: str | None
    session_id: str
    run_id: str
    step_name: str
    requirement: StepRequirement
    paused_at: datetime | None
    expires_at: datetime | None
    user_id: str | None
    version: int
    run: WorkflowRunOutput  # the whole run as stored, read by the same query


__all__ = [
    "LIFECYCLE_EVENTS",
    "Decision",
    "Outcome",
    "PausedRun",
    "RunStatus",
    "StepCompletedEvent",
    "StepContinuedEvent",
    "StepPausedEvent",
    "StepRequirement",
    "StepSkippedEvent",
    "StepStartedEvent",
    "StepTimedOutEvent",
    "WorkflowCancelledEvent",
    "WorkflowCompletedEvent",
    "WorkflowErrorEvent",
    "WorkflowRunEvent",
    "WorkflowRunOutput",
    "WorkflowSession",
    "WorkflowStartedEvent",
]
