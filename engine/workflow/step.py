"""``Step``: one unit of a workflow, run by an executor function or an agent."""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from engine.errors import WorkflowConfigError
from engine.run.requirement import StepRequirement
from engine.workflow.decorators import get_pause_config
from engine.workflow.types import (
    OnReject,
    StepInput,
    StepOutput,
    UserInputField,
    to_timedelta,
)


class Step:
    """A step of a workflow.

    Give exactly one of ``executor`` (a function ``(StepInput) -> StepOutput | Any``,
    sync or async) or ``agent`` (any object with ``run(input=...)`` returning something
    with ``.content``; ``arun`` is used when run asynchronously).

    A step that ``requires_confirmation`` or ``requires_user_input`` pauses *before* it
    runs. ``pause_timeout`` gives that pause a deadline after which ``on_reject`` applies.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        agent: Any = None,
        executor: Callable[..., Any] | None = None,
        description: str | None = None,
        requires_confirmation: bool | None = None,
        confirmation_message: str | None = None,
        requires_user_input: bool | None = None,
        user_input_message: str | None = None,
        user_input_schema: list[UserInputField] | None = None,
        on_reject: OnReject | str | None = None,
        pause_timeout: timedelta | float | None = None,
    ) -> None:
        if (agent is None) == (executor is None):
            raise WorkflowConfigError(f"Step {name!r}: give exactly one of agent= or executor=")
        if agent is not None and not callable(getattr(agent, "run", None)):
            raise WorkflowConfigError(f"Step {name!r}: agent must have a run(input=...) method")
        if executor is not None and not callable(executor):
            raise WorkflowConfigError(f"Step {name!r}: executor must be callable")
        self.name: str = (
            name or getattr(executor, "__name__", None) or getattr(agent, "name", None) or "step"
        )
        self.agent = agent
        self.executor = executor
        self.description = description

        # Explicit arguments win over @pause settings on the executor.
        config = get_pause_config(executor) if executor is not None else None

        def pick(explicit: Any, attr: str, default: Any) -> Any:
            if explicit is not None:
                return explicit
            if config is not None and getattr(config, attr) not in (None, (), False):
                return getattr(config, attr)
            return default

        self.requires_confirmation: bool = bool(
            pick(requires_confirmation, "requires_confirmation", False)
        )
        self.confirmation_message: str | None = pick(
            confirmation_message, "confirmation_message", None
        )
        schema = pick(user_input_schema, "user_input_schema", None)
        self.user_input_schema: list[UserInputField] | None = (
            [f.copy() for f in schema] if schema else None
        )
        self.requires_user_input: bool = bool(
            pick(requires_user_input, "requires_user_input", False)
        )
        self.user_input_message: str | None = pick(user_input_message, "user_input_message", None)
        self.on_reject: OnReject = OnReject.parse(pick(on_reject, "on_reject", OnReject.skip))
        self.pause_timeout: timedelta | None = to_timedelta(
            pick(pause_timeout, "pause_timeout", None), what=f"Step {self.name!r} pause_timeout"
        )
        if self.user_input_schema:
            names = [f.name for f in self.user_input_schema]
            if len(names) != len(set(names)):
                raise WorkflowConfigError(f"Step {self.name!r}: duplicate user input field names")

    @property
    def pauses(self) -> bool:
        return self.requires_confirmation or self.requires_user_input

    def new_requirement(self, *, index: int, path: list[int], now: datetime) -> StepRequirement:
        """A fresh requirement for one pause, with its own copies of the schema."""
        return StepRequirement(
            requirement_id=uuid.uuid4().hex,
            step_name=self.name,
            step_index=index,
            step_path=list(path),
            requires_confirmation=self.requires_confirmation,
            confirmation_message=self.confirmation_message,
            requires_user_input=self.requires_user_input,
            user_input_message=self.user_input_message,
            user_input_schema=[f.copy() for f in self.user_input_schema or ()],
            on_reject=self.on_reject,
            paused_at=now,
            expires_at=now + self.pause_timeout if self.pause_timeout else None,
        )

    # -- execution -----------------------------------------------------------
    def agent_message(self, step_input: StepInput) -> str:
        base = step_input.previous_step_content
        if base is None:
            base = step_input.input
        message = "" if base is None else str(base)
        user_input = step_input.additional_data.get("user_input")
        if user_input:
            lines = "\n".join(f"{k}: {v}" for k, v in user_input.items())
            message = f"{message}\n\nUser input:\n{lines}" if message else f"User input:\n{lines}"
        return message

    def execute(self, step_input: StepInput) -> StepOutput:
        if self.executor is not None:
            result = self.executor(step_input)
            if inspect.isawaitable(result):
                result = _run_coroutine_blocking(result)
        else:
            result = self.agent.run(input=self.agent_message(step_input))
            if inspect.isawaitable(result):
                result = _run_coroutine_blocking(result)
            result = getattr(result, "content", result)
        return self._as_output(result)

    async def aexecute(self, step_input: StepInput) -> StepOutput:
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
            result = getattr(result, "content", result)
        return self._as_output(result)

    def _as_output(self, result: Any) -> StepOutput:
        if isinstance(result, StepOutput):
            if result.step_name is None:
                result.step_name = self.name
            return result
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
