"""Workflows and fake agents shared by the engine tests and by the fresh processes the tests
start (``python engine_flows.py resume|race|crash|start ...``), so a child defines the same workflow
as its parent without loading anything from it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from engine import (
    Loop,
    Router,
    RunNotPausedError,
    Step,
    StepInput,
    StepOutput,
    StepRequirement,
    Steps,
    Workflow,
    db_from_url,
)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` in a thread of its own: another test of the session may leave
    an event loop running in this thread (Playwright's sync API does), and asyncio.run
    refuses to start inside one."""
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
    return box["result"]


@dataclass
class AgentReply:
    content: Any


@dataclass
class FakeAgent:
    """The smallest real agent: ``run(input=...)`` returns an object with ``.content``."""

    name: str
    reply: Callable[[str], Any] | None = None
    calls: list[str] = field(default_factory=list)

    def run(self, input: str, **kwargs: Any) -> AgentReply:
        self.calls.append(input)
        return AgentReply(self.reply(input) if self.reply else f"{self.name}({input})")


@dataclass
class AsyncFakeAgent(FakeAgent):
    """An agent with ``arun``; ``run`` is there too because a Step requires it."""

    async_calls: list[str] = field(default_factory=list)

    async def arun(self, input: str, **kwargs: Any) -> AgentReply:
        self.async_calls.append(input)
        return AgentReply(f"async-{self.name}({input})")


class SideEffects:
    """Counts step executions in a file shared by threads and processes (one line each);
    O_APPEND makes each small write atomic."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def record(self, name: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{name}\n".encode())
        finally:
            os.close(fd)

    def lines(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []

    def count(self, name: str) -> int:
        return self.lines().count(name)


class Recorder:
    """Counts step executions in memory, for tests that stay in one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[str] = []

    def record(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)

    def count(self, name: str) -> int:
        with self._lock:
            return self.calls.count(name)


def echo(label: str, rec: Recorder | None = None) -> Step:
    """A step that records that it ran and returns ``label<previous content>``."""

    def run(step_input: StepInput) -> StepOutput:
        if rec is not None:
            rec.record(label)
        return StepOutput(content=f"{label}<{step_input.previous_step_content}>")

    return Step(name=label, executor=run)


def gate(label: str, rec: Recorder | None = None, **kwargs: Any) -> Step:
    """``echo`` that asks for confirmation first; ``kwargs`` go to the Step."""
    return Step(
        name=label, executor=echo(label, rec).executor, requires_confirmation=True, **kwargs
    )


def approval_workflow(
    db_url: str,
    effects: SideEffects | Recorder,
    *,
    name: str = "approval_flow",
    on_reject: str = "skip",
    pause_timeout: float | None = None,
    crash_in_deploy: bool = False,
    approvals: int = 1,
) -> Workflow:
    """prepare -> deploy (needs confirmation) -> notify; every execution is recorded.
    ``crash_in_deploy`` kills the process inside deploy, as a power cut would."""

    def prepare(step_input: Any) -> StepOutput:
        effects.record("prepare")
        return StepOutput(content="prepared")

    def deploy(step_input: Any) -> StepOutput:
        effects.record("deploy")
        if crash_in_deploy:
            os._exit(3)
        return StepOutput(content=f"deployed after {step_input.previous_step_content}")

    def notify(step_input: Any) -> StepOutput:
        effects.record("notify")
        return StepOutput(content=f"notified after {step_input.previous_step_content}")

    return Workflow(
        name=name,
        db=db_from_url(db_url),
        steps=[
            Step(name="prepare", executor=prepare),
            Step(
                name="deploy",
                executor=deploy,
                requires_confirmation=True,
                confirmation_message="Deploy to production?",
                on_reject=on_reject,
                pause_timeout=pause_timeout,
                approvals=approvals,
            ),
            Step(name="notify", executor=notify),
        ],
    )


def nested_workflow(
    db_url: str, effects: SideEffects | Recorder, *, name: str = "nested_flow"
) -> Workflow:
    """A paused step four levels down, paused once per loop round:
    Steps(outer) > Loop(rounds, 2) > Router(pick) > Steps(gate_path) > Step(gate), then after.
    The gate's path is [0, 0, 0, 0, 0]."""

    def record(label: str) -> Callable[[Any], StepOutput]:
        def run(step_input: Any) -> StepOutput:
            effects.record(label)
            return StepOutput(content=f"{label}<{step_input.previous_step_content}>")

        run.__name__ = label
        return run

    return Workflow(
        name=name,
        db=db_from_url(db_url),
        steps=[
            Steps(
                name="outer",
                steps=[
                    Loop(
                        name="rounds",
                        max_iterations=2,
                        steps=[
                            Router(
                                name="pick",
                                selector=lambda si: "gate_path",
                                choices=[
                                    Steps(
                                        name="gate_path",
                                        steps=[
                                            Step(
                                                name="gate",
                                                executor=record("gate"),
                                                requires_confirmation=True,
                                            ),
                                            Step(name="work", executor=record("work")),
                                        ],
                                    ),
                                    Step(name="other", executor=record("other")),
                                ],
                            )
                        ],
                    )
                ],
            ),
            Step(name="after", executor=record("after")),
        ],
    )


def child_env() -> dict[str, str]:
    """Environment for a child Python that imports ``engine`` and this module."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(HERE)])
    return env


def child_command(*args: str) -> list[str]:
    return [sys.executable, str(HERE / "engine_flows.py"), *args]


# -- what a child process does -------------------------------------------------------
def _resume(db_url: str, log: str, run_id: str, session_id: str, requirements: str) -> dict:
    """A fresh process: defines the workflow, loads nothing, continues by id."""
    workflow = approval_workflow(db_url, SideEffects(log))
    reqs = [StepRequirement.from_dict(d) for d in json.loads(requirements)]
    result = workflow.continue_run(run_id=run_id, session_id=session_id, step_requirements=reqs)
    session = workflow.get_session()
    return {
        "status": result.status.value,
        "content": result.content,
        "session_last_status": session.runs[-1].status.value if session else None,
        "decided_by": [d.decided_by for d in workflow.get_decisions(run_id)],
    }


def _ready_then_wait(ready: str, go: str) -> bool:
    """Say this child is ready, then wait (polling: the only signal across processes here)
    for the parent's go; False after 30 s without it."""
    Path(ready).touch()
    deadline = time.monotonic() + 30
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def _race(db_url: str, log: str, run_id: str, who: str, action: str, ready: str, go: str) -> dict:
    """Load the paused run, answer it, then wait for the parent's signal and continue."""
    workflow = approval_workflow(db_url, SideEffects(log))
    run = workflow.get_run(run_id)
    assert run is not None and run.is_paused, run
    req = run.step_requirements[0]
    if action == "confirm":
        req.confirm(by=who)
    else:
        req.reject(by=who, reason=f"{who} said no")
    if not _ready_then_wait(ready, go):
        return {"result": "timeout"}
    try:
        out = workflow.continue_run(run)
    except RunNotPausedError as exc:
        return {
            "result": "lost",
            "error": type(exc).__name__,
            "message": str(exc),
            "decided_by": exc.decided_by,
        }
    return {"result": "won", "status": out.status.value, "who": who}


def _crash(db_url: str, log: str, run_id: str, who: str) -> dict:
    """Confirm and continue, dying inside the confirmed step: never returns."""
    workflow = approval_workflow(db_url, SideEffects(log), crash_in_deploy=True)
    run = workflow.get_run(run_id)
    assert run is not None
    run.step_requirements[0].confirm(by=who)
    workflow.continue_run(run)
    return {"result": "survived"}


def _start(db_url: str, log: str, ready: str, go: str) -> dict:
    """Wait for the parent's signal, then start a run: several of these at once race to
    create the schema of a database nobody used yet."""
    workflow = approval_workflow(db_url, SideEffects(log))
    if not _ready_then_wait(ready, go):
        return {"result": "timeout"}
    run = workflow.run("go")
    return {"result": run.status.value, "run_id": run.run_id}


def _race_nested(db_url: str, log: str, run_id: str, who: str, ready: str, go: str) -> dict:
    """``_race`` on the nested workflow's pause, answered in a fresh process."""
    workflow = nested_workflow(db_url, SideEffects(log))
    run = workflow.get_run(run_id)
    assert run is not None and run.is_paused, run
    run.step_requirements[0].confirm(by=who)
    if not _ready_then_wait(ready, go):
        return {"result": "timeout"}
    try:
        out = workflow.continue_run(run)
    except RunNotPausedError as exc:
        return {"result": "lost", "error": type(exc).__name__, "decided_by": exc.decided_by}
    return {"result": "won", "status": out.status.value, "who": who}


def _race_vote(
    db_url: str, log: str, run_id: str, approvals: str, who: str, ready: str, go: str
) -> dict:
    """Approve the deploy step (which needs ``approvals`` people) as ``who``, in a fresh
    process, at the parent's signal."""
    workflow = approval_workflow(db_url, SideEffects(log), approvals=int(approvals))
    req = StepRequirement(step_name="deploy")
    stored = workflow.get_run(run_id)
    assert stored is not None and stored.is_paused, stored
    req.requirement_id = stored.step_requirements[0].requirement_id
    req.confirm(by=who)
    if not _ready_then_wait(ready, go):
        return {"result": "timeout"}
    try:
        out = workflow.continue_run(run_id=run_id, step_requirements=[req])
    except RunNotPausedError as exc:
        return {"result": "lost", "error": type(exc).__name__, "decided_by": exc.decided_by}
    return {"result": out.status.value, "who": who}


def main(argv: list[str]) -> None:
    command, *args = argv
    commands: dict[str, Callable[..., Any]] = {
        "resume": _resume,
        "race": _race,
        "crash": _crash,
        "start": _start,
        "race_nested": _race_nested,
        "race_vote": _race_vote,
    }
    print(json.dumps(commands[command](*args)))


if __name__ == "__main__":
    main(sys.argv[1:])
