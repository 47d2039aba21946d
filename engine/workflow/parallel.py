"""``Parallel``: branches that each get the same input; their outputs are collected per
branch."""

from __future__ import annotations

from typing import Any

from engine.errors import WorkflowConfigError
from engine.workflow._tree import (
    Component,
    Flow,
    Frame,
    Result,
    Walk,
    Walker,
    as_components,
    group_output,
)
from engine.workflow.types import StepInput, StepOutput, StepType


class Parallel(Component):
    """Branches (components, functions or lists) that all get the Parallel's input.

    Branches that need a person pause; the others run. The run then pauses once with every
    waiting branch's requirements and goes on when all of them are answered; each branch
    resumes at its own position and may pause again. A branch rejected with
    ``on_reject="cancel"`` cancels the whole run when the pause is continued: before any
    other branch resumes, and the outputs of branches that already finished stay in the
    run's stored state but are not carried on.

    Branches run one after another in the order given (the engine's steps are run by its
    driver, which runs one at a time); what each branch sees does not depend on the order.
    """

    step_type = StepType.PARALLEL

    def __init__(
        self, *steps: Any, name: str | None = None, description: str | None = None
    ) -> None:
        if len(steps) == 1 and isinstance(steps[0], (list, tuple)):
            steps = tuple(steps[0])
        self.name = name or "parallel"
        self.description = description
        self.steps: list[Component] = as_components(list(steps), owner=f"Parallel {self.name!r}")
        if not self.steps:
            raise WorkflowConfigError(f"Parallel {self.name!r} has no branches")
        self._init_group({})

    def children(self) -> list[Component]:
        """The components a pause's path indexes into: the branches."""
        return self.steps

    def walk(
        self, w: Walk, step_input: StepInput, path: tuple[int, ...], frame: Frame | None
    ) -> Walker:
        """Walk every branch that has not finished; the pauses of all of them make one pause."""
        done: dict[int, StepOutput] = {}
        if frame is None:
            yield self.started_event(w, path)
        else:
            done = {int(k): StepOutput.from_dict(v) for k, v in frame.state.get("done", {}).items()}
        waiting: dict[int, Frame] = {}
        for index, branch in enumerate(self.steps):
            if index in done:
                continue
            sub = frame.subs.get(index) if frame is not None else None
            if frame is not None and sub is None:
                continue  # cannot happen for a frame this class stored; be safe
            branch_input = w.input_for(step_input, [], branch.name)
            result = yield from branch.walk(w, branch_input, (*path, index), sub)
            if result.flow is Flow.paused:
                assert result.frame is not None
                waiting[index] = result.frame
                continue
            if result.flow is Flow.cancelled:
                return result
            if result.output is not None:
                done[index] = result.output
                w.remember(result.output)
            if result.flow is Flow.failed:
                outputs = [done[i] for i in sorted(done)]
                return Result(
                    Flow.failed,
                    output=group_output(self, outputs, content=_combined(outputs)),
                    message=result.message,
                    step_name=result.step_name,
                )
        if waiting:
            state = {"done": {str(i): o.to_dict() for i, o in done.items()}}
            return Result(Flow.paused, frame=Frame(state=state, subs=waiting))
        outputs = [done[i] for i in sorted(done)]
        output = group_output(self, outputs, content=_combined(outputs))
        yield self.completed_event(w, path, output)
        stopped = any(o.stop for o in outputs)
        return Result(Flow.stopped if stopped else Flow.done, output=output)


def _combined(outputs: list[StepOutput]) -> str:
    """One text of every branch's result, for the step after the Parallel."""
    parts = []
    for output in outputs:
        mark = "skipped" if output.skipped else ("failed" if not output.success else "ok")
        body = "" if output.content is None else str(output.content)
        parts.append(f"### {output.step_name} ({mark})\n{body}".rstrip())
    return "\n\n".join(parts)
