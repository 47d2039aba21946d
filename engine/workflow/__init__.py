"""Workflows: steps and groups of steps, pauses for people, and the runs that go through them."""

# isort: off
from engine.workflow.types import (
    HumanReview,
    OnError,
    OnReject,
    OnTimeout,
    PauseKind,
    RequirementKind,
    StepInput,
    StepOutput,
    StepType,
    UserInputField,
)
from engine.workflow.step import Step

# isort: on
from engine.workflow.condition import Condition
from engine.workflow.decorators import pause
from engine.workflow.loop import Loop
from engine.workflow.parallel import Parallel
from engine.workflow.router import Router
from engine.workflow.steps import Steps
from engine.workflow.workflow import Workflow

__all__ = [
    "Condition",
    "HumanReview",
    "Loop",
    "OnError",
    "OnReject",
    "OnTimeout",
    "Parallel",
    "PauseKind",
    "RequirementKind",
    "Router",
    "Step",
    "StepInput",
    "StepOutput",
    "StepType",
    "Steps",
    "UserInputField",
    "Workflow",
    "pause",
]
