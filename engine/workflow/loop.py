"""``Loop``: run its steps again and again, up to ``max_iterations`` or until
``end_condition`` says it is done."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from engine.errors import WorkflowConfigError
from engine.run.requirement import RejectAction
from engine.workflow._cel import compile_end_condition
from engine.workflow._tree import (
    Call,
    Component,
    Flow,
    Frame,
    Instruction,
    PauseOptions,
    Result,
    Wait,
    Walk,
    Walker,
    as_components,
    group_output,
    last_content,
    walk_sequence,
)
from engine.workflow.types import (
    RequirementKind,
    StepInput,
    StepOutput,
    StepType,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


class Loop(Component):
    """``end_condition`` is a function of the iteration's outputs (sync or async) or an
    expression string (agno's CEL subset: ``current_iteration >= 2 && all_success``,
    ``last_step_content.contains("DONE")``). With ``forward_iteration_output`` each iteration
    gets the previous one's last content as its previous content.

    Pauses: ``requires_confirmation`` before the first iteration (reject skips the loop);
    ``requires_iteration_review`` after each iteration: ``confirm()`` goes on, ``edit(...)``
    replaces the iteration's last output and goes on, ``reject()`` ends the loop there (or
    cancels the run with ``on_reject="cancel"``, or with ``on_reject="retry"`` runs the
    iteration again with the feedback). A step pausing inside pauses every iteration.
    """

    step_type = StepType.LOOP

    # Keyword-only options (agno's Loop signature), not positional arguments.
    def __init__(
        self,
        name: str | None = None,
        *,
        steps: Sequence[Any],
        max_iterations: int = 3,
        end_condition: Callable[..., Any] | str | None = None,
        forward_iteration_output: bool = False,
        description: str | None = None,
        requires_iteration_review: bool = False,
        iteration_review_message: str | None = None,
        hitl_max_retries: int = 3,
        **pause: Unpack[PauseOptions],
    ) -> None:
        """``pause``: the pause before the first iteration (see ``PauseOptions``)."""
        self.name = name or "loop"
        self.description = description
        self.steps: list[Component] = as_components(steps, owner=f"Loop {self.name!r}")
        if not self.steps:
            raise WorkflowConfigError(f"Loop {self.name!r} has no steps")
        if max_iterations < 1:
            raise WorkflowConfigError(f"Loop {self.name!r}: max_iterations must be >= 1")
        self.max_iterations = max_iterations
        if isinstance(end_condition, str):
            try:
                self._end: Callable[..., Any] | None = compile_end_condition(end_condition)
            except ValueError as exc:
                raise WorkflowConfigError(f"Loop {self.name!r}: {exc}") from None
        elif end_condition is None or callable(end_condition):
            self._end = end_condition
        else:
            raise WorkflowConfigError(
                f"Loop {self.name!r}: end_condition must be a function or a string"
            )
        self.end_condition = end_condition
        self.forward_iteration_output = forward_iteration_output
        human_review = self._init_group(pause, supports=frozenset({"requires_iteration_review"}))
        if human_review is not None:
            requires_iteration_review = (
                requires_iteration_review or human_review.requires_iteration_review
            )
            iteration_review_message = (
                iteration_review_message or human_review.iteration_review_message
            )
        self.requires_iteration_review = requires_iteration_review
        self.iteration_review_message = iteration_review_message
        self.hitl_max_retries = hitl_max_retries

    def children(self) -> list[Component]:
        """The components a pause's path indexes into: one iteration's steps."""
        return self.steps

    # One walker generator per component, as the machine drives it: each way out of an iteration
    # (pause, rejection, end condition, limit) returns where it happens, with the resume state in
    # its locals.
    def walk(  # noqa: PLR0911, PLR0912
        self, w: Walk, step_input: StepInput, path: tuple[int, ...], frame: Frame | None
    ) -> Walker:
        """Run iterations until the end condition or the limit, resuming inside a paused one."""
        iteration = 0
        iterations: list[list[StepOutput]] = []
        resume: Frame | None = None
        feedback: str | None = None
        if frame is not None and frame.wait in (None, Wait.iteration):
            iteration = int(frame.state.get("iteration", 0))
            iterations = [
                [StepOutput.from_dict(o) for o in outs]
                for outs in frame.state.get("iterations", ())
            ]
            if frame.wait is None:
                resume = frame
            else:
                req = w.take(path, self)
                action = req.reject_action() if req.is_rejected else RejectAction.approve
                if action is RejectAction.cancel:
                    return (yield from self.rejected(w, req, path, action))
                if action is RejectAction.approve:
                    if req.edited_output is not None and iterations and iterations[-1]:
                        iterations[-1][-1].content = req.edited_output
                    done = yield from self._is_done(iteration, iterations)
                    if done:
                        return (yield from self._finished(w, path, iterations, Flow.done))
                elif (
                    action is RejectAction.retry
                    and int(frame.state.get("retries", 0)) < self.hitl_max_retries
                ):
                    iterations.pop()
                    iteration -= 1
                    feedback = req.rejection_feedback
                else:  # skip: the loop ends here, its outputs so far kept
                    return (yield from self._finished(w, path, iterations, Flow.done))
        else:
            ended, _, _ = yield from self.begin(w, path, frame)
            if ended is not None:
                return ended
        retries = int(frame.state.get("retries", 0)) + 1 if feedback and frame else 0
        members = list(enumerate(self.steps))
        while iteration < self.max_iterations:
            iteration_input = step_input
            if self.forward_iteration_output and iterations:
                iteration_input = w.input_for(step_input, iterations[-1], self.name)
                iteration_input.additional_data = dict(step_input.additional_data)
            if feedback:
                iteration_input.additional_data["rejection_feedback"] = feedback
                feedback = None
            inner = yield from walk_sequence(w, members, iteration_input, path, resume)
            resume = None
            if inner.frame is not None:
                inner.frame.state = self._state(iteration, iterations, retries)
                return inner
            iterations.append(inner.outputs)
            iteration += 1
            if not inner.goes_on:
                return (yield from self._finished(w, path, iterations, inner.flow, inner))
            if self.requires_iteration_review:
                message = self.iteration_review_message or (
                    f"Loop '{self.name}' finished iteration "
                    f"{iteration}/{self.max_iterations}. Go on?"
                )
                req = self.new_requirement(
                    path=path,
                    now=w.now(),
                    kind=RequirementKind.iteration_review,
                    requires_output_review=True,
                    output_review_message=message,
                    step_output=group_output(self, inner.outputs),
                    is_post_execution=True,
                    iteration=iteration,
                    retry_count=retries,
                    max_retries=self.hitl_max_retries,
                )
                return w.pause(
                    req,
                    Frame(wait=Wait.iteration, state=self._state(iteration, iterations, retries)),
                )
            retries = 0
            if (yield from self._is_done(iteration, iterations)):
                break
        return (yield from self._finished(w, path, iterations, Flow.done))

    @staticmethod
    def _state(iteration: int, iterations: list[list[StepOutput]], retries: int) -> dict[str, Any]:
        return {
            "iteration": iteration,
            "iterations": [[o.to_dict() for o in outs] for outs in iterations],
            "retries": retries,
        }

    def _is_done(
        self, iteration: int, iterations: list[list[StepOutput]]
    ) -> Generator[Instruction, Any, bool]:
        if iteration >= self.max_iterations:
            return True
        if self._end is None:
            return False
        outputs = iterations[-1] if iterations else []
        if isinstance(self.end_condition, str):
            context = {
                "current_iteration": iteration,
                "max_iterations": self.max_iterations,
                "all_success": all(o.success for o in outputs),
                "last_step_content": str(last_content(outputs) or ""),
                "step_outputs": {o.step_name or "": str(o.content) for o in outputs},
            }
            return bool((yield Call(self._end, (context,))))
        return bool((yield Call(self._end, (outputs,))))

    def _finished(
        self,
        w: Walk,
        path: tuple[int, ...],
        iterations: list[list[StepOutput]],
        flow: Flow,
        inner: Result | None = None,
    ) -> Walker:
        if flow is Flow.cancelled and inner is not None:
            return inner
        everything = [o for outs in iterations for o in outs]
        output = group_output(self, everything)
        output.content = last_content(iterations[-1]) if iterations else None
        yield self.completed_event(w, path, output)
        return Result(
            flow,
            output=output,
            message=inner.message if inner else None,
            step_name=inner.step_name if inner else None,
        )
