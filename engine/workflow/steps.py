"""``Steps``: a named sequence of components, run in order as one member of a workflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.errors import WorkflowConfigError
from engine.workflow._tree import Component, Frame, PauseOptions, Walk, Walker, as_components
from engine.workflow.types import StepInput, StepType

if TYPE_CHECKING:
    from typing_extensions import Unpack


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
        **pause: Unpack[PauseOptions],
    ) -> None:
        """``pause``: the pause before the sequence (see ``PauseOptions``)."""
        self.name = name or "steps"
        self.description = description
        self.steps: list[Component] = as_components(steps, owner=f"Steps {self.name!r}")
        if not self.steps:
            raise WorkflowConfigError(f"Steps {self.name!r} has no steps")
        self._init_group(pause)

    def children(self) -> list[Component]:
        """The components a pause's path indexes into: the sequence's steps."""
        return self.steps

    def walk(
        self, w: Walk, step_input: StepInput, path: tuple[int, ...], frame: Frame | None
    ) -> Walker:
        """Ask first if configured, then walk the steps in order."""
        ended, frame, _ = yield from self.begin(w, path, frame)
        if ended is not None:
            return ended
        members = list(enumerate(self.steps))
        return (yield from self.walk_members(w, members, step_input, path, frame))
