"""``Steps``: a named sequence of components, run in order as one member of a workflow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from engine.errors import WorkflowConfigError
from engine.run.events import StepCompletedEvent, StepStartedEvent
from engine.workflow._tree import (
    Component,
    Frame,
    Walk,
    Walker,
    as_components,
    finish_group,
    walk_sequence,
)
from engine.workflow.types import HumanReview, OnReject, OnTimeout, StepInput, StepType


class Steps(Component):
    """A named sequence. ``requires_confirmation`` asks before any of it runs; a rejection
    skips (or with ``on_reject="cancel"`` cancels) the whole sequence."""

    step_type = StepType.STEPS

    def __init__(
        self,
        name: str | None = None,
        *,
        steps: Sequence[Any],
        description: str | None = None,
        requires_confirmation: bool = False,
        confirmation_message: str | None = None,
        on_reject: OnReject | str | None = None,
        pause_timeout: timedelta | float | None = None,
        hitl_timeout: float | None = None,
        on_timeout: OnTimeout | str | None = None,
        human_review: HumanReview | None = None,
    ) -> None:
        self.name = name or "steps"
        self.description = description
        self.steps: list[Component] = as_components(steps, owner=f"Steps {self.name!r}")
        if not self.steps:
            raise WorkflowConfigError(f"Steps {self.name!r} has no steps")
        if human_review is not None:
            try:
                human_review.check_for("Steps", supports=frozenset())
            except ValueError as exc:
                raise WorkflowConfigError(str(exc)) from None
        self._init_pause(
            name=self.name,
            requires_confirmation=requires_confirmation,
            confirmation_message=confirmation_message,
            on_reject=on_reject,
            pause_timeout=pause_timeout,
            hitl_timeout=hitl_timeout,
            on_timeout=on_timeout,
            human_review=human_review,
        )

    def children(self) -> list[Component]:
        """The components a pause's path indexes into: the sequence's steps."""
        return self.steps

    def walk(
        self, w: Walk, step_input: StepInput, path: tuple[int, ...], frame: Frame | None
    ) -> Walker:
        """Ask first if configured, then walk the steps in order."""
        ended, frame, _ = yield from self.gate(w, path, frame)
        if ended is not None:
            return ended
        if frame is None:
            yield w.event(
                StepStartedEvent, step_name=self.name, step_index=path[-1], step_path=list(path)
            )
        inner = yield from walk_sequence(w, list(enumerate(self.steps)), step_input, path, frame)
        if inner.frame is not None:
            return inner
        result = finish_group(self, inner)
        if result.output is not None:
            yield w.event(
                StepCompletedEvent,
                step_name=self.name,
                step_index=path[-1],
                step_path=list(path),
                content=result.output.content,
                step_output=result.output,
            )
        return result
