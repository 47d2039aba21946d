"""Executor pauses (an agent's own tool requirements) and the agno compatibility details:
dict schemas, list/dict fields, ``@pause(name=...)``, ``run_response=``, requirement history,
agno-shaped requirements, pause kinds, continued events, events by type name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from engine import (
    EVENT_TYPES,
    Loop,
    OnError,
    PauseKind,
    RequirementKind,
    Router,
    RunStatus,
    Step,
    StepContinuedEvent,
    StepExecutorPausedEvent,
    StepInput,
    StepOutput,
    StepPausedEvent,
    StepRequirement,
    UserInputValidationError,
    Workflow,
    pause,
)
from engine.db.sqlite import SqliteDb
from engine.run.workflow import WorkflowRunOutput
from tests.engine.engine_flows import run_async


@dataclass
class AgentReply:
    content: Any = None
    is_paused: bool = False
    run_id: str | None = None
    requirements: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ToolAgent:
    """A deterministic agent whose tool call needs a person: ``run`` pauses with one
    requirement; ``continue_run`` finishes from the answers alone (no memory), as an agent
    that keeps its runs in a database would in a fresh process."""

    name: str = "ops_agent"
    ask_input: bool = False
    calls: list[str] = field(default_factory=list)

    def _pending(self, message: str) -> AgentReply:
        requirement: dict[str, Any] = {
            "id": "tool-1",
            "tool_name": "drop_table",
            "tool_args": {"table": message},
            "requires_confirmation": not self.ask_input,
        }
        if self.ask_input:
            requirement["requires_user_input"] = True
            requirement["user_input_schema"] = [{"name": "reason", "field_type": "str"}]
        return AgentReply(is_paused=True, run_id=f"agent-run-{message}", requirements=[requirement])

    def run(self, input: str, **kwargs: Any) -> AgentReply:
        self.calls.append(f"run:{input}")
        return self._pending(input)

    async def arun(self, input: str, **kwargs: Any) -> AgentReply:
        self.calls.append(f"arun:{input}")
        return self._pending(input)

    def continue_run(self, *, run_id: str, requirements: list[dict[str, Any]]) -> AgentReply:
        self.calls.append(f"continue:{run_id}")
        [req] = requirements
        if req.get("user_input"):
            return AgentReply(
                content=f"dropped {req['tool_args']['table']} because {req['user_input']['reason']}"
            )
        if req["confirmed"]:
            return AgentReply(content=f"dropped {req['tool_args']['table']}")
        return AgentReply(content="kept everything")


def agent_workflow(db: SqliteDb, agent: ToolAgent) -> Workflow:
    return Workflow(
        name="agentic",
        db=db,
        steps=[
            Step(name="prepare", executor=lambda si: "users"),
            Loop(name="once", max_iterations=1, steps=[Step(name="clean", agent=agent)]),
        ],
    )


@pytest.mark.parametrize("answer", ["confirm", "reject"])
def test_executor_pause_continues_the_agent_with_the_answers(
    sqlite_db: SqliteDb, answer: str
) -> None:
    agent = ToolAgent()
    wf = agent_workflow(sqlite_db, agent)
    events = list(wf.run(stream=True))
    paused = [e for e in events if isinstance(e, StepExecutorPausedEvent)]
    assert len(paused) == 1 and paused[0].executor_name == "ops_agent"
    run = paused[0].run_output
    assert run is not None and run.pause_kind is PauseKind.EXECUTOR
    [req] = run.steps_requiring_executor_input
    assert req.requires_executor_input and req.step_path == [1, 0]
    [tool] = req.executor_requirements or []
    assert tool.tool_name == "drop_table" and tool.tool_args == {"table": "users"}
    # A fresh Workflow object (another process) answers by id.
    answer_req = StepRequirement.from_dict(req.to_dict())
    [tool] = answer_req.executor_requirements or []
    tool.confirm() if answer == "confirm" else tool.reject("no")
    fresh = agent_workflow(SqliteDb(db_file=sqlite_db.db_file), ToolAgent())
    done = fresh.continue_run(run_id=run.run_id, step_requirements=[answer_req])
    assert done.status is RunStatus.completed
    assert done.content == ("dropped users" if answer == "confirm" else "kept everything")
    assert agent.calls == ["run:users"]


def test_executor_pause_with_input_async(sqlite_db: SqliteDb) -> None:
    agent = ToolAgent(ask_input=True)
    wf = agent_workflow(sqlite_db, agent)

    async def go() -> WorkflowRunOutput:
        run = await wf.arun()
        [tool] = run.step_requirements[0].executor_requirements or []
        with pytest.raises(UserInputValidationError):
            tool.set_user_input(reason=5)
        tool.set_user_input(reason="cleanup")
        return await wf.acontinue_run(run)

    done = run_async(go())
    assert done.content == "dropped users because cleanup"
    assert agent.calls == ["arun:users", "continue:agent-run-users"]


def test_unanswered_executor_requirements_are_refused(sqlite_db: SqliteDb) -> None:
    wf = agent_workflow(sqlite_db, ToolAgent())
    run = wf.run()
    with pytest.raises(ValueError, match="the agent's requirement"):
        wf.continue_run(run)


# -- compatibility details --------------------------------------------------------------------
def test_dict_schemas_list_and_dict_fields_and_get_user_input(sqlite_db: SqliteDb) -> None:
    seen: dict[str, Any] = {}

    schema: list[dict[str, Any]] = [  # dicts, as agno users write them
        {"name": "tags", "field_type": "list"},
        {"name": "options", "field_type": "dict", "required": False},
        {"name": "level", "field_type": "int", "description": "how much"},
    ]

    @pause(name="configure", requires_user_input=True, user_input_schema=schema)
    def configure(si: StepInput) -> str:
        seen.update(si.user_input)
        return "configured"

    step = Step(executor=configure)
    assert step.name == "configure"
    wf = Workflow(name="w", db=sqlite_db, steps=[step])
    run = wf.run()
    req = run.step_requirements[0]
    assert [f.field_type for f in req.user_input_schema] == ["list", "dict", "int"]
    with pytest.raises(UserInputValidationError) as info:
        req.set_user_input(validate=True, tags="a,b", level="x")
    assert set(info.value.errors) == {"tags", "level"} and req.user_input is None
    req.set_user_input(validate=False, tags=["a"], level="3")
    assert req.get_user_input("level") == "3"  # as given; continue_run validates
    req.set_user_input(tags=["a", "b"], options={"fast": True}, level="3")
    assert req.get_user_input("level") == 3
    wf.continue_run(run_response=run)
    assert seen == {"tags": ["a", "b"], "options": {"fast": True}, "level": 3}
    with pytest.raises(ValueError, match="unknown keys"):
        Step(name="x", executor=configure, user_input_schema=[{"name": "a", "typo": 1}])


def test_requirement_history_and_active_requirements_survive_storage(sqlite_db: SqliteDb) -> None:
    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Step(name="one", executor=lambda si: 1, requires_confirmation=True),
            Step(name="two", executor=lambda si: 2, requires_confirmation=True),
        ],
    )
    run = wf.run()
    run.step_requirements[0].confirm(by="alice")
    run = wf.continue_run(run)
    loaded = wf.get_run(run.run_id)
    assert loaded is not None
    assert [r.step_name for r in loaded.active_step_requirements] == ["two"]
    assert [(r.step_name, r.decided_by) for r in loaded.requirement_history] == [("one", "alice")]
    assert [r.step_name for r in loaded.all_step_requirements] == ["one", "two"]
    assert loaded.paused_step_index == 1 and loaded.pause_kind is PauseKind.STEP
    again = WorkflowRunOutput.from_dict(loaded.to_dict())
    assert [r.step_name for r in again.all_step_requirements] == ["one", "two"]


def test_step_requirement_the_agno_way() -> None:
    req = StepRequirement(
        step_id="abc", step_name="deploy", step_index=2, requires_confirmation=True
    )
    assert req.step_id == "abc" and req.requirement_id == "abc" and req.step_path == [2]
    agno_shaped = {
        "step_id": "xyz",
        "step_name": "route",
        "step_index": 0,
        "step_type": "Router",
        "requires_route_selection": True,
        "available_choices": ["a", "b"],
        "timeout_at": "2026-01-01T00:00:00+00:00",
        "on_timeout": "skip",
        "on_reject": "cancel",
    }
    parsed = StepRequirement.from_dict(agno_shaped)
    assert parsed.kind is RequirementKind.route_selection and parsed.needs_route_selection
    assert parsed.timeout_at is not None and parsed.on_timeout is not None
    assert StepRequirement.from_dict(parsed.to_dict()) == parsed
    parsed.select("b")
    assert StepRequirement.from_dict(parsed.to_dict()).selected_choices == ["b"]


def test_error_requirements_and_step_output_is_paused(sqlite_db: SqliteDb) -> None:
    def boom(si: StepInput) -> str:
        raise RuntimeError("down")

    wf = Workflow(
        name="w", db=sqlite_db, steps=[Step(name="s", executor=boom, on_error=OnError.pause)]
    )
    run = wf.run()
    [err] = run.error_requirements
    assert err.kind is RequirementKind.error and run.pause_kind is PauseKind.STEP
    assert StepOutput(is_paused=True).is_paused and not StepOutput().is_paused
    assert StepOutput.from_dict(
        StepOutput(is_paused=True, steps=[StepOutput(content=1)]).to_dict()
    ).is_paused


def test_continued_events_for_every_pause_kind(sqlite_db: SqliteDb) -> None:
    attempts: list[int] = []

    def flaky(si: StepInput) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("once")
        return "ok"

    wf = Workflow(
        name="w",
        db=sqlite_db,
        steps=[
            Router(
                name="route",
                choices=[Step(name="a", executor=lambda si: "a")],
                requires_user_input=True,
            ),
            Step(name="review", executor=lambda si: "r", requires_output_review=True),
            Step(name="flaky", executor=flaky, on_error="pause"),
            Loop(
                name="loop",
                steps=[Step(name="l", executor=lambda si: "l")],
                max_iterations=1,
                requires_iteration_review=True,
            ),
        ],
    )
    kinds = []
    run = wf.run()
    while run.is_paused:
        req = run.step_requirements[0]
        if req.kind is RequirementKind.route_selection:
            req.select("a")
        elif req.kind is RequirementKind.error:
            req.retry()
        else:
            req.confirm()
        events = list(wf.continue_run(run, stream=True, stream_events=True))
        continued = [e for e in events if isinstance(e, StepContinuedEvent)]
        assert len(continued) == 1 and continued[0].requirement is not None
        kinds.append(continued[0].requirement.kind)
        run = events[-1].run_output  # type: ignore[assignment]
        assert run is not None
    assert kinds == [
        RequirementKind.route_selection,
        RequirementKind.output_review,
        RequirementKind.error,
        RequirementKind.iteration_review,
    ]
    assert run.status is RunStatus.completed


def test_event_classes_are_registered_by_type_name() -> None:
    assert EVENT_TYPES["StepPaused"] is StepPausedEvent
    assert EVENT_TYPES["StepExecutorPausedEvent"] is StepExecutorPausedEvent
    for name in ("RouterPaused", "StepOutputReviewPaused", "StepErrorPaused", "WorkflowCompleted"):
        assert EVENT_TYPES[name].event == name
