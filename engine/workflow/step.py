"""``Step``: one unit of a workflow, run by an executor function or an agent."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.errors import WorkflowConfigError
from engine.run.requirement import ExecutorRequirement, RejectAction, StepRequirement
from engine.workflow._tree import (
    Call,
    Component,
    ContinueExecutor,
    Flow,
    Frame,
    Invoke,
    Result,
    Wait,
    Walk,
    Walker,
)
from engine.workflow.decorators import get_pause_config
from engine.workflow.types import (
    HumanReview,
    OnError,
    OnReject,
    OnTimeout,
    RequirementKind,
    StepInput,
    StepOutput,
    StepType,
    UserInputField,
)

log = logging.getLogger("engine.workflow")


@dataclass
class ExecutorPause:
    """What a paused agent handed back: its requirements and the id of its own run."""

    requirements: list[ExecutorRequirement]
    run_id: str | None


class Step(Component):
    """A step of a workflow.

    Give exactly one of ``executor`` (a function ``(StepInput) -> StepOutput | Any``,
    sync or async) or ``agent`` (any object with ``run(input=...)`` returning something
    with ``.content``; ``arun`` is used when run asynchronously).

    Pauses: ``requires_confirmation`` / ``requires_user_input`` before it runs;
    ``requires_output_review`` after (approve, reject with feedback, edit); ``on_error=
    "pause"`` when it raises; and when its agent pauses its own run. ``pause_timeout`` (or
    agno's ``hitl_timeout`` with ``on_timeout``) gives each pause a deadline.
    """

    step_type = StepType.STEP

    # Keyword-only options (agno's Step signature), not positional arguments.
    def __init__(  # noqa: PLR0913
        self,
        name: str | None = None,
        *,
        agent: Any = None,
        executor: Callable[..., Any] | None = None,
        description: str | None = None,
        step_id: str | None = None,
        requires_confirmation: bool | None = None,
        confirmation_message: str | None = None,
        requires_user_input: bool | None = None,
        user_input_message: str | None = None,
        user_input_schema: list[UserInputField] | list[dict[str, Any]] | None = None,
        on_reject: OnReject | str | None = None,
        pause_timeout: timedelta | float | None = None,
        hitl_timeout: float | None = None,
        on_timeout: OnTimeout | str | None = None,
        on_error: OnError | str | None = None,
        requires_output_review: bool | Callable[[StepOutput], bool] | None = None,
        output_review_message: str | None = None,
        hitl_max_retries: int | None = None,
        human_review: HumanReview | None = None,
        approvals: int = 1,
        reject_quorum: int = 1,
        allow_requester: bool = True,
        distinct_from: Sequence[str] = (),
    ) -> None:
        """Approval policy of its confirmation and output review: ``approvals`` distinct
        people approve (default 1), ``reject_quorum`` rejections reject (default 1, a
        veto), ``allow_requester=False`` keeps the run's requester out, ``distinct_from``
        keeps out whoever decided those earlier steps' pauses in the run."""
        if (agent is None) == (executor is None):
            raise WorkflowConfigError(f"Step {name!r}: give exactly one of agent= or executor=")
        if agent is not None and not callable(getattr(agent, "run", None)):
            raise WorkflowConfigError(f"Step {name!r}: agent must have a run(input=...) method")
        if executor is not None and not callable(executor):
            raise WorkflowConfigError(f"Step {name!r}: executor must be callable")
        # Explicit arguments win over @pause settings on the executor.
        config = get_pause_config(executor) if executor is not None else None
        self.name: str = (
            name
            or (config.name if config is not None else None)
            or getattr(executor, "__name__", None)
            or getattr(agent, "name", None)
            or "step"
        )
        self.step_id = step_id
        self.agent = agent
        self.executor = executor
        self.description = description
        if human_review is not None:
            try:
                human_review.check_for(
                    "Step", supports=frozenset({"requires_user_input", "requires_output_review"})
                )
            except ValueError as exc:
                raise WorkflowConfigError(str(exc)) from None

        def pick(explicit: Any, attr: str, default: Any) -> Any:
            if explicit is not None:
                return explicit
            if config is not None and getattr(config, attr) not in (None, (), False):
                return getattr(config, attr)
            if human_review is not None and getattr(human_review, attr, None) not in (None, False):
                return getattr(human_review, attr)
            return default

        self._init_pause(
            name=self.name,
            requires_confirmation=pick(requires_confirmation, "requires_confirmation", False),
            confirmation_message=pick(confirmation_message, "confirmation_message", None),
            on_reject=pick(on_reject, "on_reject", None),
            pause_timeout=pick(pause_timeout, "pause_timeout", None),
            hitl_timeout=hitl_timeout
            if hitl_timeout is not None
            else (human_review.timeout if human_review is not None else None),
            on_timeout=on_timeout
            if on_timeout is not None
            else (human_review.on_timeout if human_review and human_review.timeout else None),
            human_review=None,
        )
        schema = pick(user_input_schema, "user_input_schema", None)
        self.user_input_schema: list[UserInputField] | None = (
            [UserInputField.coerce(f) for f in schema] if schema else None
        )
        self.requires_user_input: bool = bool(
            pick(requires_user_input, "requires_user_input", False)
        )
        self.user_input_message: str | None = pick(user_input_message, "user_input_message", None)
        self.on_error = OnError.parse(pick(on_error, "on_error", OnError.fail))
        self.requires_output_review: bool | Callable[[StepOutput], bool] = pick(
            requires_output_review, "requires_output_review", False
        )
        self.output_review_message: str | None = pick(
            output_review_message, "output_review_message", None
        )
        retries = hitl_max_retries
        if retries is None:
            retries = human_review.max_retries if human_review is not None else 3
        if retries < 0:
            raise WorkflowConfigError(f"Step {self.name!r}: hitl_max_retries must be >= 0")
        self.hitl_max_retries = retries
        if self.on_reject is OnReject.else_branch:
            raise WorkflowConfigError(f"Step {self.name!r}: on_reject='else' is for a Condition")
        self._init_policy(
            approvals=approvals,
            reject_quorum=reject_quorum,
            allow_requester=allow_requester,
            distinct_from=distinct_from,
        )
        if (approvals > 1 or reject_quorum > 1) and self.requires_user_input:
            raise WorkflowConfigError(
                f"Step {self.name!r}: approvals/reject_quorum count people's approvals; a "
                "step that asks for input takes it from one person"
            )
        if self.user_input_schema:
            names = [f.name for f in self.user_input_schema]
            if len(names) != len(set(names)):
                raise WorkflowConfigError(f"Step {self.name!r}: duplicate user input field names")

    @property
    def pauses(self) -> bool:
        """Whether this step asks a person before it runs."""
        return self.requires_confirmation or self.requires_user_input

    def new_requirement(
        self,
        *,
        index: int | None = None,
        path: list[int] | tuple[int, ...],
        now: datetime,
        kind: RequirementKind = RequirementKind.confirmation,
        **fields: Any,
    ) -> StepRequirement:
        """A fresh requirement for one pause, with its own copies of the schema."""
        if kind is RequirementKind.confirmation:
            fields = {
                "requires_confirmation": self.requires_confirmation,
                "confirmation_message": self.confirmation_message,
                "requires_user_input": self.requires_user_input,
                "user_input_message": self.user_input_message,
                "user_input_schema": [f.copy() for f in self.user_input_schema or ()],
                **fields,
            }
        return super().new_requirement(path=tuple(path), now=now, kind=kind, **fields)

    # -- walking ----------------------------------------------------------------------
    # One walker generator per component, as the machine drives it: each way out of an attempt
    # (pause, retry, failure, output) returns where it happens, with the resume state in its locals.
    def walk(  # noqa: PLR0911, PLR0912
        self, w: Walk, step_input: StepInput, path: tuple[int, ...], frame: Frame | None
    ) -> Walker:
        """Ask first if configured, run, then pause for a review or on an error as configured."""
        attempt = 0
        user_input: dict[str, Any] | None = None
        feedback: str | None = None
        if frame is None:
            if self.pauses:
                return w.pause(
                    self.new_requirement(path=path, now=w.now()), Frame(wait=Wait.before)
                )
        elif frame.wait is Wait.before:
            req = w.take(path, self)
            if req.is_rejected and req.reject_action() is not RejectAction.approve:
                return (yield from self.rejected(w, req, path, req.reject_action()))
            user_input = req.user_input
        else:
            req = w.take(path, self)
            attempt = int(frame.state.get("attempt", 0))
            user_input = frame.state.get("user_input")
            if frame.wait is Wait.review:
                assert req.step_output is not None
                decided = yield from self._reviewed(w, req, path, attempt)
                if decided is not None:
                    return decided
                attempt += 1
                feedback = req.rejection_feedback
            elif frame.wait is Wait.error:
                if req.is_rejected:  # skip(), or a deadline
                    action = req.reject_action()
                    if action is RejectAction.cancel:
                        return (yield from self.rejected(w, req, path, action))
                    yield self.skipped_event(
                        w,
                        path,
                        reason=req.error_message,
                        by=req.decided_by,
                        timed_out=req.timed_out,
                    )
                    return Result(
                        Flow.done,
                        output=StepOutput(
                            step_name=self.name,
                            skipped=True,
                            success=False,
                            error=req.error_message,
                            step_type=self.step_type.value,
                        ),
                    )
                attempt += 1
            elif frame.wait is Wait.executor:
                step_input = self._input_with(step_input, user_input, None)
                yield self.started_event(w, path)
                try:
                    output: StepOutput = yield ContinueExecutor(self, step_input, req)
                except Exception as exc:
                    return (yield from self._failed(w, step_input, path, exc, attempt, user_input))
                return (
                    yield from self._after_run(w, step_input, path, output, attempt, user_input)
                )
        step_input = self._input_with(step_input, user_input, feedback)
        yield self.started_event(w, path)
        try:
            output = yield Invoke(self, step_input)
        except Exception as exc:
            return (yield from self._failed(w, step_input, path, exc, attempt, user_input))
        return (yield from self._after_run(w, step_input, path, output, attempt, user_input))

    @staticmethod
    def _input_with(
        step_input: StepInput, user_input: dict[str, Any] | None, feedback: str | None
    ) -> StepInput:
        if user_input is not None:
            step_input.additional_data["user_input"] = dict(user_input)
        if feedback:
            step_input.additional_data["rejection_feedback"] = feedback
        return step_input

    def _state(self, attempt: int, user_input: dict[str, Any] | None) -> dict[str, Any]:
        state: dict[str, Any] = {"attempt": attempt}
        if user_input is not None:
            state["user_input"] = dict(user_input)
        return state

    # Private, called only from walk() with walk's own state.
    def _failed(  # noqa: PLR0917
        self,
        w: Walk,
        step_input: StepInput,
        path: tuple[int, ...],
        exc: Exception,
        attempt: int,
        user_input: dict[str, Any] | None,
    ) -> Walker:
        message = f"step '{self.name}' failed: {type(exc).__name__}: {exc}"
        log.warning("run %s: %s", w.run.run_id, message)
        if self.on_error is OnError.pause:
            req = super().new_requirement(
                path=path,
                now=w.now(),
                kind=RequirementKind.error,
                error_message=message,
                error_type=type(exc).__name__,
                retry_count=attempt,
                on_reject=OnReject.skip,
            )
            return w.pause(req, Frame(wait=Wait.error, state=self._state(attempt, user_input)))
        failed = StepOutput(
            step_name=self.name, success=False, error=message, step_type=self.step_type.value
        )
        if self.on_error is OnError.skip:
            failed.skipped = True
            yield self.skipped_event(w, path, reason=message, by=None)
            return Result(Flow.done, output=failed)
        return Result(Flow.failed, output=failed, message=message, step_name=self.name)

    # Private, called only from walk() with walk's own state.
    def _after_run(  # noqa: PLR0917
        self,
        w: Walk,
        step_input: StepInput,
        path: tuple[int, ...],
        output: StepOutput,
        attempt: int,
        user_input: dict[str, Any] | None,
    ) -> Walker:
        if output.is_paused and isinstance(output.content, ExecutorPause):
            pause = output.content
            req = super().new_requirement(
                path=path,
                now=w.now(),
                kind=RequirementKind.executor,
                requires_executor_input=True,
                executor_requirements=pause.requirements,
                executor_name=getattr(self.agent, "name", None),
                executor_run_id=pause.run_id,
            )
            return w.pause(req, Frame(wait=Wait.executor, state=self._state(attempt, user_input)))
        review = self.requires_output_review
        if callable(review):
            try:
                review = bool((yield Call(review, (output,))))
            except Exception:  # as agno: a broken predicate means no review, said in the log
                log.warning(
                    "step %r: requires_output_review raised; no review", self.name, exc_info=True
                )
                review = False
        if review:
            req = super().new_requirement(
                path=path,
                now=w.now(),
                kind=RequirementKind.output_review,
                requires_output_review=True,
                output_review_message=self.output_review_message,
                step_output=output,
                is_post_execution=True,
                retry_count=attempt,
                max_retries=self.hitl_max_retries,
            )
            return w.pause(req, Frame(wait=Wait.review, state=self._state(attempt, user_input)))
        return (yield from self._completed(w, path, output))

    def _completed(self, w: Walk, path: tuple[int, ...], output: StepOutput) -> Walker:
        yield self.completed_event(w, path, output)
        return Result(Flow.stopped if output.stop else Flow.done, output=output)

    def _reviewed(
        self, w: Walk, req: StepRequirement, path: tuple[int, ...], attempt: int
    ) -> Generator[Any, Any, Result | None]:
        """Apply an output review; None means: run the step again (a retry)."""
        output = req.step_output
        assert output is not None
        action = req.reject_action() if req.is_rejected else RejectAction.approve
        if action is RejectAction.approve:
            if req.edited_output is not None:
                output.content = req.edited_output
            return (yield from self._completed(w, path, output))
        if action is RejectAction.retry and attempt < self.hitl_max_retries:
            return None
        if action is RejectAction.retry:
            # The limit is reached: the rejected output is not used; the step is skipped.
            action = RejectAction.skip
        return (yield from self.rejected(w, req, path, action))

    # -- execution (called by the drivers) ---------------------------------------------------
    def agent_message(self, step_input: StepInput) -> str:
        """The message an agent step sends: the previous output or the input, with the user input
        and a reviewer's feedback appended."""
        base = step_input.previous_step_content
        if base is None:
            base = step_input.input
        message = "" if base is None else str(base)
        user_input = step_input.additional_data.get("user_input")
        if user_input:
            lines = "\n".join(f"{k}: {v}" for k, v in user_input.items())
            message = f"{message}\n\nUser input:\n{lines}" if message else f"User input:\n{lines}"
        feedback = step_input.rejection_feedback
        if feedback:
            message = f"{message}\n\nA reviewer rejected the previous attempt: {feedback}"
        return message

    def execute(self, step_input: StepInput) -> StepOutput:
        """Run the executor or agent once, in this thread (a coroutine is run to its end)."""
        if self.executor is not None:
            result = self.executor(step_input)
            if inspect.isawaitable(result):
                result = _run_coroutine_blocking(result)
        else:
            result = self.agent.run(input=self.agent_message(step_input))
            if inspect.isawaitable(result):
                result = _run_coroutine_blocking(result)
        return self._as_output(result)

    async def aexecute(self, step_input: StepInput) -> StepOutput:
        """Run the executor or agent once, without blocking the event loop."""
        if self.executor is not None:
            if inspect.iscoroutinefunction(self.executor):
                result = await self.executor(step_input)
            else:
                result = await asyncio.to_thread(self.executor, step_input)
                if inspect.isawaitable(result):
                    result = await result
        else:
            message = self.agent_message(step_input)
            arun = getattr(self.agent, "arun", None)
            if callable(arun):
                result = await arun(input=message)
            else:
                result = await asyncio.to_thread(self.agent.run, input=message)
                if inspect.isawaitable(result):  # an agent whose run() is async
                    result = await result
        return self._as_output(result)

    def _continue_args(self, req: StepRequirement) -> dict[str, Any]:
        if self.agent is None or not callable(getattr(self.agent, "continue_run", None)):
            raise WorkflowConfigError(
                f"step '{self.name}': its agent paused but has no continue_run(...)"
            )
        return {
            "run_id": req.executor_run_id,
            "requirements": [r.to_dict() for r in req.executor_requirements or ()],
        }

    def continue_executor(self, step_input: StepInput, req: StepRequirement) -> StepOutput:
        """Hand the agent its answered requirements and let it finish."""
        result = self.agent.continue_run(**self._continue_args(req))
        if inspect.isawaitable(result):
            result = _run_coroutine_blocking(result)
        return self._as_output(result)

    async def acontinue_executor(self, step_input: StepInput, req: StepRequirement) -> StepOutput:
        """Hand the agent its answered requirements and let it finish, off the event loop."""
        args = self._continue_args(req)
        acontinue = getattr(self.agent, "acontinue_run", None)
        if callable(acontinue):
            result = await acontinue(**args)
        else:
            result = await asyncio.to_thread(self.agent.continue_run, **args)
            if inspect.isawaitable(result):
                result = await result
        return self._as_output(result)

    def _as_output(self, result: Any) -> StepOutput:
        if isinstance(result, StepOutput):
            if result.step_name is None:
                result.step_name = self.name
            return result
        if self.agent is not None and getattr(result, "is_paused", False) is True:
            pending = getattr(result, "active_requirements", None)
            if pending is None:
                pending = getattr(result, "requirements", None) or ()
            return StepOutput(
                step_name=self.name,
                is_paused=True,
                content=ExecutorPause(
                    requirements=[ExecutorRequirement.from_any(r) for r in pending],
                    run_id=getattr(result, "run_id", None),
                ),
            )
        if self.agent is not None:
            result = getattr(result, "content", result)
        return StepOutput(content=result, step_name=self.name)

    def __repr__(self) -> str:
        return f"Step(name={self.name!r}, pauses={self.pauses})"


def _run_coroutine_blocking(coro: Any) -> Any:
    """Run an async executor from the sync API, even when called inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


def call_blocking(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Call a user's function from the sync driver; an async one is run to its end."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = _run_coroutine_blocking(result)
    return result
