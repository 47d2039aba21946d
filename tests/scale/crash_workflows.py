"""Workflows for the crash-recovery tests: the step after the confirmation blocks until a
gate file appears, so a test can kill the process that runs it at a known point.

Shared by the engine tests (``python -m tests.scale.crash_workflows continue ...`` is the
process they kill) and the bot replicas (``SIGNOFF_WORKFLOWS=tests.scale.crash_workflows:
workflows``). Every step execution is appended to ``<dir>/effects.log``; the gate of a run is
``<dir>/<run_id>.go``; ``<dir>`` is ``SIGNOFF_CRASH_DIR`` unless a workflow is given one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine import Step, StepInput, StepOutput, Workflow, db_from_url
from engine.clock import Clock
from engine.db.base import BaseDb
from tests.engine.engine_flows import SideEffects

DIR_ENV = "SIGNOFF_CRASH_DIR"
GATE_TIMEOUT_S = 120.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def gate_path(directory: Path, run_id: str) -> Path:
    return directory / f"{run_id}.go"


def effects_of(directory: Path) -> SideEffects:
    return SideEffects(directory / "effects.log")


def blocking_workflow(
    name: str,
    *,
    on_interrupted: str,
    lease: timedelta = timedelta(seconds=60),
    directory: Path | None = None,
    db: BaseDb | None = None,
    clock: Clock | None = None,
) -> Workflow:
    """prepare -> deploy (needs confirmation; waits for its run's gate file) -> notify."""

    def where() -> Path:
        return directory if directory is not None else Path(os.environ[DIR_ENV])

    def prepare(step_input: StepInput) -> StepOutput:
        effects_of(where()).record("prepare")
        return StepOutput(content="prepared")

    def deploy(step_input: StepInput) -> StepOutput:
        effects_of(where()).record("deploy:start")
        gate = gate_path(where(), str(step_input.run_id))
        deadline = time.monotonic() + GATE_TIMEOUT_S
        while not gate.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {gate} never appeared")
            time.sleep(0.01)
        effects_of(where()).record("deploy:done")
        return StepOutput(content=f"deployed after {step_input.previous_step_content}")

    def notify(step_input: StepInput) -> StepOutput:
        effects_of(where()).record("notify")
        return StepOutput(content=f"notified after {step_input.previous_step_content}")

    return Workflow(
        name=name,
        db=db,
        clock=clock,
        lease=lease,
        on_interrupted=on_interrupted,
        steps=[
            Step(name="prepare", executor=prepare),
            Step(
                name="deploy",
                executor=deploy,
                requires_confirmation=True,
                confirmation_message="Deploy to production?",
            ),
            Step(name="notify", executor=notify),
        ],
    )


# What the bot replicas serve: one workflow per policy, with a lease short enough that a
# killed replica's runs are found within seconds.
REPLICA_LEASE = timedelta(seconds=2)
workflows = [
    blocking_workflow("crash_fail", on_interrupted="fail", lease=REPLICA_LEASE),
    blocking_workflow("crash_resume", on_interrupted="resume", lease=REPLICA_LEASE),
]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


def continue_command(
    db_url: str, name: str, policy: str, directory: Path, run_id: str
) -> list[str]:
    """A fresh process that confirms the run's pause and runs on into the blocking step."""
    return [
        sys.executable,
        "-m",
        "tests.scale.crash_workflows",
        "continue",
        db_url,
        name,
        policy,
        str(directory),
        run_id,
    ]


def _continue(db_url: str, name: str, policy: str, directory: str, run_id: str) -> dict[str, Any]:
    wf = blocking_workflow(
        name, on_interrupted=policy, directory=Path(directory), db=db_from_url(db_url)
    )
    run = wf.get_run(run_id)
    assert run is not None and run.is_paused, run
    run.step_requirements[0].confirm(by="alice")
    out = wf.continue_run(run)  # blocks in deploy until killed
    return {"status": out.status.value}


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    assert command == "continue", command
    print(json.dumps(_continue(*args)))
