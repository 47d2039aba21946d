"""Every code sample of shared/spec/step-hitl.md, with ``agno.`` replaced by ``engine.``.

The samples are kept as written; ``input()`` gets canned answers and the agents are fakes.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import RunStatus
from tests.engine.engine_flows import FakeAgent


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The samples write "workflow.db" in the working directory.
    monkeypatch.chdir(tmp_path)
    return tmp_path


def canned_input(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    prompts: list[str] = []
    it: Iterator[str] = iter(answers)

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(it)

    monkeypatch.setattr(builtins, "input", fake_input)
    return prompts


def confirmation_sample(fetch_agent, process_agent, save_agent):
    from engine.db.sqlite import SqliteDb
    from engine.workflow import OnReject, Workflow
    from engine.workflow.step import Step

    workflow = Workflow(
        name="data_pipeline",
        db=SqliteDb(db_file="workflow.db"),
        steps=[
            Step(name="fetch_data", agent=fetch_agent),
            Step(
                name="process_data",
                agent=process_agent,
                requires_confirmation=True,
                confirmation_message="Process sensitive data?",
                on_reject=OnReject.skip,
            ),
            Step(name="save_results", agent=save_agent),
        ],
    )

    run_output = workflow.run("Process user data")

    if run_output.is_paused:
        for req in run_output.steps_requiring_confirmation:
            print(f"Step: {req.step_name}")
            print(f"Message: {req.confirmation_message}")

            if input("Confirm? (y/n): ").lower() == "y":
                req.confirm()
            else:
                req.reject()

        run_output = workflow.continue_run(run_output)

    print(run_output.content)
    return workflow, run_output


def test_confirmation_sample_confirmed(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    prompts = canned_input(monkeypatch, ["y"])
    fetch, process, save = FakeAgent("fetch"), FakeAgent("process"), FakeAgent("save")
    workflow, run_output = confirmation_sample(fetch, process, save)

    assert prompts == ["Confirm? (y/n): "]
    assert run_output.status is RunStatus.completed
    assert fetch.calls == ["Process user data"]
    assert process.calls == ["fetch(Process user data)"]
    assert save.calls == ["process(fetch(Process user data))"]
    assert run_output.content == "save(process(fetch(Process user data)))"
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "Step: process_data",
        "Message: Process sensitive data?",
        "save(process(fetch(Process user data)))",
    ]
    stored = workflow.get_run(run_output.run_id)
    assert stored is not None and stored.status is RunStatus.completed
    assert [s.step_name for s in stored.step_results] == [
        "fetch_data",
        "process_data",
        "save_results",
    ]


def test_confirmation_sample_rejected_skips(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    canned_input(monkeypatch, ["n"])
    fetch, process, save = FakeAgent("fetch"), FakeAgent("process"), FakeAgent("save")
    _, run_output = confirmation_sample(fetch, process, save)

    assert run_output.status is RunStatus.completed
    assert process.calls == []
    # The step after a skipped one gets the last executed step's content.
    assert save.calls == ["fetch(Process user data)"]
    assert [(s.step_name, s.skipped) for s in run_output.step_results] == [
        ("fetch_data", False),
        ("process_data", True),
        ("save_results", False),
    ]
    assert capsys.readouterr().out.splitlines()[-1] == "save(fetch(Process user data))"


def user_input_sample(analyze_agent, report_agent):
    from engine.db.sqlite import SqliteDb
    from engine.workflow import Workflow
    from engine.workflow.step import Step
    from engine.workflow.types import StepInput, StepOutput, UserInputField

    def process_with_params(step_input: StepInput) -> StepOutput:
        user_input = step_input.additional_data.get("user_input", {})
        threshold = user_input.get("threshold", 0.5)
        mode = user_input.get("mode", "fast")

        return StepOutput(content=f"Processed with threshold={threshold}, mode={mode}")

    workflow = Workflow(
        name="configurable_pipeline",
        db=SqliteDb(db_file="workflow.db"),
        steps=[
            Step(name="analyze", agent=analyze_agent),
            Step(
                name="process",
                executor=process_with_params,
                requires_user_input=True,
                user_input_message="Configure processing:",
                user_input_schema=[
                    UserInputField(
                        name="threshold",
                        field_type="float",
                        description="Processing threshold (0.0-1.0)",
                        required=True,
                    ),
                    UserInputField(
                        name="mode",
                        field_type="str",
                        description="Mode: 'fast' or 'accurate'",
                        required=True,
                    ),
                    UserInputField(
                        name="batch_size",
                        field_type="int",
                        description="Records per batch",
                        required=False,
                    ),
                ],
            ),
            Step(name="report", agent=report_agent),
        ],
    )

    run_output = workflow.run("Process Q4 data")

    if run_output.is_paused:
        for req in run_output.steps_requiring_user_input:
            print(f"Step: {req.step_name}")
            print(f"Message: {req.user_input_message}")

            values: dict[str, Any] = {}
            for field in req.user_input_schema:
                marker = "*" if field.required else ""
                prompt = f"{field.name}{marker} ({field.field_type}): "
                value = input(prompt)

                # Convert to appropriate type
                if value:
                    if field.field_type == "int":
                        values[field.name] = int(value)
                    elif field.field_type == "float":
                        values[field.name] = float(value)
                    elif field.field_type == "bool":
                        values[field.name] = value.lower() in ("true", "yes", "1")
                    else:
                        values[field.name] = value

            req.set_user_input(**values)

        run_output = workflow.continue_run(run_output)

    print(run_output.content)
    return workflow, run_output


def test_user_input_sample(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    prompts = canned_input(monkeypatch, ["0.8", "accurate", ""])  # batch_size left empty
    analyze, report = FakeAgent("analyze"), FakeAgent("report")
    workflow, run_output = user_input_sample(analyze, report)

    assert prompts == ["threshold* (float): ", "mode* (str): ", "batch_size (int): "]
    assert run_output.status is RunStatus.completed
    assert report.calls == ["Processed with threshold=0.8, mode=accurate"]
    assert run_output.content == "report(Processed with threshold=0.8, mode=accurate)"
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["Step: process", "Message: Configure processing:"]
    decisions = workflow.get_decisions(run_output.run_id)
    assert [d.values for d in decisions] == [{"threshold": 0.8, "mode": "accurate"}]


def test_user_input_sample_with_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    canned_input(monkeypatch, ["0.25", "fast", "500"])
    _, run_output = user_input_sample(FakeAgent("analyze"), FakeAgent("report"))
    assert run_output.content == "report(Processed with threshold=0.25, mode=fast)"
    process = run_output.step_results[1]
    assert process.step_name == "process"
    assert process.content == "Processed with threshold=0.25, mode=fast"


def test_accessing_user_input_sample() -> None:
    from engine.db.sqlite import SqliteDb
    from engine.workflow import Workflow
    from engine.workflow.step import Step
    from engine.workflow.types import StepInput, StepOutput

    def my_step(step_input: StepInput) -> StepOutput:
        user_input = step_input.additional_data.get("user_input", {})

        threshold = user_input.get("threshold")
        mode = user_input.get("mode")

        # Process with user-provided values
        return StepOutput(content=f"Done with {threshold}, {mode}")

    workflow = Workflow(
        name="access",
        db=SqliteDb(db_file="workflow.db"),
        steps=[Step(name="my_step", executor=my_step, requires_user_input=True)],
    )
    run_output = workflow.run("go")
    run_output.steps_requiring_user_input[0].set_user_input(threshold=0.3, mode="fast")
    run_output = workflow.continue_run(run_output)
    assert run_output.content == "Done with 0.3, fast"


def test_pause_decorator_sample() -> None:
    from engine.db.sqlite import SqliteDb
    from engine.workflow import Workflow
    from engine.workflow.decorators import pause
    from engine.workflow.step import Step
    from engine.workflow.types import StepInput, StepOutput, UserInputField

    @pause(
        requires_confirmation=True,
        confirmation_message="Execute this step?",
    )
    def step_with_confirmation(step_input: StepInput) -> StepOutput:
        return StepOutput(content="Executed after confirmation")

    @pause(
        requires_user_input=True,
        user_input_message="Enter parameters:",
        user_input_schema=[
            UserInputField(name="value", field_type="str", required=True),
        ],
    )
    def step_with_input(step_input: StepInput) -> StepOutput:
        value = step_input.additional_data["user_input"]["value"]
        return StepOutput(content=f"Received: {value}")

    # Decorator config is auto-detected when used in a Step
    workflow = Workflow(
        steps=[
            Step(name="confirm_step", executor=step_with_confirmation),
            Step(name="input_step", executor=step_with_input),
        ],
        db=SqliteDb(db_file="workflow.db"),
    )

    run_output = workflow.run("go")
    assert run_output.is_paused
    [req] = run_output.steps_requiring_confirmation
    assert (req.step_name, req.confirmation_message) == ("confirm_step", "Execute this step?")
    assert run_output.steps_requiring_user_input == []
    req.confirm()
    run_output = workflow.continue_run(run_output)

    assert run_output.is_paused
    [req] = run_output.steps_requiring_user_input
    assert (req.step_name, req.user_input_message) == ("input_step", "Enter parameters:")
    assert [(f.name, f.field_type, f.required) for f in req.user_input_schema] == [
        ("value", "str", True)
    ]
    req.set_user_input(value="hello")
    run_output = workflow.continue_run(run_output)

    assert run_output.status is RunStatus.completed
    assert run_output.content == "Received: hello"
    assert [s.content for s in run_output.step_results] == [
        "Executed after confirmation",
        "Received: hello",
    ]


def test_streaming_sample(capsys) -> None:
    from engine.db.sqlite import SqliteDb
    from engine.run.workflow import StepPausedEvent
    from engine.workflow import Workflow
    from engine.workflow.step import Step

    workflow = Workflow(
        name="streamed",
        db=SqliteDb(db_file="workflow.db"),
        steps=[
            Step(name="first", agent=FakeAgent("first")),
            Step(name="check", agent=FakeAgent("check"), requires_confirmation=True),
            Step(name="again", agent=FakeAgent("again"), requires_confirmation=True),
            Step(name="last", agent=FakeAgent("last")),
        ],
    )
    continues = 0

    for event in workflow.run("input", stream=True, stream_events=True):
        if isinstance(event, StepPausedEvent):
            print(f"Paused at: {event.step_name}")

    session = workflow.get_session()
    run_output = session.runs[-1]
    assert run_output.is_paused and run_output.paused_step_name == "check"

    while run_output.is_paused:
        for req in run_output.steps_requiring_confirmation:
            req.confirm()

        for event in workflow.continue_run(run_output, stream=True, stream_events=True):  # noqa: B007
            pass
        continues += 1

        session = workflow.get_session()
        run_output = session.runs[-1]

    assert continues == 2
    assert run_output.status is RunStatus.completed
    assert run_output.content == "last(again(check(first(input))))"
    assert capsys.readouterr().out.splitlines() == ["Paused at: check"]
    assert len(session.runs) == 1
