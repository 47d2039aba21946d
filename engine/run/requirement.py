"""What a pause asks for, and the answer a person gives to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.clock import format_time, parse_time, utcnow
from engine.workflow.types import OnReject, UserInputField, validate_user_input

TIMEOUT_ACTOR = "engine:timeout"


class Outcome(StrEnum):
    """How a pause was resolved; stored in the audit trail."""

    confirmed = "confirmed"
    rejected = "rejected"
    submitted = "submitted"  # input given on a step that asked only for input
    timed_out = "timed_out"


@dataclass
class StepRequirement:
    """One paused step's question. Answer it with ``confirm``, ``reject`` or
    ``set_user_input``, then hand the run to ``continue_run``.

    Each pause gets its own copy of the step's schema, so answers never leak between runs.
    """

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

    # -- answering ---------------------------------------------------------
    def confirm(self, by: str | None = None, comment: str | None = None) -> None:
        self.confirmed = True
        self.reason = None
        self._stamp(by)
        self.comment = comment

    def reject(self, by: str | None = None, reason: str | None = None) -> None:
        self.confirmed = False
        self.comment = None
        self._stamp(by)
        self.reason = reason

    def set_user_input(
        self, values: Mapping[str, Any] | None = None, /, *, by: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Validate every value at once and store them; on any error store nothing.

        Values may come as keywords (``set_user_input(threshold=0.5)``) or as one mapping
        (for field names that clash with ``by``). Returns the converted values.
        """
        merged = {**(values or {}), **kwargs}
        converted = validate_user_input(self.step_name, self.user_input_schema, merged)
        self.user_input = converted
        for spec in self.user_input_schema:
            spec.value = converted.get(spec.name)
        if not self.requires_confirmation:
            # Giving input to an input-only step is the go-ahead.
            self.confirmed = True
        self._stamp(by)
        return converted

    def _stamp(self, by: str | None) -> None:
        if by is not None:
            self.decided_by = by
        self.decided_at = utcnow()

    # -- state ---------------------------------------------------------------
    @property
    def is_rejected(self) -> bool:
        return self.confirmed is False

    @property
    def needs_confirmation(self) -> bool:
        return self.requires_confirmation and self.confirmed is None

    @property
    def needs_user_input(self) -> bool:
        return self.requires_user_input and not self.is_rejected and self.user_input is None

    @property
    def is_resolved(self) -> bool:
        return not self.unresolved_reasons()

    @property
    def outcome(self) -> Outcome | None:
        if self.timed_out:
            return Outcome.timed_out
        if self.confirmed is False:
            return Outcome.rejected
        if self.confirmed is True:
            return Outcome.confirmed if self.requires_confirmation else Outcome.submitted
        return None

    def unresolved_reasons(self) -> list[str]:
        self._adopt_field_values()
        reasons = []
        if self.needs_confirmation:
            reasons.append(f"step '{self.step_name}' needs confirm() or reject()")
        if self.needs_user_input:
            reasons.append(f"step '{self.step_name}' needs set_user_input(...) or reject()")
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
        # An answer given by setting ``field.value`` (the other engines' way) lives only on
        # the schema copies; carry it over so the adoption in unresolved_reasons sees it.
        given = {f.name: f.value for f in other.user_input_schema}
        for spec in self.user_input_schema:
            spec.value = given.get(spec.name)

    # -- storage -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRequirement:
        return cls(
            requirement_id=data["requirement_id"],
            step_name=data["step_name"],
            step_index=int(data["step_index"]),
            step_path=list(data.get("step_path") or [data["step_index"]]),
            requires_confirmation=bool(data.get("requires_confirmation")),
            confirmation_message=data.get("confirmation_message"),
            requires_user_input=bool(data.get("requires_user_input")),
            user_input_message=data.get("user_input_message"),
            user_input_schema=[
                UserInputField.from_dict(f) for f in data.get("user_input_schema") or []
            ],
            on_reject=OnReject.parse(data.get("on_reject") or "skip"),
            paused_at=parse_time(data.get("paused_at")),
            expires_at=parse_time(data.get("expires_at")),
            confirmed=data.get("confirmed"),
            user_input=data.get("user_input"),
            decided_by=data.get("decided_by"),
            decided_at=parse_time(data.get("decided_at")),
            comment=data.get("comment"),
            reason=data.get("reason"),
            timed_out=bool(data.get("timed_out")),
        )


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
            values=req.user_input,
        )

    def describe(self) -> str:
        who = self.decided_by or "someone"
        verb = {
            Outcome.confirmed: "confirmed",
            Outcome.rejected: "rejected",
            Outcome.submitted: "answered",
            Outcome.timed_out: "timed out",
        }[self.outcome]
        if self.outcome is Outcome.timed_out:
            return f"step '{self.step_name}' timed out at {self.decided_at.isoformat()}"
        return f"step '{self.step_name}' was {verb} by {who} at {self.decided_at.isoformat()}"
