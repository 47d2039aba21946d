"""Workflows the bot tests run: small, deterministic, with side effects we can count."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from engine import (
    Condition,
    Loop,
    OnReject,
    Parallel,
    Router,
    Step,
    StepInput,
    StepOutput,
    Steps,
    UserInputField,
    Workflow,
)

EXECUTIONS: dict[str, int] = {}
_lock = threading.Lock()
# Tests set this to hold a step until they release it (a "slow" step without sleeping).
SLOW_GATE = threading.Event()


def counted(name: str):
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


# -- every pause kind (tests/bot/test_pause_kinds.py) -------------------------------------------
FLAKY_FAILURES = {"left": 0}
LONG_OUTPUT = "line of a long report `with backticks`\n" * 120


def echo(name: str):
    def run(step_input: StepInput) -> StepOutput:
        with _lock:
            EXECUTIONS[name] = EXECUTIONS.get(name, 0) + 1
        return StepOutput(content=f"{name}<{step_input.previous_step_content}>")

    run.__name__ = name
    return run


def draft(step_input: StepInput) -> StepOutput:
    with _lock:
        EXECUTIONS["draft"] = EXECUTIONS.get("draft", 0) + 1
        attempt = EXECUTIONS["draft"]
    if step_input.input == "long":
        return StepOutput(content=LONG_OUTPUT)
    feedback = step_input.rejection_feedback
    return StepOutput(content=f"draft {attempt}" + (f" after {feedback!r}" if feedback else ""))


def flaky(step_input: StepInput) -> StepOutput:
    with _lock:
        EXECUTIONS["fetch"] = EXECUTIONS.get("fetch", 0) + 1
        attempt = EXECUTIONS["fetch"]
        fail = FLAKY_FAILURES["left"] > 0
        FLAKY_FAILURES["left"] -= 1
    if fail:
        raise ConnectionError(f"attempt {attempt}: <!channel> upstream refused")
    return StepOutput(content="fetched")


@dataclass
class AgentReply:
    content: Any = None
    is_paused: bool = False
    run_id: str | None = None
    requirements: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ToolAgent:
    """An agent whose tool call needs a person; it continues from the answers alone."""

    name: str = "ops_agent"

    def run(self, input: str, **kwargs: Any) -> AgentReply:
        requirement = {
            "id": "tool-1",
            "tool_name": "drop_table",
            "tool_args": {"table": input or "users", "cascade": True},
            "requires_confirmation": True,
        }
        return AgentReply(is_paused=True, run_id="agent-run", requirements=[requirement])

    def continue_run(self, *, run_id: str, requirements: list[dict[str, Any]]) -> AgentReply:
        [req] = requirements
        if req["confirmed"]:
            return AgentReply(content=f"dropped {req['tool_args']['table']}")
        return AgentReply(content=f"kept everything ({req.get('note')})")


def _group(kind: str) -> Any:
    common: dict[str, Any] = {
        "name": "g",
        "requires_confirmation": True,
        "confirmation_message": f"Run the {kind}?",
    }
    inner = [
        Step(name="first", executor=echo("first")),
        Step(name="second", executor=echo("second")),
    ]
    if kind == "steps":
        return Steps(steps=inner, **common)
    if kind == "loop":
        return Loop(steps=inner, max_iterations=2, **common)
    if kind == "router":
        return Router(choices=inner, selector=lambda si: "second", **common)
    return Condition(evaluator=True, steps=inner[:1], else_steps=inner[1:], **common)


GROUP_KINDS = ("steps", "loop", "router", "condition")


def pause_kind_workflows() -> list[Workflow]:
    fast = Step(name="fast", executor=echo("fast"), description="the quick path")
    careful = Step(name="careful", executor=echo("careful"), description="reviewed by two")
    many = [Step(name=f"region_{i}", executor=echo(f"region_{i}")) for i in range(6)]
    return [
        *(
            Workflow(
                name=f"group_{kind}",
                steps=[_group(kind), Step(name="after", executor=echo("after"))],
            )
            for kind in GROUP_KINDS
        ),
        Workflow(
            name="route_me",
            steps=[
                Router(
                    name="route",
                    choices=[fast, careful],
                    requires_user_input=True,
                    user_input_message="Which path?",
                ),
                Step(name="after", executor=echo("after")),
            ],
        ),
        Workflow(
            name="route_many",
            steps=[
                Router(
                    name="route",
                    choices=[
                        Step(name="fast", executor=echo("fast"), description="the quick path"),
                        Step(name="careful", executor=echo("careful"), description="reviewed"),
                    ],
                    requires_user_input=True,
                    allow_multiple_selections=True,
                )
            ],
        ),
        Workflow(
            name="route_menu",
            steps=[Router(name="region", choices=many, requires_user_input=True)],
        ),
        Workflow(
            name="review_me",
            steps=[
                Step(
                    name="draft",
                    executor=draft,
                    requires_output_review=True,
                    output_review_message="Publish this?",
                    on_reject=OnReject.retry,
                    hitl_max_retries=2,
                ),
                Step(name="publish", executor=echo("publish")),
            ],
        ),
        Workflow(
            name="route_deadline",
            steps=[
                Router(
                    name="route",
                    choices=[Step(name="fast", executor=echo("fast"))],
                    requires_user_input=True,
                    pause_timeout=timedelta(minutes=5),
                ),
                Step(name="after", executor=echo("after")),
            ],
        ),
        Workflow(
            name="flaky_me",
            steps=[
                Step(name="fetch", executor=flaky, on_error="pause"),
                Step(name="after", executor=echo("after")),
            ],
        ),
        Workflow(
            name="loop_review",
            steps=[
                Loop(
                    name="rounds",
                    steps=[Step(name="polish", executor=echo("polish"))],
                    max_iterations=3,
                    requires_iteration_review=True,
                    iteration_review_message="Another round?",
                )
            ],
        ),
        Workflow(
            name="tool_me",
            steps=[Step(name="clean", agent=ToolAgent())],
        ),
        Workflow(
            name="fan_me",
            steps=[
                Parallel(
                    Step(name="left", executor=echo("left"), requires_confirmation=True),
                    Step(name="right", executor=echo("right"), requires_confirmation=True),
                    Step(name="free", executor=echo("free")),
                    name="fan",
                ),
                Step(name="after", executor=echo("after")),
            ],
        ),
    ]
