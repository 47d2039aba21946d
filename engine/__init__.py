"""Signoff's workflow engine: steps that pause for people, runs that persist and resume
exactly once in any process. Knows nothing of Slack.

The database classes are imported lazily so that ``import engine`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# isort: off
# engine.workflow first: the run models import its value types.
from engine.workflow import (
    Condition,
    HumanReview,
    Loop,
    OnError,
    OnReject,
    OnTimeout,
    Parallel,
    PauseKind,
    RequirementKind,
    Router,
    Step,
    StepInput,
    StepOutput,
    Steps,
    StepType,
    UserInputField,
    Workflow,
    pause,
)

# isort: on
from engine.clock import Clock, ManualClock, SystemClock
from engine.errors import (
    AlreadyDecidedError,
    DeciderNotAllowedError,
    DecisionTooLateError,
    DuplicateRunError,
    EngineError,
    RequirementsUnresolvedError,
    RunNotFoundError,
    RunNotPausedError,
    UnknownChoiceError,
    UserInputValidationError,
    WorkflowConfigError,
)
from engine.run.base import RunStatus
from engine.run.events import (
    EVENT_TYPES,
    LIFECYCLE_EVENTS,
    RouterPausedEvent,
    StepApprovalProgressEvent,
    StepCompletedEvent,
    StepContinuedEvent,
    StepErrorPausedEvent,
    StepExecutorPausedEvent,
    StepOutputReviewPausedEvent,
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
from engine.run.requirement import (
    TIMEOUT_ACTOR,
    Decision,
    ExecutorRequirement,
    Outcome,
    StepRequirement,
)
from engine.run.workflow import PausedRun, WorkflowRunOutput, WorkflowSession

if TYPE_CHECKING:
    from engine.db.base import BaseDb
    from engine.db.postgres import PostgresDb
    from engine.db.sqlite import SqliteDb

_LAZY = {
    "BaseDb": "engine.db.base",
    "SqliteDb": "engine.db.sqlite",
    "PostgresDb": "engine.db.postgres",
    "db_from_url": "engine.db",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


__all__ = [
    "EVENT_TYPES",
    "LIFECYCLE_EVENTS",
    "TIMEOUT_ACTOR",
    "AlreadyDecidedError",
    "BaseDb",
    "Clock",
    "Condition",
    "DeciderNotAllowedError",
    "Decision",
    "DecisionTooLateError",
    "DuplicateRunError",
    "EngineError",
    "ExecutorRequirement",
    "HumanReview",
    "Loop",
    "ManualClock",
    "OnError",
    "OnReject",
    "OnTimeout",
    "Outcome",
    "Parallel",
    "PauseKind",
    "PausedRun",
    "PostgresDb",
    "RequirementKind",
    "RequirementsUnresolvedError",
    "Router",
    "RouterPausedEvent",
    "RunNotFoundError",
    "RunNotPausedError",
    "RunStatus",
    "SqliteDb",
    "Step",
    "StepApprovalProgressEvent",
    "StepCompletedEvent",
    "StepContinuedEvent",
    "StepErrorPausedEvent",
    "StepExecutorPausedEvent",
    "StepInput",
    "StepOutput",
    "StepOutputReviewPausedEvent",
    "StepPausedEvent",
    "StepRequirement",
    "StepSkippedEvent",
    "StepStartedEvent",
    "StepTimedOutEvent",
    "StepType",
    "Steps",
    "SystemClock",
    "UnknownChoiceError",
    "UserInputField",
    "UserInputValidationError",
    "Workflow",
    "WorkflowCancelledEvent",
    "WorkflowCompletedEvent",
    "WorkflowConfigError",
    "WorkflowErrorEvent",
    "WorkflowRunEvent",
    "WorkflowRunOutput",
    "WorkflowSession",
    "WorkflowStartedEvent",
    "db_from_url",
    "pause",
]
