"""Workflows: steps, pauses for people, and the runs that go through them."""

from engine.workflow.decorators import pause
from engine.workflow.step import Step
from engine.workflow.types import OnReject, StepInput, StepOutput, UserInputField
from engine.workflow.workflow import Workflow

__all__ = ["OnReject", "Step", "StepInput", "StepOutput", "UserInputField", "Workflow", "pause"]
