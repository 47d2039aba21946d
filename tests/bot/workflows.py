"""Workflows the bot tests run: small, deterministic, with side effects we can count."""

from __future__ import annotations

import threading
from datetime import timedelta

from engine import OnReject, Step, StepInput, StepOutput, UserInputField, Workflow

EXECUTIONS: dict[str, int] = {}
_lock = threading.Lock()
# Tests set this to hold a step until they release it (a "slow" step without sleeping).
SLOW_GATE = threading.Event()


def counted(name: str):  # type: ignore[no-untyped-def]
    def run(step_input: StepInput) -> StepOutput:
        with _lock:
            EXECUTIONS[name] = EXECUTIONS.get(name, 0) + 1
        user_input = step_input.additional_data.get("user_input")
        if user_input:
            return StepOutput(
                content={
                    "step": name,
                    "user_input": user_input,
                    "types": {k: type(v).__name__ for k, v in user_input.items()},
                }
            )
        return StepOutput(content=f"{name} done after {step_input.previous_step_content!r}")

    run.__name__ = name
    return run


def slow(step_input: StepInput) -> StepOutput:
    SLOW_GATE.wait(30)
    return StepOutput(content="slow step done")


def failing(step_input: StepInput) -> StepOutput:
    raise RuntimeError("disk full")


def make_workflows() -> list[Workflow]:
    return [
        Workflow(
            name="approve_me",
            description="one confirmation",
            steps=[
                Step(name="prepare", executor=counted("prepare")),
                Step(
                    name="ship",
                    executor=counted("ship"),
                    requires_confirmation=True,
                    confirmation_message="Ship it?",
                    on_reject=OnReject.skip,
                ),
                Step(name="announce", executor=counted("announce")),
            ],
        ),
        Workflow(
            name="cancel_me",
            steps=[
                Step(
                    name="danger",
                    executor=counted("danger"),
                    requires_confirmation=True,
                    on_reject="cancel",
                    pause_timeout=timedelta(hours=1),
                ),
                Step(name="after", executor=counted("after")),
            ],
        ),
        Workflow(
            name="configure_me",
            steps=[
                Step(
                    name="configure",
                    executor=counted("configure"),
                    requires_user_input=True,
                    user_input_message="Configure processing:",
                    user_input_schema=[
                        UserInputField(
                            name="threshold",
                            field_type="float",
                            required=True,
                            description="0.0-1.0",
                        ),
                        UserInputField(
                            name="mode", field_type="str", allowed_values=["fast", "accurate"]
                        ),
                        UserInputField(name="batch_size", field_type="int", required=False),
                        UserInputField(name="dry_run", field_type="bool", required=False),
                    ],
                ),
            ],
        ),
        Workflow(
            name="slow_one",
            steps=[
                Step(name="gate", executor=counted("gate"), requires_confirmation=True),
                Step(name="slow", executor=slow),
            ],
        ),
        Workflow(
            name="skip_on_timeout",
            steps=[
                Step(
                    name="maybe",
                    executor=counted("maybe"),
                    requires_confirmation=True,
                    pause_timeout=timedelta(minutes=30),
                ),
                Step(name="finally", executor=counted("finally")),
            ],
        ),
        Workflow(name="broken", steps=[Step(name="explode", executor=failing)]),
    ]
