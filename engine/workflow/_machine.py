"""The run logic, free of I/O: a generator that walks the workflow's tree of components and
yields instructions (run a step, call a function, save the run, claim the pause, emit an
event) for a driver to carry out (``engine.workflow._drivers``)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.errors import WorkflowConfigError
from engine.run.base import RunStatus
from engine.run.events import (
    RouterPausedEvent,
    StepApprovalProgressEvent,
    StepContinuedEvent,
    StepErrorPausedEvent,
    StepExecutorPausedEvent,
    StepOutputReviewPausedEvent,
    StepPausedEvent,
    StepTimedOutEvent,
    WorkflowCancelledEvent,
    WorkflowCompletedEvent,
    WorkflowErrorEvent,
    WorkflowStartedEvent,
)
from engine.run.requirement import Decision, RejectAction, StepRequirement, tally
from engine.workflow._tree import (
    Claim,
    Component,
    Flow,
    Frame,
    Instruction,
    Reload,
    Result,
    Save,
    Wait,
    Walk,
    last_content,
    walk_sequence,
)
from engine.workflow.types import RequirementKind, StepInput

if TYPE_CHECKING:
    from engine.run.workflow import WorkflowRunOutput
    from engine.workflow.workflow import Workflow

Machine = Generator[Instruction, Any, None]


def stored_frame(run: WorkflowRunOutput) -> Frame:
    """Where a paused (or just claimed) run stands. A run stored by the previous release
    has only its top-level pause index: it waits before that step."""
    if run.cursor is not None:
        return Frame.from_dict(run.cursor)
    path = run.pause_path or (run.step_requirements[0].step_path if run.step_requirements else None)
    if not path:
        raise WorkflowConfigError(f"run {run.run_id} has no pause position")
    frame = Frame(wait=Wait.before)
    for index in reversed(path[1:]):
        frame = Frame(index=index, subs={index: frame})
    return Frame(index=path[0], subs={path[0]: frame})


def check_fits(workflow: Workflow, run: WorkflowRunOutput) -> None:
    """Refuse to apply a decision to a run this definition no longer fits: skipping or
    running on would carry on with the wrong steps."""
    for req in run.step_requirements:
        component = workflow.locate(req.step_path)
        if component is None:
            raise WorkflowConfigError(
                f"run {run.run_id} has an unknown pause position {list(req.step_path)}"
            )
        if component.name != req.step_name:
            raise WorkflowConfigError(
                f"run {run.run_id} paused at step '{req.step_name}', but this workflow has "
                f"'{component.name}' there: was the workflow changed?"
            )


_PAUSED_EVENTS: dict[RequirementKind, type[StepPausedEvent]] = {
    RequirementKind.route_selection: RouterPausedEvent,
    RequirementKind.output_review: StepOutputReviewPausedEvent,
    RequirementKind.iteration_review: StepOutputReviewPausedEvent,
    RequirementKind.error: StepErrorPausedEvent,
    RequirementKind.executor: StepExecutorPausedEvent,
}


class RunMachine:
    """One workflow's run logic. Keeps no per-run state: each method returns a fresh
    generator for one drive."""

    def __init__(self, workflow: Workflow) -> None:
        self.wf = workflow

    def event(self, cls: type[Any], run: WorkflowRunOutput, **fields: Any) -> Any:
        return cls(
            run_id=run.run_id,
            session_id=run.session_id,
            workflow_name=run.workflow_name,
            created_at=self.wf.clock.now(),
            run_output=run,
            **fields,
        )

    def step_event(
        self, cls: type[Any], run: WorkflowRunOutput, req: StepRequirement, **fields: Any
    ) -> Any:
        """An event about the pause of ``req``'s step."""
        return self.event(
            cls,
            run,
            step_name=req.step_name,
            step_index=req.step_index,
            step_path=list(req.step_path),
            requirement=req,
            **fields,
        )

    def _walk_state(
        self, run: WorkflowRunOutput, decided: Sequence[StepRequirement], frame: Frame | None
    ) -> Walk:
        history = list(run.step_results)
        if frame is not None:
            history.extend(frame.all_outputs())
        return Walk(
            run=run,
            now=self.wf.clock.now,
            event=lambda cls, **fields: self.event(cls, run, **fields),
            decided=decided,
            history=history,
        )

    # -- entry points -----------------------------------------------------------------
    def start(self, run: WorkflowRunOutput) -> Machine:
        yield self.event(WorkflowStartedEvent, run, input=run.input, user_id=run.user_id)
        yield from self._walk(run, self._walk_state(run, (), None), None)

    def resume(
        self,
        run: WorkflowRunOutput,
        decisions: list[Decision],
        answers: list[StepRequirement] | None = None,
    ) -> Machine:
        """Claim the answered pause and run on. With ``answers`` (a pause whose
        requirements count votes) the answers are tallied first: a vote that leaves the
        pause open is recorded and the run stays paused; a concurrent vote that landed
        first makes this one tally again on the fresh run, so every vote is counted and
        exactly one resolves the pause."""
        if answers is not None:
            while True:
                now = self.wf.clock.now()
                decisions, resolved = tally(run.run_id, run.step_requirements, answers, now=now)
                expected_version = run.version
                run.updated_at = now
                if resolved:
                    run.status = RunStatus.running
                claimed = yield Claim(
                    run, expected_version, decisions, contended=True, keeps_paused=not resolved
                )
                if claimed:
                    break
                # Another vote landed first: tally again on the run as it is now (kept in
                # this same object, which the caller holds).
                fresh = yield Reload(run.run_id, [r.requirement_id for r in run.step_requirements])
                run.__dict__.update(fresh.__dict__)
            if not resolved:
                for req in run.step_requirements:
                    yield self.step_event(
                        StepApprovalProgressEvent,
                        run,
                        req,
                        approved_by=list(req.approved_by),
                        rejected_by=list(req.rejected_by),
                        approvals_needed=req.approvals_needed,
                        rejections_needed=req.rejections_needed,
                    )
                return
        else:
            expected_version = run.version
            run.status = RunStatus.running
            run.updated_at = self.wf.clock.now()
            yield Claim(run, expected_version, decisions)
        for req in run.step_requirements:
            if req.timed_out:
                yield self.step_event(
                    StepTimedOutEvent,
                    run,
                    req,
                    on_reject=req.on_reject,
                    expires_at=req.expires_at,
                )
            yield self.step_event(
                StepContinuedEvent,
                run,
                req,
                outcome=req.outcome.value if req.outcome else "",
                decided_by=req.decided_by,
            )
        yield from self._proceed(run)

    def recover(
        self, run: WorkflowRunOutput, *, owner: str | None, expired_at: datetime, policy: str
    ) -> Machine:
        """A run whose process died after claiming its pause: resume it from that pause
        (its steps since then run again: at least once) or fail it with a clear message."""
        req = run.step_requirements[0] if run.step_requirements else None
        if policy == "resume" and req is not None:
            yield from self._proceed(run)
            return
        where = f" after step '{req.step_name}' was decided" if req else ""
        message = (
            f"interrupted: the process running this run ({owner or 'unknown'}) stopped"
            f"{where}; its lease expired at {expired_at.isoformat()}. Its remaining steps "
            "were not run again (on_interrupted='fail'); start a new run if they are needed."
        )
        run.status = RunStatus.error
        run.error = message
        run.content = message
        yield from self._finish(
            run, WorkflowErrorEvent, error=message, step_name=req.step_name if req else None
        )

    # -- the walk -------------------------------------------------------------------------
    def _proceed(self, run: WorkflowRunOutput) -> Machine:
        """Carry out a decided pause: its answers go to the components that asked."""
        decided = list(run.step_requirements)
        frame = stored_frame(run)
        run.requirement_history.extend(decided)
        run.step_requirements = []
        run.pause_path = None
        run.cursor = None
        cancel = next(
            (r for r in decided if r.is_rejected and r.reject_action() is RejectAction.cancel),
            None,
        )
        if cancel is not None:
            # A cancel ends the run before anything else of this pause runs (in a Parallel:
            # before any other branch resumes).
            component = self.wf.locate(cancel.step_path)
            assert component is not None
            result = yield from _rejection(self._walk_state(run, (), None), component, cancel)
            yield from self._end(run, result)
            return
        yield from self._walk(run, self._walk_state(run, decided, frame), frame)

    def _walk(self, run: WorkflowRunOutput, w: Walk, frame: Frame | None) -> Machine:
        step_input = StepInput(
            input=run.input,
            additional_data=dict(run.additional_data),
            workflow_name=run.workflow_name,
            run_id=run.run_id,
            session_id=run.session_id,
        )
        members = list(enumerate(self.wf.steps))
        result = yield from walk_sequence(
            w, members, step_input, (), frame, outputs=run.step_results
        )
        if result.flow is Flow.paused:
            assert result.frame is not None
            yield from self._pause(run, w.pending, result.frame)
            return
        yield from self._end(run, result)

    def _pause(self, run: WorkflowRunOutput, reqs: list[StepRequirement], frame: Frame) -> Machine:
        now = self.wf.clock.now()
        for req in reqs:
            component = self.wf.locate(req.step_path)
            if component is not None:
                req.excluded_deciders = component.excluded_deciders(run)
        run.status = RunStatus.paused
        run.step_requirements = list(reqs)
        run.pause_path = list(reqs[0].step_path)
        run.cursor = frame.to_dict()
        run.updated_at = now
        yield Save(run)
        for req in reqs:
            cls = _PAUSED_EVENTS.get(req.kind, StepPausedEvent)
            extra: dict[str, Any] = {}
            if cls is RouterPausedEvent:
                extra = {
                    "available_choices": list(req.available_choices or ()),
                    "allow_multiple_selections": req.allow_multiple_selections,
                }
            elif cls is StepOutputReviewPausedEvent:
                extra = {
                    "output_review_message": req.output_review_message,
                    "step_output": req.step_output,
                }
            elif cls is StepErrorPausedEvent:
                extra = {
                    "error_message": req.error_message,
                    "error_type": req.error_type,
                    "retry_count": req.retry_count,
                }
            elif cls is StepExecutorPausedEvent:
                extra = {"executor_name": req.executor_name}
            yield self.step_event(
                cls,
                run,
                req,
                requires_confirmation=req.requires_confirmation,
                confirmation_message=req.confirmation_message,
                requires_user_input=req.requires_user_input,
                user_input_message=req.user_input_message,
                user_input_schema=req.user_input_schema,
                on_reject=req.on_reject,
                expires_at=req.expires_at,
                **extra,
            )

    def _end(self, run: WorkflowRunOutput, result: Result) -> Machine:
        if result.flow is Flow.cancelled:
            run.status = RunStatus.cancelled
            run.content = result.message
            yield from self._finish(
                run,
                WorkflowCancelledEvent,
                reason=result.message,
                step_name=result.step_name,
                cancelled_by=result.decided_by,
            )
        elif result.flow is Flow.failed:
            message = result.message or "a step failed"
            run.status = RunStatus.error
            run.error = message
            run.content = message
            yield from self._finish(
                run, WorkflowErrorEvent, error=message, step_name=result.step_name
            )
        else:
            run.status = RunStatus.completed
            run.content = last_content(run.step_results)
            yield from self._finish(
                run,
                WorkflowCompletedEvent,
                content=run.content,
                step_results=list(run.step_results),
            )

    def _finish(self, run: WorkflowRunOutput, event_cls: type[Any], **fields: Any) -> Machine:
        run.step_requirements = []
        run.pause_path = None
        run.cursor = None
        run.updated_at = self.wf.clock.now()
        yield Save(run)
        yield self.event(event_cls, run, **fields)


def _rejection(
    w: Walk, component: Component, req: StepRequirement
) -> Generator[Instruction, Any, Result]:
    return (yield from component.rejected(w, req, tuple(req.step_path), RejectAction.cancel))
