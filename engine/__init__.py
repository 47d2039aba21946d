"""Signoff's workflow engine: steps that pause for people, runs that persist and resume
exactly once in any process. Knows nothing of Slack.

The database classes are imported lazily so that ``import engine`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# isort: off
# engine.workflow first: the run models import its value types.
from engine.workflow import (
    OnReject,
    Step,
    StepInput,
    StepOutput,
    UserInputField,
    Workflow,
    pause,
)

# isort: on
from engine.clock import Clock, ManualClock, SystemClock
from engine.errors import (
    DuplicateRunError,
    EngineError,
    RequirementsUnresolvedError,
    RunNotFoundError,
    RunNotPausedError,
    UserInputValidationError,
    WorkflowConfigError,
)
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
from engine.run.requirement import TIMEOUT_ACTOR, Decision, Outcome, StepRequirement
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
    "LIFECYCLE_EVENTS",
    "TIMEOUT_ACTOR",
    "BaseDb",
    "Clock",
    "Decision",
    "DuplicateRunError",
    "EngineError",
    "ManualClock",
    "OnReject",
    "Outcome",
    "PausedRun",
    "PostgresDb",
    "RequirementsUnresolvedError",
    "RunNotFoundError",
    "RunNotPausedError",
    "RunStatus",
    "SqliteDb",
    "Step",
    "StepCompletedEvent",
    "StepContinuedEvent",
    "StepInput",
    "StepOutput",
    "StepPausedEvent",
    "StepRequirement",
    "StepSkippedEvent",
    "StepStartedEvent",
    "StepTimedOutEvent",
    "SystemClock",
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
