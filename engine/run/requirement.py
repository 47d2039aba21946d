"""What a pause asks for, and the answer a person gives to it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.clock import format_time, parse_time, utcnow
from engine.errors import (
    AlreadyDecidedError,
    DeciderNotAllowedError,
    RequirementsUnresolvedError,
    UnknownChoiceError,
)
from engine.workflow.types import (
    OnReject,
    OnTimeout,
    RequirementKind,
    StepOutput,
    UserInputField,
    _jsonable,
    validate_user_input,
)

TIMEOUT_ACTOR = "engine:timeout"


class Outcome(StrEnum):
    """How a pause was resolved; stored in the audit trail."""

    confirmed = "confirmed"
    rejected = "rejected"
    submitted = "submitted"  # input given on a step that asked only for input, or a route chosen
    timed_out = "timed_out"


class RejectAction(StrEnum):
    """What a rejection (or a deadline) does to the paused component."""

    skip = "skip"
    cancel = "cancel"
    else_branch = "else"
    retry = "retry"
    approve = "approve"  # a deadline with on_timeout=approve


@dataclass
class ExecutorRequirement:
    """One of an agent's own requirements (a tool call that needs confirmation or input),
    carried by a workflow pause of kind ``executor``. Answer it like a step's requirement."""

    id: str
    tool_name: str | None = None
    tool_args: dict[str, Any] | None = None
    requires_confirmation: bool = False
    confirmed: bool | None = None
    requires_user_input: bool = False
    user_input_schema: list[UserInputField] = field(default_factory=list)
    user_input: dict[str, Any] | None = None
    note: str | None = None

    def confirm(self) -> None:
        """Let the agent's tool call go ahead."""
        self.confirmed = True

    def reject(self, note: str | None = None) -> None:
        """Refuse the agent's tool call, with a ``note`` it gets back."""
        self.confirmed = False
        self.note = note

    def set_user_input(self, values: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        """Give the tool's input values, checked against its schema (invalid ones raise)."""
        merged = {**(values or {}), **kwargs}
        self.user_input = validate_user_input(
            self.tool_name or "tool", self.user_input_schema, merged
        )

    @property
    def is_resolved(self) -> bool:
        """Whether every question of this tool call has an answer (a rejection needs no input)."""
        if self.requires_confirmation and self.confirmed is None:
            return False
        return not (
            self.requires_user_input and self.user_input is None and self.confirmed is not False
        )

    def to_dict(self) -> dict[str, Any]:
        """Its stored form, JSON-safe."""
        return {
            "id": self.id,
            "tool_name": self.tool_name,
            "tool_args": _jsonable(self.tool_args),
            "requires_confirmation": self.requires_confirmation,
            "confirmed": self.confirmed,
            "requires_user_input": self.requires_user_input,
            "user_input_schema": [f.to_dict() for f in self.user_input_schema],
            "user_input": self.user_input,
            "note": self.note,
        }

    @classmethod
    def from_any(cls, data: Any) -> ExecutorRequirement:
        """From an ``ExecutorRequirement``, its dict, or any object with ``to_dict()``."""
        if isinstance(data, ExecutorRequirement):
            return data
        if not isinstance(data, Mapping) and callable(getattr(data, "to_dict", None)):
            data = data.to_dict()
        if not isinstance(data, Mapping):
            raise TypeError(f"an executor requirement must be a mapping, got {data!r}")
        return cls(
            id=str(data.get("id") or uuid.uuid4().hex),
            tool_name=data.get("tool_name"),
            tool_args=dict(data.get("tool_args") or {}),
            requires_confirmation=bool(data.get("requires_confirmation")),
            confirmed=data.get("confirmed"),
            requires_user_input=bool(data.get("requires_user_input")),
            user_input_schema=[
                UserInputField.coerce(f) for f in data.get("user_input_schema") or ()
            ],
            user_input=data.get("user_input"),
            note=data.get("note"),
        )


@dataclass
class _RequirementFields:
    requirement_id: str
    step_name: str
    step_index: int
    step_path: list[int]
    requires_confirmation: bool = False
    confirmation_message: str | None = None
    requires_user_input: bool = False
    user_input_message: str | None = None
    user_input_schema: list[UserInputField] = field(default_factory=list)
    on_reject: OnReject = OnReject.skip
    paused_at: datetime | None = None
    expires_at: datetime | None = None
    # The answer. confirmed: True = confirmed, False = rejected, None = not yet.
    confirmed: bool | None = None
    user_input: dict[str, Any] | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    reason: str | None = None
    timed_out: bool = False
    # -- what kind of pause, and what it carries beyond a confirmation ------------------
    kind: RequirementKind = RequirementKind.confirmation
    step_type: str | None = None
    on_timeout: OnTimeout | None = None  # None: a deadline applies on_reject
    # route selection (Router)
    requires_route_selection: bool = False
    available_choices: list[str] | None = None
    choice_descriptions: dict[str, str | None] | None = None
    allow_multiple_selections: bool = False
    selected_choices: list[str] | None = None
    # output / iteration review
    requires_output_review: bool = False
    output_review_message: str | None = None
    step_output: StepOutput | None = None
    is_post_execution: bool = False
    rejection_feedback: str | None = None
    edited_output: Any = None
    retry_count: int = 0
    max_retries: int | None = None
    iteration: int | None = None
    # error pause
    error_message: str | None = None
    error_type: str | None = None
    # executor pause
    requires_executor_input: bool = False
    executor_requirements: list[ExecutorRequirement] | None = None
    executor_name: str | None = None
    executor_run_id: str | None = None
    # approval policy (confirmation, output and iteration review) and its progress
    approvals_required: int = 1
    reject_quorum: int = 1
    excluded_deciders: list[str] = field(default_factory=list)
    approved_by: list[str] = field(default_factory=list)
    rejected_by: list[str] = field(default_factory=list)


class StepRequirement(_RequirementFields):
    """One pause's question. Answer it, then hand the run to ``continue_run``:

    - before a component runs: ``confirm()`` / ``reject()`` and/or ``set_user_input(...)``;
    - a Router's choice: ``select(name)``, ``select_single``, ``select_multiple([...])``;
    - an output or iteration review: ``confirm()``, ``reject(feedback=...)``, ``edit(output)``;
    - a step that raised (``on_error="pause"``): ``retry()`` or ``skip()``;
    - an agent's tool calls: answer each of ``executor_requirements``.

    Approval policies: with ``approvals_required`` > 1 (a step's ``approvals=N``) each
    ``confirm(by=...)`` handed to ``continue_run`` is one person's recorded approval; the
    pause resolves at the Nth distinct person (``continue_run`` returns the run still
    paused until then, with the progress in ``approved_by``, ``rejected_by``,
    ``approvals_needed``). A rejection resolves it at once unless ``reject_quorum`` > 1.
    The same person twice raises ``AlreadyDecidedError``; a person in
    ``excluded_deciders`` raises ``DeciderNotAllowedError``.

    Each pause gets its own copy of the step's schema, so answers never leak between runs.
    """

    def __init__(
        self,
        requirement_id: str | None = None,
        step_name: str | None = None,
        step_index: int | None = None,
        step_path: list[int] | None = None,
        *,
        step_id: str | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(
            requirement_id=requirement_id or step_id or uuid.uuid4().hex,
            step_name=step_name or "",
            step_index=0 if step_index is None else step_index,
            step_path=list(step_path) if step_path is not None else [step_index or 0],
            **fields,
        )
        self.on_reject = OnReject.parse(self.on_reject)
        if self.on_timeout is not None:
            self.on_timeout = OnTimeout.parse(self.on_timeout)
        self.user_input_schema = [UserInputField.coerce(f) for f in self.user_input_schema]
        if self.executor_requirements is not None:
            self.executor_requirements = [
                ExecutorRequirement.from_any(r) for r in self.executor_requirements
            ]

    # agno's names for the same things.
    @property
    def step_id(self) -> str:
        """agno's name for ``requirement_id``."""
        return self.requirement_id

    @property
    def timeout_at(self) -> datetime | None:
        """agno's name for ``expires_at``."""
        return self.expires_at

    @property
    def is_timed_out(self) -> bool:
        """agno's name for ``timed_out``."""
        return self.timed_out

    # -- answering ---------------------------------------------------------
    def confirm(self, by: str | None = None, comment: str | None = None) -> None:
        """Approve; ``by`` is who decided, ``comment`` goes into the audit trail."""
        self.confirmed = True
        self.reason = None
        self.rejection_feedback = None
        self._stamp(by)
        self.comment = comment

    def reject(
        self, by: str | None = None, reason: str | None = None, *, feedback: str | None = None
    ) -> None:
        """Reject; ``feedback`` (agno's name) is also the reason, and with
        ``on_reject=OnReject.retry`` reaches the step's next attempt."""
        self.confirmed = False
        self.comment = None
        self.edited_output = None
        self._stamp(by)
        self.reason = reason if reason is not None else feedback
        self.rejection_feedback = feedback if feedback is not None else reason

    def edit(self, new_output: Any, *, by: str | None = None, comment: str | None = None) -> None:
        """Accept a reviewed output with ``new_output`` in place of what the step produced."""
        if self.kind not in (RequirementKind.output_review, RequirementKind.iteration_review):
            raise ValueError(f"step '{self.step_name}': edit() answers an output review only")
        self.confirm(by=by, comment=comment)
        self.edited_output = new_output

    def retry(self, by: str | None = None) -> None:
        """Run the step that raised again (an error pause)."""
        self._require_kind(RequirementKind.error, "retry()")
        self.confirm(by=by)

    def skip(self, by: str | None = None, reason: str | None = None) -> None:
        """Record the step that raised as failed and go on (an error pause)."""
        self._require_kind(RequirementKind.error, "skip()")
        self.reject(by=by, reason=reason)

    def select(self, *choices: str, by: str | None = None) -> None:
        """Choose the Router's route(s) by name; an unknown name stores nothing."""
        self._require_kind(RequirementKind.route_selection, "select()")
        names = [c for group in choices for c in ([group] if isinstance(group, str) else group)]
        if not names:
            raise UnknownChoiceError(self.step_name, [], self.available_choices or [])
        if len(names) > 1 and not self.allow_multiple_selections:
            raise ValueError(
                f"router '{self.step_name}' takes one choice, got {len(names)}: {names}"
            )
        unknown = [n for n in names if n not in (self.available_choices or [])]
        if unknown:
            raise UnknownChoiceError(self.step_name, unknown, self.available_choices or [])
        if len(set(names)) != len(names):
            raise ValueError(f"router '{self.step_name}': a choice was given twice: {names}")
        self.selected_choices = names
        self.confirmed = True
        self._stamp(by)

    def select_single(self, choice: str, *, by: str | None = None) -> None:
        """Choose one of the Router's routes by name (agno's name for ``select``)."""
        self.select(choice, by=by)

    def select_multiple(self, choices: Sequence[str], *, by: str | None = None) -> None:
        """Choose several routes by name, where the Router allows more than one."""
        if not self.allow_multiple_selections:
            raise ValueError(f"router '{self.step_name}' does not allow multiple selections")
        self.select(*choices, by=by)

    def set_user_input(
        self,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        by: str | None = None,
        validate: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Validate every value at once and store them; on any error store nothing.

        Values may come as keywords (``set_user_input(threshold=0.5)``) or as one mapping
        (for field names that clash with ``by``). Returns the converted values. With
        ``validate=False`` the values are stored as given and checked by ``continue_run``.
        """
        merged = {**(values or {}), **kwargs}
        if validate:
            converted = validate_user_input(self.step_name, self.user_input_schema, merged)
        else:
            converted = {**(self.user_input or {}), **merged}
        self.user_input = converted
        for spec in self.user_input_schema:
            spec.value = converted.get(spec.name)
        if not self.requires_confirmation:
            # Giving input to an input-only step is the go-ahead.
            self.confirmed = True
        self._stamp(by)
        return converted

    def get_user_input(self, field_name: str) -> Any:
        """One value of the submitted user input, or None."""
        return (self.user_input or {}).get(field_name)

    def _require_kind(self, kind: RequirementKind, what: str) -> None:
        if self.kind is not kind:
            raise ValueError(
                f"step '{self.step_name}': {what} answers a pause of kind {kind.value}, "
                f"this one is {self.kind.value}"
            )

    def _stamp(self, by: str | None) -> None:
        if by is not None:
            self.decided_by = by
        self.decided_at = utcnow()

    # -- approval policy -------------------------------------------------------
    @property
    def counts_votes(self) -> bool:
        """Whether answers are votes: it needs several approvals or several rejections."""
        return self.approvals_required > 1 or self.reject_quorum > 1

    @property
    def approvals_needed(self) -> int:
        """How many more distinct approvals resolve it (0 once it is resolved)."""
        if self.confirmed is not None and not self._is_open_vote():
            return 0
        return max(0, self.approvals_required - len(self.approved_by))

    @property
    def rejections_needed(self) -> int:
        """How many more distinct rejections reject it (0 once it is resolved)."""
        if self.confirmed is not None and not self._is_open_vote():
            return 0
        return max(0, self.reject_quorum - len(self.rejected_by))

    @property
    def quorum_reached(self) -> bool:
        """A pause that counts votes whose approvals or rejections are complete."""
        return self.counts_votes and (
            len(self.approved_by) >= self.approvals_required
            or len(self.rejected_by) >= self.reject_quorum
        )

    def _is_open_vote(self) -> bool:
        # An answer set on an open vote pause but not yet counted.
        return (
            self.counts_votes
            and len(self.approved_by) < self.approvals_required
            and len(self.rejected_by) < self.reject_quorum
        )

    def check_decider(self, run_id: str) -> None:
        """Refuse an answer from a person who may not decide this pause."""
        who = self.decided_by
        if who is None:
            if self.counts_votes:
                raise DeciderNotAllowedError(
                    run_id,
                    step_name=self.step_name,
                    decided_by=None,
                    why="it needs several people's decisions: answer with by=...",
                )
            if self.excluded_deciders:
                raise DeciderNotAllowedError(
                    run_id,
                    step_name=self.step_name,
                    decided_by=None,
                    why="some people may not decide it: answer with by=...",
                )
            return
        if who in self.excluded_deciders:
            raise DeciderNotAllowedError(
                run_id,
                step_name=self.step_name,
                decided_by=who,
                why=f"{who} may not decide it (the requester, or a decider of an earlier step)",
            )

    def _already_decided(self, run_id: str, who: str, *, approved: bool) -> AlreadyDecidedError:
        return AlreadyDecidedError(
            run_id,
            step_name=self.step_name,
            decided_by=who,
            decision="approved" if approved else "rejected",
            approved_by=self.approved_by,
            rejected_by=self.rejected_by,
            approvals_needed=self.approvals_needed if self._is_open_vote() else 0,
        )

    def cast_vote(self, run_id: str, *, now: datetime) -> Decision:
        """Count this requirement's answer as one person's vote and return its decision.

        The pause resolves (``confirmed`` stays set) at the ``approvals_required``-th
        distinct approval or the ``reject_quorum``-th rejection; otherwise the vote is
        added to ``approved_by`` / ``rejected_by`` and the answer cleared for the next
        person. Pure: the caller stores the result."""
        self.check_decider(run_id)
        who = self.decided_by
        assert who is not None
        if who in self.approved_by or who in self.rejected_by:
            raise self._already_decided(run_id, who, approved=who in self.approved_by)
        approve = self.confirmed is True
        if approve and self.edited_output is not None and self.approvals_required > 1:
            raise ValueError(
                f"step '{self.step_name}' needs {self.approvals_required} approvals: "
                "approve it with confirm(), an edit cannot be voted on"
            )
        (self.approved_by if approve else self.rejected_by).append(who)
        at = self.decided_at or now
        if len(self.approved_by) >= self.approvals_required or len(self.rejected_by) >= (
            self.reject_quorum
        ):
            return Decision.from_requirement(run_id, self, at=now)
        vote = Decision(
            run_id=run_id,
            requirement_id=self.requirement_id,
            step_name=self.step_name,
            outcome=Outcome.confirmed if approve else Outcome.rejected,
            decided_by=who,
            decided_at=at,
            comment=self.comment if approve else self.reason,
            values={
                "vote": True,
                "approved_by": list(self.approved_by),
                "rejected_by": list(self.rejected_by),
                "approvals_needed": self.approvals_required - len(self.approved_by),
                "rejections_needed": self.reject_quorum - len(self.rejected_by),
            },
        )
        self.confirmed = None
        self.decided_by = None
        self.decided_at = None
        self.comment = None
        self.reason = None
        self.rejection_feedback = None
        return vote

    # -- state ---------------------------------------------------------------
    @property
    def is_rejected(self) -> bool:
        """Whether the answer was a rejection."""
        return self.confirmed is False

    @property
    def needs_confirmation(self) -> bool:
        """Whether this pause still waits for an approve or reject."""
        return (
            self.kind is RequirementKind.confirmation
            and self.requires_confirmation
            and self.confirmed is None
        )

    @property
    def needs_user_input(self) -> bool:
        """Whether this pause still waits for its input values."""
        return self.requires_user_input and not self.is_rejected and self.user_input is None

    @property
    def needs_route_selection(self) -> bool:
        """Whether this pause still waits for a route to be chosen."""
        return self.requires_route_selection and not self.is_rejected and not self.selected_choices

    @property
    def needs_output_review(self) -> bool:
        """Whether the step's output still waits for a review."""
        return self.requires_output_review and self.confirmed is None

    @property
    def needs_decision(self) -> bool:
        """An error pause still waiting for ``retry()`` or ``skip()``."""
        return self.kind is RequirementKind.error and self.confirmed is None

    @property
    def needs_executor_resolution(self) -> bool:
        """Whether some of the agent's own requirements still wait for an answer."""
        return self.requires_executor_input and not all(
            r.is_resolved for r in self.executor_requirements or ()
        )

    @property
    def is_resolved(self) -> bool:
        """Whether this pause has every answer it needs to continue."""
        return not self.unresolved_reasons()

    # A decision table: each way a pause resolves returns its outcome.
    @property
    def outcome(self) -> Outcome | None:  # noqa: PLR0911
        """How this pause was resolved, as the audit trail records it; None while unanswered."""
        if self.timed_out:
            return Outcome.timed_out
        if self.kind is RequirementKind.executor:
            return Outcome.submitted if self.is_resolved else None
        if self.confirmed is False:
            return Outcome.rejected
        if self.confirmed is True:
            if self.kind is RequirementKind.route_selection and not self.requires_confirmation:
                return Outcome.submitted
            if self.kind is RequirementKind.confirmation and not self.requires_confirmation:
                return Outcome.submitted
            return Outcome.confirmed
        return None

    def reject_action(self) -> RejectAction:
        """What this requirement's rejection or deadline does."""
        if self.timed_out:
            return self.reject_action_on_timeout()
        return RejectAction(self.on_reject.value)

    def reject_action_on_timeout(self) -> RejectAction:
        """What this requirement's deadline does: ``on_timeout`` if given, else
        ``on_reject`` (as ``pause_timeout`` always did)."""
        if self.on_timeout is None:
            if self.on_reject is OnReject.retry:
                return RejectAction.skip  # nobody gave feedback: do not run it again unasked
            return RejectAction(self.on_reject.value)
        if self.on_timeout is OnTimeout.approve and (
            self.requires_user_input
            or self.kind
            in (RequirementKind.route_selection, RequirementKind.error, RequirementKind.executor)
        ):
            # Nothing to approve without the answer only a person can give: skip instead.
            return RejectAction.skip
        return RejectAction(self.on_timeout.value)

    # One early return per kind of answer still missing, in the order they are reported.
    def unresolved_reasons(self) -> list[str]:  # noqa: PLR0911
        """What still needs an answer, one sentence each naming the step; empty when resolved."""
        self._adopt_field_values()
        name = self.step_name
        if self.timed_out:
            return []
        if self.kind is RequirementKind.executor:
            pending = [
                r.tool_name or r.id for r in self.executor_requirements or () if not r.is_resolved
            ]
            return (
                [f"step '{name}': the agent's requirement(s) {pending} need an answer"]
                if pending
                else []
            )
        if self.kind is RequirementKind.error:
            return (
                [f"step '{name}' failed and needs retry() or skip()"] if self.needs_decision else []
            )
        if self.kind in (RequirementKind.output_review, RequirementKind.iteration_review):
            if self.confirmed is None and self.counts_votes:
                return [f"step '{name}' needs {self.approvals_needed} more approval(s)"]
            if self.confirmed is None:
                return [f"step '{name}' needs its output reviewed: confirm(), reject() or edit()"]
            return []
        reasons = []
        if self.needs_confirmation and self.counts_votes:
            reasons.append(
                f"step '{name}' needs {self.approvals_needed} more approval(s)"
                + (f" (approved by {', '.join(self.approved_by)})" if self.approved_by else "")
            )
        elif self.needs_confirmation:
            reasons.append(f"step '{name}' needs confirm() or reject()")
        if self.needs_user_input:
            reasons.append(f"step '{name}' needs set_user_input(...) or reject()")
        if self.needs_route_selection:
            reasons.append(f"router '{name}' needs select(...) or reject()")
        return reasons

    def _adopt_field_values(self) -> None:
        # Callers used to other engines set field.value directly; honour that.
        if (
            self.requires_user_input
            and self.user_input is None
            and not self.is_rejected
            and any(f.value is not None for f in self.user_input_schema)
        ):
            self.set_user_input(
                {f.name: f.value for f in self.user_input_schema if f.value is not None},
                by=self.decided_by,
            )

    def apply_answer_from(self, other: StepRequirement) -> None:
        """Take ``other``'s answer (used when a caller hands requirements to a fresh load)."""
        self.confirmed = other.confirmed
        self.user_input = dict(other.user_input) if other.user_input is not None else None
        self.decided_by = other.decided_by
        self.decided_at = other.decided_at
        self.comment = other.comment
        self.reason = other.reason
        self.rejection_feedback = other.rejection_feedback
        self.edited_output = other.edited_output
        if other.selected_choices is not None:
            unknown = [c for c in other.selected_choices if c not in (self.available_choices or [])]
            if unknown:
                raise UnknownChoiceError(self.step_name, unknown, self.available_choices or [])
        self.selected_choices = (
            list(other.selected_choices) if other.selected_choices is not None else None
        )
        if other.executor_requirements is not None:
            self.executor_requirements = [
                ExecutorRequirement.from_any(r.to_dict()) for r in other.executor_requirements
            ]
        # An answer given by setting ``field.value`` (the other engines' way) lives only on
        # the schema copies; carry it over so the adoption in unresolved_reasons sees it.
        given = {f.name: f.value for f in other.user_input_schema}
        for spec in self.user_input_schema:
            spec.value = given.get(spec.name)

    def decision_values(self) -> dict[str, Any] | None:
        """The answer's values as the audit trail stores them."""
        if self.kind is RequirementKind.route_selection and self.selected_choices:
            return {"selected_choices": list(self.selected_choices)}
        if self.edited_output is not None:
            return {"edited_output": _jsonable(self.edited_output)}
        if self.kind is RequirementKind.executor:
            return {
                "executor_requirements": [r.to_dict() for r in self.executor_requirements or ()]
            }
        return self.user_input

    # -- storage -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Its stored form, JSON-safe; ``from_dict`` reads it back."""
        data: dict[str, Any] = {
            "requirement_id": self.requirement_id,
            "step_name": self.step_name,
            "step_index": self.step_index,
            "step_path": list(self.step_path),
            "requires_confirmation": self.requires_confirmation,
            "confirmation_message": self.confirmation_message,
            "requires_user_input": self.requires_user_input,
            "user_input_message": self.user_input_message,
            "user_input_schema": [f.to_dict() for f in self.user_input_schema],
            "on_reject": self.on_reject.value,
            "paused_at": format_time(self.paused_at),
            "expires_at": format_time(self.expires_at),
            "confirmed": self.confirmed,
            "user_input": self.user_input,
            "decided_by": self.decided_by,
            "decided_at": format_time(self.decided_at),
            "comment": self.comment,
            "reason": self.reason,
            "timed_out": self.timed_out,
        }
        # The rest only when it says something: a plain confirmation stays as small (and
        # as readable to the previous release) as it was.
        extra: dict[str, Any] = {
            "kind": self.kind.value if self.kind is not RequirementKind.confirmation else None,
            "step_type": self.step_type,
            "on_timeout": self.on_timeout.value if self.on_timeout else None,
            "requires_route_selection": self.requires_route_selection or None,
            "available_choices": self.available_choices,
            "choice_descriptions": self.choice_descriptions,
            "allow_multiple_selections": self.allow_multiple_selections or None,
            "selected_choices": self.selected_choices,
            "requires_output_review": self.requires_output_review or None,
            "output_review_message": self.output_review_message,
            "step_output": self.step_output.to_dict() if self.step_output else None,
            "is_post_execution": self.is_post_execution or None,
            "rejection_feedback": self.rejection_feedback,
            "edited_output": _jsonable(self.edited_output),
            "retry_count": self.retry_count or None,
            "max_retries": self.max_retries,
            "iteration": self.iteration,
            "error_message": self.error_message,
            "error_type": self.error_type,
            "requires_executor_input": self.requires_executor_input or None,
            "executor_requirements": (
                [r.to_dict() for r in self.executor_requirements]
                if self.executor_requirements is not None
                else None
            ),
            "executor_name": self.executor_name,
            "executor_run_id": self.executor_run_id,
            "approvals_required": self.approvals_required if self.approvals_required != 1 else None,
            "reject_quorum": self.reject_quorum if self.reject_quorum != 1 else None,
            "excluded_deciders": list(self.excluded_deciders) or None,
            "approved_by": list(self.approved_by) or None,
            "rejected_by": list(self.rejected_by) or None,
        }
        data.update({k: v for k, v in extra.items() if v is not None})
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRequirement:
        """From our stored form, the previous release's, or agno's (``step_id``, ``timeout_at``)."""
        index = data.get("step_index")
        step_output = data.get("step_output")
        return cls(
            requirement_id=data.get("requirement_id") or data.get("step_id"),
            step_name=data.get("step_name") or "",
            step_index=int(index) if index is not None else 0,
            step_path=list(data.get("step_path") or [index or 0]),
            requires_confirmation=bool(data.get("requires_confirmation")),
            confirmation_message=data.get("confirmation_message"),
            requires_user_input=bool(data.get("requires_user_input")),
            user_input_message=data.get("user_input_message"),
            user_input_schema=[
                UserInputField.coerce(f) for f in data.get("user_input_schema") or []
            ],
            on_reject=OnReject.parse(data.get("on_reject") or "skip"),
            paused_at=parse_time(data.get("paused_at")),
            expires_at=parse_time(data.get("expires_at") or data.get("timeout_at")),
            confirmed=data.get("confirmed"),
            user_input=data.get("user_input"),
            decided_by=data.get("decided_by"),
            decided_at=parse_time(data.get("decided_at")),
            comment=data.get("comment"),
            reason=data.get("reason"),
            timed_out=bool(data.get("timed_out")),
            kind=RequirementKind(data.get("kind") or _guess_kind(data)),
            step_type=data.get("step_type"),
            on_timeout=OnTimeout.parse(data["on_timeout"]) if data.get("on_timeout") else None,
            requires_route_selection=bool(data.get("requires_route_selection")),
            available_choices=data.get("available_choices"),
            choice_descriptions=data.get("choice_descriptions"),
            allow_multiple_selections=bool(data.get("allow_multiple_selections")),
            selected_choices=data.get("selected_choices"),
            requires_output_review=bool(data.get("requires_output_review")),
            output_review_message=data.get("output_review_message"),
            step_output=StepOutput.from_dict(step_output) if step_output else None,
            is_post_execution=bool(data.get("is_post_execution")),
            rejection_feedback=data.get("rejection_feedback"),
            edited_output=data.get("edited_output"),
            retry_count=int(data.get("retry_count") or 0),
            max_retries=data.get("max_retries"),
            iteration=data.get("iteration"),
            error_message=data.get("error_message"),
            error_type=data.get("error_type"),
            requires_executor_input=bool(data.get("requires_executor_input")),
            executor_requirements=data.get("executor_requirements"),
            executor_name=data.get("executor_name"),
            executor_run_id=data.get("executor_run_id"),
            approvals_required=int(data.get("approvals_required") or 1),
            reject_quorum=int(data.get("reject_quorum") or 1),
            excluded_deciders=list(data.get("excluded_deciders") or ()),
            approved_by=list(data.get("approved_by") or ()),
            rejected_by=list(data.get("rejected_by") or ()),
        )


def _guess_kind(data: Mapping[str, Any]) -> str:
    """The kind of a requirement stored without one (agno's dicts)."""
    if data.get("requires_executor_input"):
        return RequirementKind.executor.value
    if data.get("requires_route_selection"):
        return RequirementKind.route_selection.value
    if data.get("requires_output_review"):
        if data.get("step_type") == "Loop":
            return RequirementKind.iteration_review.value
        return RequirementKind.output_review.value
    return RequirementKind.confirmation.value


@dataclass(frozen=True)
class Decision:
    """One resolved pause, as stored in the audit trail."""

    run_id: str
    requirement_id: str
    step_name: str
    outcome: Outcome
    decided_by: str | None
    decided_at: datetime
    comment: str | None = None
    values: dict[str, Any] | None = None

    @classmethod
    def from_requirement(cls, run_id: str, req: StepRequirement, *, at: datetime) -> Decision:
        """The audit record of a resolved requirement; raises if it has no answer yet."""
        outcome = req.outcome
        if outcome is None:
            raise ValueError(f"step '{req.step_name}' has no answer to record")
        return cls(
            run_id=run_id,
            requirement_id=req.requirement_id,
            step_name=req.step_name,
            outcome=outcome,
            decided_by=req.decided_by,
            decided_at=req.decided_at or at,
            comment=req.reason if req.confirmed is False else req.comment,
            values=req.decision_values(),
        )

    @property
    def is_vote(self) -> bool:
        """A vote on a pause that needs several people, recorded while the pause stayed
        open (``values`` then holds the progress after it: ``approved_by``,
        ``rejected_by``, ``approvals_needed``, ``rejections_needed``). The decision that
        resolved such a pause is not a vote: it is the pause's outcome."""
        return bool(self.values and self.values.get("vote") is True)

    def describe(self) -> str:
        """One sentence for people: what was decided on which step, by whom and when."""
        who = self.decided_by or "someone"
        verb = {
            Outcome.confirmed: "confirmed",
            Outcome.rejected: "rejected",
            Outcome.submitted: "answered",
            Outcome.timed_out: "timed out",
        }[self.outcome]
        if self.outcome is Outcome.timed_out:
            return f"step '{self.step_name}' timed out at {self.decided_at.isoformat()}"
        if self.is_vote:
            verb = f"{verb} (one vote, the pause still open)"
        return f"step '{self.step_name}' was {verb} by {who} at {self.decided_at.isoformat()}"


def tally(
    run_id: str,
    requirements: Sequence[StepRequirement],
    answers: Sequence[StepRequirement],
    *,
    now: datetime,
) -> tuple[list[Decision], bool]:
    """Apply ``answers`` to a pause's ``requirements`` where some count votes.

    Each answer to a requirement that counts votes is one vote (``cast_vote``); the others
    are taken as given. Returns the decisions to record now — every vote, and when the
    pause resolves the decisions of the requirements that do not count votes — and whether
    the pause resolves (every requirement resolved). Pure: the caller stores the result
    in one transaction, and on a concurrent vote calls it again on the fresh run."""
    by_id = {r.requirement_id: r for r in requirements}
    decisions: list[Decision] = []
    for answer in answers:
        target = by_id.get(answer.requirement_id)
        if target is None:
            raise RequirementsUnresolvedError(
                run_id, [f"step '{answer.step_name}' is not what this run waits for"]
            )
        if not target.counts_votes:
            if target is not answer:
                target.apply_answer_from(answer)
            if target.outcome is not None:
                target.check_decider(run_id)
            continue
        if answer.confirmed is None:
            continue  # no vote on this one in this call
        if target.confirmed is not None and not target._is_open_vote():
            # Resolved by an earlier call (a pause with other requirements still open).
            who = answer.decided_by or "someone"
            raise target._already_decided(run_id, who, approved=bool(target.confirmed))
        if target is not answer:
            target.apply_answer_from(answer)
        decisions.append(target.cast_vote(run_id, now=now))
    resolved = all(r.is_resolved for r in requirements)
    if resolved:
        decisions.extend(
            Decision.from_requirement(run_id, r, at=now) for r in requirements if not r.counts_votes
        )
    elif not decisions:
        problems = [p for r in requirements for p in r.unresolved_reasons()]
        raise RequirementsUnresolvedError(run_id, problems)
    return decisions, resolved
