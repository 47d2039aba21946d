"""``Condition``: run ``steps`` when the evaluator says so, else ``else_steps``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from engine.errors import WorkflowConfigError
from engine.run.events import StepCompletedEvent, StepStartedEvent
from engine.run.requirement import RejectAction
from engine.workflow._tree import (
    Call,
    Component,
    Flow,
    Frame,
    Result,
    Walk,
    Walker,
    as_components,
    finish_group,
    walk_sequence,
)
from engine.workflow.types import (
    HumanReview,
    OnError,
    OnReject,
    OnTimeout,
    StepInput,
    StepOutput,
    StepType,
)


class Condition(Component):
    """``evaluator`` is a bool, or a function of the ``StepInput`` (sync or async)
    returning one. With ``requires_confirmation`` a person is asked before it: confirming
    evaluates as usual; rejecting runs ``else_steps`` (``on_reject`` defaults to
    ``OnReject.else_branch``; ``skip`` skips the whole condition, ``cancel`` cancels)."""

    step_type = StepType.CONDITION
    default_on_reject = OnReject.else_branch

    # Keyword-only options (agno's Condition signature), not positional arguments.
    def __init__(  # noqa: PLR0913
        self,
        name: str | None = None,
        *,
        evaluator: bool | Callable[..., Any],
        steps: Sequence[Any],
        else_steps: Sequence[Any] | None = None,
        description: str | None = None,
        requires_confirmation: bool = False,
        confirmation_message: str | None = None,
        on_reject: OnReject | str | None = None,
        on_error: OnError | str | None = None,
        pause_timeout: timedelta | float | None = None,
        hitl_timeout: float | None = None,
        on_timeout: OnTimeout | str | None = None,
        human_review: HumanReview | None = None,
    ) -> None:
        self.name = name or "condition"
        self.description = description
        if not isinstance(evaluator, bool) and not callable(evaluator):
            raise WorkflowConfigError(
                f"Condition {self.name!r}: evaluator must be a bool or a function, "
                f"got {evaluator!r}"
            )
        self.evaluator = evaluator
        self.steps: list[Component] = as_components(steps, owner=f"Condition {self.name!r}")
        self.else_steps: list[Component] = as_components(
            else_steps or [], owner=f"Condition {self.name!r} else_steps"
        )
        if not self.steps:
            raise WorkflowConfigError(f"Condition {self.name!r} has no steps")
        if human_review is not None:
            try:
                human_review.check_for("Condition", supports=frozenset())
            except ValueError as exc:
                raise WorkflowConfigError(str(exc)) from None
        self.on_error = OnError.parse(on_error or OnError.fail)
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
        if self.on_reject is OnReject.retry:
            raise WorkflowConfigError(f"Condition {self.name!r}: on_reject='retry' is for reviews")

    def children(self) -> list[Component]:
        """The components a pause's path indexes into: the steps, then the else steps."""
        # A pause's path indexes steps first, then else_steps.
        return [*self.steps, *self.else_steps]

    def _members(self, branch: str) -> list[tuple[int, Component]]:
        if branch == "if":
            return list(enumerate(self.steps))
        offset = len(self.steps)
        return [(offset + i, s) for i, s in enumerate(self.else_steps)]

    def walk(
        self, w: Walk, step_input: StepInput, path: tuple[int, ...], frame: Frame | None
    ) -> Walker:
        """Ask first if configured, evaluate, then walk the chosen branch (resuming inside it)."""
        branch: str | None = None
        if frame is not None and frame.wait is None:
            branch = frame.state["branch"]
        else:
            ended, _, req = yield from self.gate(w, path, frame)
            if ended is not None:
                return ended
            frame = None
            if (
                req is not None
                and req.is_rejected
                and req.reject_action() is RejectAction.else_branch
            ):
                branch = "else"
            yield w.event(
                StepStartedEvent, step_name=self.name, step_index=path[-1], step_path=list(path)
            )
            if branch is None:
                if isinstance(self.evaluator, bool):
                    verdict = self.evaluator
                else:
                    verdict = bool((yield Call(self.evaluator, (step_input,))))
                branch = "if" if verdict else "else"
        members = self._members(branch)
        if not members:
            output = StepOutput(
                step_name=self.name, step_type=self.step_type.value, skipped=True, steps=[]
            )
            return Result(Flow.done, output=output)
        inner = yield from walk_sequence(w, members, step_input, path, frame)
        if inner.frame is not None:
            inner.frame.state["branch"] = branch
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
