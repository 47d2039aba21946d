"""Typed events of a run, streamed by ``run(stream=True, stream_events=True)`` and
delivered to observers (``Workflow.subscribe``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from engine.clock import utcnow
from engine.workflow.types import OnReject, StepOutput, UserInputField

if TYPE_CHECKING:
    from engine.run.requirement import StepRequirement
    from engine.run.workflow import WorkflowRunOutput


@dataclass(kw_only=True)
class WorkflowRunEvent:
    """What every run event carries: which run, when, and the run as it was then."""

    event: ClassVar[str] = "WorkflowRunEvent"
    run_id: str
    session_id: str
    workflow_name: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    # The run as it was when the event happened; for observers that need context.
    run_output: WorkflowRunOutput | None = field(default=None, repr=False, compare=False)


@dataclass(kw_only=True)
class WorkflowStartedEvent(WorkflowRunEvent):
    """A run started, with its input."""

    event: ClassVar[str] = "WorkflowStarted"
    input: Any = None
    user_id: str | None = None


@dataclass(kw_only=True)
class WorkflowCompletedEvent(WorkflowRunEvent):
    """A run ran to its end; ``content`` is the output of the last step that ran."""

    event: ClassVar[str] = "WorkflowCompleted"
    content: Any = None
    step_results: list[StepOutput] = field(default_factory=list)


@dataclass(kw_only=True)
class WorkflowCancelledEvent(WorkflowRunEvent):
    """A run was cancelled by a rejection or a deadline (``on_reject="cancel"``)."""

    event: ClassVar[str] = "WorkflowCancelled"
    reason: str | None = None
    step_name: str | None = None
    cancelled_by: str | None = None


@dataclass(kw_only=True)
class WorkflowErrorEvent(WorkflowRunEvent):
    """A run ended on a step's exception."""

    event: ClassVar[str] = "WorkflowError"
    error: str
    step_name: str | None = None


@dataclass(kw_only=True)
class StepStartedEvent(WorkflowRunEvent):
    """A step began to run; again for each attempt."""

    event: ClassVar[str] = "StepStarted"
    step_name: str
    step_index: int
    step_path: list[int] | None = None


@dataclass(kw_only=True)
class StepCompletedEvent(WorkflowRunEvent):
    """A step finished with an output."""

    event: ClassVar[str] = "StepCompleted"
    step_name: str
    step_index: int
    step_path: list[int] | None = None
    content: Any = None
    step_output: StepOutput | None = None


@dataclass(kw_only=True)
class StepSkippedEvent(WorkflowRunEvent):
    """A step was skipped: by a rejection, a deadline (``timed_out``) or ``on_error="skip"``."""

    event: ClassVar[str] = "StepSkipped"
    step_name: str
    step_index: int
    step_path: list[int] | None = None
    reason: str | None = None
    skipped_by: str | None = None
    timed_out: bool = False


@dataclass(kw_only=True)
class StepPausedEvent(WorkflowRunEvent):
    """A step paused for a person; ``requirement`` is what it asks for."""

    event: ClassVar[str] = "StepPaused"
    step_name: str
    step_index: int
    step_path: list[int]
    requirement: StepRequirement
    requires_confirmation: bool = False
    confirmation_message: str | None = None
    requires_user_input: bool = False
    user_input_message: str | None = None
    user_input_schema: list[UserInputField] = field(default_factory=list)
    on_reject: OnReject = OnReject.skip
    expires_at: datetime | None = None


@dataclass(kw_only=True)
class StepContinuedEvent(WorkflowRunEvent):
    """A pause was resolved (confirmed, rejected, answered or timed out) and the run resumes."""

    event: ClassVar[str] = "StepContinued"
    step_name: str
    step_index: int
    step_path: list[int] | None = None
    outcome: str
    decided_by: str | None = None
    requirement: StepRequirement | None = None


@dataclass(kw_only=True)
class StepApprovalProgressEvent(WorkflowRunEvent):
    """A vote on a pause that needs several people was recorded; the pause is still open
    (``approvals_needed`` more approvals, or ``rejections_needed`` more rejections)."""

    event: ClassVar[str] = "StepApprovalProgress"
    step_name: str
    step_index: int
    step_path: list[int] | None = None
    requirement: StepRequirement | None = None
    approved_by: list[str] = field(default_factory=list)
    rejected_by: list[str] = field(default_factory=list)
    approvals_needed: int = 0
    rejections_needed: int = 0


@dataclass(kw_only=True)
class StepTimedOutEvent(WorkflowRunEvent):
    """A pause's deadline passed; ``on_reject`` is what happened to the step."""

    event: ClassVar[str] = "StepTimedOut"
    step_name: str
    step_index: int
    step_path: list[int] | None = None
    on_reject: OnReject
    expires_at: datetime | None = None
    requirement: StepRequirement | None = None


@dataclass(kw_only=True)
class RouterPausedEvent(StepPausedEvent):
    """A Router waits for a person to choose its route(s)."""

    event: ClassVar[str] = "RouterPaused"
    available_choices: list[str] = field(default_factory=list)
    allow_multiple_selections: bool = False
    user_input_message: str | None = None


@dataclass(kw_only=True)
class StepOutputReviewPausedEvent(StepPausedEvent):
    """A step (or a Router's choice, or a Loop's iteration) ran; its output waits for review."""

    event: ClassVar[str] = "StepOutputReviewPaused"
    output_review_message: str | None = None
    step_output: StepOutput | None = None


@dataclass(kw_only=True)
class StepErrorPausedEvent(StepPausedEvent):
    """A step raised with ``on_error="pause"``: a person decides to retry or skip it."""

    event: ClassVar[str] = "StepErrorPaused"
    error_message: str | None = None
    error_type: str | None = None
    retry_count: int = 0


@dataclass(kw_only=True)
class StepExecutorPausedEvent(StepPausedEvent):
    """A step's agent paused its own run: its tool calls need confirmation or input."""

    event: ClassVar[str] = "StepExecutorPaused"
    executor_name: str | None = None


# Events that mark a run's lifecycle (what a front-end usually reacts to).
LIFECYCLE_EVENTS: tuple[type[WorkflowRunEvent], ...] = (
    WorkflowStartedEvent,
    StepPausedEvent,
    StepContinuedEvent,
    StepApprovalProgressEvent,
    StepTimedOutEvent,
    WorkflowCompletedEvent,
    WorkflowCancelledEvent,
    WorkflowErrorEvent,
)


def _event_classes() -> dict[str, type[WorkflowRunEvent]]:
    found: dict[str, type[WorkflowRunEvent]] = {}
    todo: list[type[WorkflowRunEvent]] = [WorkflowRunEvent]
    while todo:
        cls = todo.pop()
        found[cls.event] = cls
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


# Every event class by its type name (``event.event``) and class name, as agno registers them.
EVENT_TYPES: dict[str, type[WorkflowRunEvent]] = _event_classes()
