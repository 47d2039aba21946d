"""The vocabulary of the state machine: the instructions it yields, where a paused run stands
(``Frame``), what walking a component gives back (``Result``), the per-drive state (``Walk``)
and the base class every component (Step, Steps, Parallel, Loop, Condition, Router) shares.

A component is walked by a generator: it yields instructions (run this step, call this
evaluator, emit this event) and returns a ``Result``. Pausing is a result like any other: the
component returns a ``Frame`` saying where it stands, its parent wraps it in its own, and the
top of the tree stores the whole chain with the run. Resuming walks the same tree with that
chain, each component picking up at its frame: the stored pause position is a path.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypedDict

from engine.errors import WorkflowConfigError
from engine.run.events import (
    StepCompletedEvent,
    StepSkippedEvent,
    StepStartedEvent,
    WorkflowRunEvent,
)
from engine.run.requirement import RejectAction, StepRequirement
from engine.workflow.types import (
    HumanReview,
    OnReject,
    OnTimeout,
    RequirementKind,
    StepInput,
    StepOutput,
    StepType,
    to_timedelta,
)

if TYPE_CHECKING:
    from engine.run.workflow import WorkflowRunOutput
    from engine.workflow.step import Step


# -- instructions the machine yields to its driver ---------------------------------------
@dataclass
class Invoke:
    """Run a step's executor or agent with ``step_input``."""

    step: Step
    step_input: StepInput


@dataclass
class ContinueExecutor:
    """Hand an agent that paused its own run the answers to its requirements."""

    step: Step
    step_input: StepInput
    requirement: StepRequirement


@dataclass
class Call:
    """Call a user's function (an evaluator, a selector, an end condition, a review
    predicate); the driver awaits it when it is async."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass
class Save:
    run: WorkflowRunOutput


@dataclass
class Claim:
    run: WorkflowRunOutput
    expected_version: int
    decisions: list[Any]  # engine.run.requirement.Decision, one per requirement of the pause
    # Votes on a pause that counts them: a lost compare-and-set is sent back as False
    # (another vote may have landed first) instead of raised.
    contended: bool = False
    # A vote that leaves the pause open: the run is written back still paused, unleased.
    keeps_paused: bool = False


@dataclass
class Reload:
    """The run as stored now; the driver raises ``RunNotPausedError`` unless it still waits
    at the same pause (``requirement_ids``)."""

    run_id: str
    requirement_ids: list[str]


Instruction = Invoke | ContinueExecutor | Call | Save | Claim | Reload | WorkflowRunEvent
Walker = Generator[Instruction, Any, "Result"]


class Wait(StrEnum):
    """What a component's own frame waits for."""

    before = "before"  # confirmation and/or input before it runs
    route = "route"  # a Router's choice
    review = "review"  # a step's output review
    iteration = "iteration"  # a Loop's iteration review
    error = "error"  # a step that raised, on_error="pause"
    executor = "executor"  # an agent's own requirements


@dataclass
class Frame:
    """Where one component stands in a paused run. Stored in the run's JSON."""

    index: int = 0  # position in the sequence being walked
    outputs: list[StepOutput] = field(default_factory=list)  # that sequence's outputs so far
    wait: Wait | None = None
    state: dict[str, Any] = field(default_factory=dict)  # component-specific, JSON-able
    subs: dict[int, Frame] = field(default_factory=dict)  # child frames by position

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index}
        if self.outputs:
            data["outputs"] = [o.to_dict() for o in self.outputs]
        if self.wait is not None:
            data["wait"] = self.wait.value
        if self.state:
            data["state"] = self.state
        if self.subs:
            data["subs"] = {str(k): v.to_dict() for k, v in self.subs.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Frame:
        return cls(
            index=int(data.get("index", 0)),
            outputs=[StepOutput.from_dict(o) for o in data.get("outputs") or ()],
            wait=Wait(data["wait"]) if data.get("wait") else None,
            state=dict(data.get("state") or {}),
            subs={int(k): cls.from_dict(v) for k, v in (data.get("subs") or {}).items()},
        )

    def all_outputs(self) -> Iterable[StepOutput]:
        """Every output this frame chain holds (for ``previous_step_outputs`` on resume)."""
        for kept in self.state.get("done", {}).values():
            yield StepOutput.from_dict(kept)
        for iteration in self.state.get("iterations", ()):
            for kept in iteration:
                yield StepOutput.from_dict(kept)
        yield from self.outputs
        for sub in self.subs.values():
            yield from sub.all_outputs()


class Flow(StrEnum):
    done = "done"
    paused = "paused"
    stopped = "stopped"  # a step returned stop=True: the run completes now
    cancelled = "cancelled"
    failed = "failed"


@dataclass
class Result:
    flow: Flow
    output: StepOutput | None = None
    frame: Frame | None = None
    outputs: list[StepOutput] = field(default_factory=list)  # a sequence's outputs
    message: str | None = None  # why cancelled or failed
    step_name: str | None = None  # the component that cancelled or failed
    decided_by: str | None = None

    @property
    def goes_on(self) -> bool:
        return self.flow is Flow.done


def last_content(outputs: Sequence[StepOutput], default: Any = None) -> Any:
    executed = [o for o in outputs if not o.skipped]
    return executed[-1].content if executed else default


class Walk:
    """The state of one drive of the machine over a run: the answers being applied, the
    requirements of a new pause, and every output so far by name."""

    def __init__(
        self,
        *,
        run: WorkflowRunOutput,
        now: Callable[[], datetime],
        event: Callable[..., WorkflowRunEvent],
        decided: Iterable[StepRequirement] = (),
        history: Iterable[StepOutput] = (),
    ) -> None:
        self.run = run
        self.now = now
        self.event = event
        self.decided: dict[tuple[int, ...], StepRequirement] = {
            tuple(r.step_path): r for r in decided
        }
        self.pending: list[StepRequirement] = []
        self.outputs_by_name: dict[str, StepOutput] = {}
        for output in history:
            self.remember(output)

    def remember(self, output: StepOutput) -> None:
        for child in output.steps or ():
            self.remember(child)
        if output.step_name:
            self.outputs_by_name[output.step_name] = output

    def take(self, path: tuple[int, ...], component: Component) -> StepRequirement:
        """The answered requirement of ``component``'s pause at ``path``."""
        req = self.decided.pop(path, None)
        if req is None:
            raise WorkflowConfigError(
                f"run {self.run.run_id} has no answer for '{component.name}' at {list(path)}"
            )
        return req

    def pause(self, req: StepRequirement, frame: Frame) -> Result:
        self.pending.append(req)
        return Result(Flow.paused, frame=frame)

    def input_for(
        self, outer: StepInput, outputs: Sequence[StepOutput], step_name: str
    ) -> StepInput:
        """What a child gets: the run's input, the previous content in its sequence (or
        what its group got), every earlier output by name, the run's extra data."""
        additional = {
            k: v
            for k, v in outer.additional_data.items()
            if k not in ("user_input", "rejection_feedback")
        }
        return StepInput(
            input=outer.input,
            previous_step_content=last_content(outputs, outer.previous_step_content),
            previous_step_outputs=dict(self.outputs_by_name),
            additional_data=additional,
            workflow_name=outer.workflow_name,
            run_id=outer.run_id,
            session_id=outer.session_id,
            step_name=step_name,
        )


# The pauses an approval policy (approvals=N, reject_quorum=M) applies to.
_VOTED_KINDS = frozenset(
    {RequirementKind.confirmation, RequirementKind.output_review, RequirementKind.iteration_review}
)


class PauseOptions(TypedDict, total=False):
    """The keyword arguments of the pause before a group (Steps, Loop, Condition, Router)
    runs. ``requires_confirmation``: ask a person first; ``confirmation_message``: what to
    ask; ``on_reject``: what a rejection does (``skip``, ``cancel``; a Condition also
    ``else``); ``pause_timeout`` (or agno's ``hitl_timeout`` with ``on_timeout``): the
    pause's deadline; ``human_review``: the same settings as one ``HumanReview`` object.

    Approval policy (``Component._init_policy``): ``approvals`` distinct people must
    approve (default 1); ``reject_quorum`` rejections reject (default 1: a veto);
    ``allow_requester=False`` keeps the person who started the run from deciding;
    ``distinct_from=["step"]`` keeps anyone who decided an earlier pause of those steps
    in the same run from deciding this one (four eyes across steps)."""

    requires_confirmation: bool
    confirmation_message: str | None
    on_reject: OnReject | str | None
    pause_timeout: timedelta | float | None
    hitl_timeout: float | None
    on_timeout: OnTimeout | str | None
    human_review: HumanReview | None
    approvals: int
    reject_quorum: int
    allow_requester: bool
    distinct_from: Sequence[str]


class Component:
    """What every node of a workflow's tree shares: a name, and the pause before it runs.

    Subclasses implement ``walk``; containers list their children in ``children`` (a
    pause's path indexes into them).
    """

    step_type: StepType = StepType.STEP
    default_on_reject: OnReject = OnReject.skip
    name: str

    def _init_group(
        self, pause: PauseOptions, *, supports: frozenset[str] = frozenset()
    ) -> HumanReview | None:
        """Check ``human_review`` against what this group ``supports``, then set up the
        pause before it (``self.name`` set first). Returns the ``human_review``."""
        human_review = pause.get("human_review")
        if human_review is not None:
            try:
                human_review.check_for(type(self).__name__, supports=supports)
            except ValueError as exc:
                raise WorkflowConfigError(str(exc)) from None
        self._init_pause(
            name=self.name,
            requires_confirmation=pause.get("requires_confirmation", False),
            confirmation_message=pause.get("confirmation_message"),
            on_reject=pause.get("on_reject"),
            pause_timeout=pause.get("pause_timeout"),
            hitl_timeout=pause.get("hitl_timeout"),
            on_timeout=pause.get("on_timeout"),
            human_review=human_review,
        )
        self._init_policy(
            approvals=pause.get("approvals", 1),
            reject_quorum=pause.get("reject_quorum", 1),
            allow_requester=pause.get("allow_requester", True),
            distinct_from=pause.get("distinct_from", ()),
        )
        return human_review

    def _init_policy(
        self,
        *,
        approvals: int = 1,
        reject_quorum: int = 1,
        allow_requester: bool = True,
        distinct_from: Sequence[str] = (),
    ) -> None:
        """Who decides this component's confirmation and output or iteration review, and
        how many (see ``PauseOptions``)."""
        what = f"{self.step_type.value} {self.name!r}"
        for label, value in (("approvals", approvals), ("reject_quorum", reject_quorum)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WorkflowConfigError(f"{what}: {label} must be an integer >= 1, got {value!r}")
        if isinstance(distinct_from, str):
            distinct_from = [distinct_from]
        self.approvals = approvals
        self.reject_quorum = reject_quorum
        self.allow_requester = bool(allow_requester)
        self.distinct_from: tuple[str, ...] = tuple(distinct_from)

    def excluded_deciders(self, run: WorkflowRunOutput) -> list[str]:
        """Who may not decide this component's pause in ``run``: its requester unless
        ``allow_requester``, and everyone who decided a pause of a step named in
        ``distinct_from`` earlier in the run."""
        excluded: list[str] = []
        if not self.allow_requester and run.user_id:
            excluded.append(run.user_id)
        if self.distinct_from:
            for earlier in run.requirement_history:
                if earlier.step_name not in self.distinct_from or earlier.timed_out:
                    continue
                for who in (*earlier.approved_by, *earlier.rejected_by, earlier.decided_by):
                    if who and who not in excluded:
                        excluded.append(who)
        return excluded

    def _init_pause(
        self,
        *,
        name: str,
        requires_confirmation: bool | None,
        confirmation_message: str | None,
        on_reject: OnReject | str | None,
        pause_timeout: timedelta | float | None,
        hitl_timeout: float | None,
        on_timeout: OnTimeout | str | None,
        human_review: HumanReview | None,
    ) -> None:
        if human_review is not None:
            requires_confirmation = requires_confirmation or human_review.requires_confirmation
            confirmation_message = confirmation_message or human_review.confirmation_message
            if on_reject is None and human_review.on_reject is not None:
                on_reject = human_review.on_reject
            if hitl_timeout is None:
                hitl_timeout = human_review.timeout
            if on_timeout is None and human_review.timeout is not None:
                on_timeout = human_review.on_timeout
        self.requires_confirmation = bool(requires_confirmation)
        self.confirmation_message = confirmation_message
        self.on_reject = OnReject.parse(
            on_reject if on_reject is not None else self.default_on_reject
        )
        if pause_timeout is not None and hitl_timeout is not None:
            raise WorkflowConfigError(
                f"{self.step_type.value} {name!r}: give pause_timeout or hitl_timeout, not both"
            )
        what = f"{self.step_type.value} {name!r}"
        if hitl_timeout is not None:
            self.pause_timeout = to_timedelta(hitl_timeout, what=f"{what} hitl_timeout")
            # agno's default when a hitl_timeout is set.
            self.on_timeout: OnTimeout | None = OnTimeout.parse(on_timeout or OnTimeout.cancel)
        else:
            self.pause_timeout = to_timedelta(pause_timeout, what=f"{what} pause_timeout")
            # Without on_timeout a deadline applies on_reject, as pause_timeout always did.
            self.on_timeout = OnTimeout.parse(on_timeout) if on_timeout is not None else None
        if self.on_timeout is not None and self.pause_timeout is None:
            raise WorkflowConfigError(f"{what}: on_timeout needs hitl_timeout or pause_timeout")

    @property
    def hitl_timeout(self) -> float | None:
        return self.pause_timeout.total_seconds() if self.pause_timeout else None

    @property
    def pauses(self) -> bool:
        """Whether it pauses before it runs."""
        return self.requires_confirmation

    def children(self) -> list[Component]:
        return []

    def walk(
        self, w: Walk, step_input: StepInput, path: tuple[int, ...], frame: Frame | None
    ) -> Walker:
        raise NotImplementedError

    # -- shared pieces ------------------------------------------------------------------
    def new_requirement(
        self, *, path: tuple[int, ...], now: datetime, kind: RequirementKind, **fields: Any
    ) -> StepRequirement:
        if kind in _VOTED_KINDS:
            fields.setdefault("approvals_required", getattr(self, "approvals", 1))
            fields.setdefault("reject_quorum", getattr(self, "reject_quorum", 1))
        return StepRequirement(
            requirement_id=uuid.uuid4().hex,
            step_name=self.name,
            step_index=path[0],
            step_path=list(path),
            kind=kind,
            step_type=self.step_type.value,
            on_reject=fields.pop("on_reject", self.on_reject),
            on_timeout=self.on_timeout,
            paused_at=now,
            expires_at=now + self.pause_timeout if self.pause_timeout else None,
            **fields,
        )

    def confirmation_requirement(self, path: tuple[int, ...], now: datetime) -> StepRequirement:
        return self.new_requirement(
            path=path,
            now=now,
            kind=RequirementKind.confirmation,
            requires_confirmation=True,
            confirmation_message=self.confirmation_message,
        )

    def gate(
        self, w: Walk, path: tuple[int, ...], frame: Frame | None
    ) -> Generator[Instruction, Any, tuple[Result | None, Frame | None, StepRequirement | None]]:
        """The confirmation before a group runs. Returns (a result that ends the walk
        here, or None to go on; the frame to go on from; the answered requirement)."""
        if frame is None:
            if self.pauses:
                return (
                    w.pause(self.confirmation_requirement(path, w.now()), Frame(wait=Wait.before)),
                    None,
                    None,
                )
            return None, None, None
        if frame.wait is not Wait.before:
            return None, frame, None
        req = w.take(path, self)
        if req.is_rejected:
            action = req.reject_action()
            if action is RejectAction.else_branch and self.step_type is StepType.CONDITION:
                return None, None, req  # the Condition runs its else_steps
            if action is not RejectAction.approve:
                return (yield from self.rejected(w, req, path, action)), None, req
        return None, None, req

    def begin(
        self, w: Walk, path: tuple[int, ...], frame: Frame | None
    ) -> Generator[Instruction, Any, tuple[Result | None, Frame | None, StepRequirement | None]]:
        """``gate``, then the started event when the group starts now (not when it resumes
        mid-way). Returns what ``gate`` returns."""
        ended, frame, req = yield from self.gate(w, path, frame)
        if ended is None and frame is None:
            yield self.started_event(w, path)
        return ended, frame, req

    def started_event(self, w: Walk, path: tuple[int, ...]) -> WorkflowRunEvent:
        return w.event(
            StepStartedEvent, step_name=self.name, step_index=path[-1], step_path=list(path)
        )

    def completed_event(
        self, w: Walk, path: tuple[int, ...], output: StepOutput
    ) -> WorkflowRunEvent:
        return w.event(
            StepCompletedEvent,
            step_name=self.name,
            step_index=path[-1],
            step_path=list(path),
            content=output.content,
            step_output=output,
        )

    def walk_members(
        self,
        w: Walk,
        members: Sequence[tuple[int, Component]],
        step_input: StepInput,
        path: tuple[int, ...],
        frame: Frame | None,
        *,
        state: dict[str, Any] | None = None,
    ) -> Walker:
        """Walk ``members`` as this group's sequence, resuming at ``frame``: a pause inside
        keeps ``state`` in the group's frame; at the end the group's output and its
        completed event."""
        inner = yield from walk_sequence(w, members, step_input, path, frame)
        if inner.frame is not None:
            inner.frame.state.update(state or {})
            return inner
        result = finish_group(self, inner)
        if result.output is not None:
            yield self.completed_event(w, path, result.output)
        return result

    def rejected(
        self, w: Walk, req: StepRequirement, path: tuple[int, ...], action: RejectAction
    ) -> Generator[Instruction, Any, Result]:
        """Carry out a rejection (or a deadline): cancel the run or skip this component."""
        if action is RejectAction.cancel:
            who = "the deadline" if req.timed_out else (req.decided_by or "a reviewer")
            why = f": {req.reason}" if req.reason and not req.timed_out else ""
            verb = "timed out" if req.timed_out else f"was rejected by {who}"
            return Result(
                Flow.cancelled,
                message=f"Run cancelled: step '{self.name}' {verb}{why}",
                step_name=self.name,
                decided_by=req.decided_by,
            )
        yield self.skipped_event(
            w, path, reason=req.reason, by=req.decided_by, timed_out=req.timed_out
        )
        return Result(
            Flow.done,
            output=StepOutput(step_name=self.name, skipped=True, step_type=self.step_type.value),
        )

    def skipped_event(
        self,
        w: Walk,
        path: tuple[int, ...],
        *,
        reason: str | None,
        by: str | None,
        timed_out: bool = False,
    ) -> WorkflowRunEvent:
        return w.event(
            StepSkippedEvent,
            step_name=self.name,
            step_index=path[-1],
            step_path=list(path),
            reason=reason,
            skipped_by=by,
            timed_out=timed_out,
        )

    def locate(self, path: Sequence[int]) -> Component | None:
        """The component at ``path`` below this one (``[]`` is this one)."""
        node: Component = self
        for index in path:
            kids = node.children()
            if not 0 <= index < len(kids):
                return None
            node = kids[index]
        return node

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def walk_sequence(
    w: Walk,
    members: Sequence[tuple[int, Component]],
    step_input: StepInput,
    path: tuple[int, ...],
    frame: Frame | None,
    *,
    outputs: list[StepOutput] | None = None,
) -> Walker:
    """Walk ``members`` (index among the parent's children, component) in order.

    ``outputs``, when given, is where their outputs go (the run's own ``step_results``
    for the top level, which are stored there rather than in the frame).
    """
    keep_in_frame = outputs is None
    outs: list[StepOutput] = outputs if outputs is not None else []
    start = 0
    if frame is not None:
        start = frame.index
        if keep_in_frame:
            outs.extend(frame.outputs)
    for pos in range(start, len(members)):
        index, child = members[pos]
        sub = frame.subs.get(pos) if frame is not None and pos == start else None
        child_input = w.input_for(step_input, outs, child.name)
        result = yield from child.walk(w, child_input, (*path, index), sub)
        if result.flow is Flow.paused:
            assert result.frame is not None
            return Result(
                Flow.paused,
                frame=Frame(
                    index=pos,
                    outputs=list(outs) if keep_in_frame else [],
                    subs={pos: result.frame},
                ),
                outputs=outs,
            )
        if result.output is not None:
            outs.append(result.output)
            w.remember(result.output)
        if not result.goes_on:
            result.outputs = outs
            return result
    return Result(Flow.done, outputs=outs)


def group_output(
    component: Component, outputs: list[StepOutput], *, content: Any = None
) -> StepOutput:
    """The one output of a group: its last child's content, its children's outputs."""
    return StepOutput(
        step_name=component.name,
        step_type=component.step_type.value,
        content=last_content(outputs) if content is None else content,
        steps=list(outputs),
        success=all(o.success for o in outputs),
    )


def finish_group(component: Component, inner: Result, *, content: Any = None) -> Result:
    """A group's result from its sequence's: the same flow, with the group's output."""
    if inner.flow is Flow.cancelled:
        return inner
    output = group_output(component, inner.outputs, content=content)
    return Result(
        inner.flow,
        output=output,
        message=inner.message,
        step_name=inner.step_name,
        decided_by=inner.decided_by,
    )


def as_component(item: Any, *, position: int) -> Component:
    """A member of ``steps=``: a component, a plain function (a Step), or a nested list
    (a Steps group), as agno allows."""
    from engine.workflow.step import Step
    from engine.workflow.steps import Steps

    if isinstance(item, Component):
        return item
    if isinstance(item, (list, tuple)):
        return Steps(name=f"steps_{position + 1}", steps=list(item))
    if callable(item):
        return Step(executor=item)
    raise WorkflowConfigError(
        f"a workflow member must be a Step, Steps, Parallel, Loop, Condition, Router, a "
        f"function or a list of them; got {item!r}"
    )


def as_components(items: Sequence[Any], *, owner: str) -> list[Component]:
    if not isinstance(items, (list, tuple)):
        items = [items]
    components = [as_component(item, position=i) for i, item in enumerate(items)]
    names = [c.name for c in components]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise WorkflowConfigError(f"{owner}: step names must be unique, repeated: {duplicated}")
    return components
