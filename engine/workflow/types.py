"""Value types of a workflow: what a step receives, what it returns, what a pause asks for."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Self

from engine.errors import UserInputValidationError

FIELD_TYPES = ("str", "int", "float", "bool", "list", "dict")
_TRUE_STRINGS = frozenset({"true", "yes", "y", "1", "on"})
_FALSE_STRINGS = frozenset({"false", "no", "n", "0", "off"})


class _ParsedEnum(StrEnum):
    @classmethod
    def parse(cls, value: Self | str) -> Self:
        """The member named by ``value``; a ValueError lists the valid names."""
        try:
            return cls(value)
        except ValueError:
            what = re.sub(r"(?<!^)([A-Z])", r"_\1", cls.__name__).lower()
            raise ValueError(
                f"{what} must be one of {[m.value for m in cls]}, got {value!r}"
            ) from None


class OnReject(_ParsedEnum):
    """What happens when a pause is rejected (or its deadline passes without ``on_timeout``).

    ``else_branch`` is for a Condition (run its ``else_steps``); ``retry`` is for an output
    review (run the step again with the reviewer's feedback).
    """

    skip = "skip"
    cancel = "cancel"
    else_branch = "else"
    retry = "retry"


class OnTimeout(_ParsedEnum):
    """What a pause's deadline does (``hitl_timeout``): cancel the run, skip the paused
    component, or approve it as if a person had confirmed."""

    cancel = "cancel"
    skip = "skip"
    approve = "approve"


class OnError(_ParsedEnum):
    """What a raising step does: end the run as ``error`` (``fail``), record the step as
    failed and go on (``skip``), or pause for a person to ``retry()`` or ``skip()`` it."""

    fail = "fail"
    skip = "skip"
    pause = "pause"


class StepType(StrEnum):
    """The kind of component a requirement or an output comes from (agno's names)."""

    FUNCTION = "Function"
    STEP = "Step"
    STEPS = "Steps"
    LOOP = "Loop"
    PARALLEL = "Parallel"
    CONDITION = "Condition"
    ROUTER = "Router"


class PauseKind(StrEnum):
    """Who a paused run waits for: a person deciding on a component (``step``) or the
    answers to an agent's own tool requirements (``executor``)."""

    STEP = "step"
    EXECUTOR = "executor"


class RequirementKind(StrEnum):
    """What one requirement asks a person."""

    confirmation = "confirmation"  # before a component runs: confirm/reject and/or input
    route_selection = "route_selection"  # which of a Router's choices to run
    output_review = "output_review"  # after a step ran: approve, reject (feedback), edit
    iteration_review = "iteration_review"  # after a Loop iteration: go on or stop
    error = "error"  # a step raised: retry() or skip()
    executor = "executor"  # an agent's tool calls need confirmation or input


@dataclass
class UserInputField:
    """One value a paused step asks a person for."""

    name: str
    field_type: str = "str"
    description: str | None = None
    required: bool = True
    allowed_values: list[Any] | None = None
    # Set only on the copies a pause hands out, never on the Step's own schema.
    value: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.field_type, type):
            self.field_type = self.field_type.__name__
        if self.field_type not in FIELD_TYPES:
            raise ValueError(
                f"UserInputField {self.name!r}: field_type must be one of {FIELD_TYPES}, "
                f"got {self.field_type!r}"
            )
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"UserInputField name must be an identifier, got {self.name!r}")

    def copy(self) -> UserInputField:
        """A copy whose allowed values can be changed without changing this one."""
        return dataclasses.replace(
            self, allowed_values=list(self.allowed_values) if self.allowed_values else None
        )

    # One branch per field type, each converting what a form sends the way that type needs.
    def convert(self, raw: Any) -> Any:  # noqa: PLR0912, PLR0915
        """Return ``raw`` as this field's type, or raise ValueError saying why it is not.

        Strings as a form sends them ("42", "0.5", "true") are converted where that is
        unambiguous; a bool is never an int, an int is a fine float.
        """
        kind = self.field_type
        if kind == "list":
            if not isinstance(raw, (list, tuple)):
                raise ValueError(f"expected a list, got {type(raw).__name__}")
            value: Any = list(raw)
        elif kind == "dict":
            if not isinstance(raw, Mapping):
                raise ValueError(f"expected a mapping, got {type(raw).__name__}")
            value = dict(raw)
        elif kind == "str":
            if not isinstance(raw, str):
                raise ValueError(f"expected text, got {type(raw).__name__}")
            value = raw
        elif kind == "bool":
            if isinstance(raw, bool):
                value = raw
            elif isinstance(raw, str) and raw.strip().lower() in _TRUE_STRINGS:
                value = True
            elif isinstance(raw, str) and raw.strip().lower() in _FALSE_STRINGS:
                value = False
            else:
                raise ValueError(f"expected true or false, got {raw!r}")
        elif kind == "int":
            if isinstance(raw, bool):
                raise ValueError("expected a whole number, got a boolean")
            if isinstance(raw, int):
                value = raw
            elif isinstance(raw, str):
                try:
                    value = int(raw.strip())
                except ValueError:
                    raise ValueError(f"expected a whole number, got {raw!r}") from None
            else:
                raise ValueError(f"expected a whole number, got {type(raw).__name__}")
        else:  # float
            if isinstance(raw, bool):
                raise ValueError("expected a number, got a boolean")
            if isinstance(raw, (int, float)):
                value = float(raw)
            elif isinstance(raw, str):
                try:
                    value = float(raw.strip())
                except ValueError:
                    raise ValueError(f"expected a number, got {raw!r}") from None
            else:
                raise ValueError(f"expected a number, got {type(raw).__name__}")
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {raw!r}")
        if self.allowed_values is not None and value not in self.allowed_values:
            allowed = ", ".join(repr(v) for v in self.allowed_values)
            raise ValueError(f"{value!r} is not one of the allowed values ({allowed})")
        return value

    def to_dict(self) -> dict[str, Any]:
        """Its stored form; ``from_dict`` reads it back."""
        return {
            "name": self.name,
            "field_type": self.field_type,
            "description": self.description,
            "required": self.required,
            "allowed_values": self.allowed_values,
            "value": self.value,
        }

    @classmethod
    def coerce(cls, spec: UserInputField | Mapping[str, Any]) -> UserInputField:
        """A schema entry given as a ``UserInputField`` or as a dict (agno allows both)."""
        if isinstance(spec, UserInputField):
            return spec.copy()
        if isinstance(spec, Mapping):
            if "name" not in spec:
                raise ValueError(f"a user input field given as a dict needs a 'name': {spec!r}")
            unknown = set(spec) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(
                    f"user input field {spec['name']!r}: unknown keys {sorted(unknown)}"
                )
            return cls.from_dict(spec)
        raise TypeError(f"user_input_schema entries must be UserInputField or dict, got {spec!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UserInputField:
        """A field from its stored form (type ``str`` and required unless it says otherwise)."""
        return cls(
            name=data["name"],
            field_type=data.get("field_type") or "str",
            description=data.get("description"),
            required=bool(data.get("required", True)),
            allowed_values=data.get("allowed_values"),
            value=data.get("value"),
        )


def validate_user_input(
    step_name: str,
    schema: list[UserInputField] | None,
    values: Mapping[str, Any],
) -> dict[str, Any]:
    """Check every value against ``schema`` at once; return the converted values.

    Raises UserInputValidationError naming every bad field. A step without a schema
    accepts any keys, unconverted.
    """
    if not schema:
        return dict(values)
    by_name = {f.name: f for f in schema}
    errors: dict[str, str] = {}
    converted: dict[str, Any] = {}
    for name in values:
        if name not in by_name:
            errors[name] = f"unknown field (expected one of: {', '.join(by_name)})"
    for name, spec in by_name.items():
        raw = values.get(name)
        if raw is None or (isinstance(raw, str) and raw.strip() == "" and spec.field_type != "str"):
            if spec.required:
                errors[name] = "this field is required"
            continue
        if spec.field_type == "str" and spec.required and isinstance(raw, str) and not raw.strip():
            errors[name] = "this field is required"
            continue
        try:
            converted[name] = spec.convert(raw)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise UserInputValidationError(step_name, errors)
    return converted


@dataclass
class StepOutput:
    """What a step produced. ``skipped`` marks a step rejected with ``OnReject.skip``.

    A group (Steps, Parallel, Loop, Condition, Router) produces one output whose ``steps``
    are its children's outputs. ``is_paused`` is how an agent's output says it waits for
    answers to its own requirements (``requirements``), as agno's agents do.
    """

    content: Any = None
    step_name: str | None = None
    success: bool = True
    error: str | None = None
    skipped: bool = False
    # A step may end the workflow early (successfully) by returning stop=True.
    stop: bool = False
    step_type: str | None = None
    steps: list[StepOutput] | None = None
    is_paused: bool = False
    step_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Its stored form, JSON-safe; ``from_dict`` reads it back."""
        data: dict[str, Any] = {
            "step_name": self.step_name,
            "content": _jsonable(self.content),
            "success": self.success,
            "error": self.error,
            "skipped": self.skipped,
            "stop": self.stop,
        }
        # Only when set: runs stored by the previous release have none of these.
        if self.step_type is not None:
            data["step_type"] = self.step_type
        if self.steps is not None:
            data["steps"] = [s.to_dict() for s in self.steps]
        if self.is_paused:
            data["is_paused"] = True
        if self.step_id is not None:
            data["step_id"] = self.step_id
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepOutput:
        """An output from its stored form, with its nested outputs (a group's steps)."""
        children = data.get("steps")
        return cls(
            content=data.get("content"),
            step_name=data.get("step_name"),
            success=bool(data.get("success", True)),
            error=data.get("error"),
            skipped=bool(data.get("skipped", False)),
            stop=bool(data.get("stop", False)),
            step_type=data.get("step_type"),
            steps=[cls.from_dict(c) for c in children] if children is not None else None,
            is_paused=bool(data.get("is_paused", False)),
            step_id=data.get("step_id"),
        )

    def find(self, step_name: str) -> StepOutput | None:
        """This output or the nearest descendant named ``step_name``."""
        if self.step_name == step_name:
            return self
        for child in self.steps or ():
            found = child.find(step_name)
            if found is not None:
                return found
        return None


@dataclass
class StepInput:
    """What a step receives: the run's input, earlier results and extra data.

    ``additional_data["user_input"]`` holds the values a person gave at this step's pause.
    """

    input: Any = None
    previous_step_content: Any = None
    previous_step_outputs: dict[str, StepOutput] = field(default_factory=dict)
    additional_data: dict[str, Any] = field(default_factory=dict)
    workflow_name: str | None = None
    run_id: str | None = None
    session_id: str | None = None
    step_name: str | None = None

    @property
    def user_input(self) -> dict[str, Any]:
        """The values a person submitted at this step's pause (a copy; empty if none)."""
        return dict(self.additional_data.get("user_input") or {})

    @property
    def rejection_feedback(self) -> str | None:
        """The reviewer's feedback when this step runs again after ``reject(feedback=...)``."""
        feedback = self.additional_data.get("rejection_feedback")
        return feedback if isinstance(feedback, str) else None

    def get_step_output(self, step_name: str) -> StepOutput | None:
        """The output of an earlier step (at any depth: inside groups too)."""
        output = self.previous_step_outputs.get(step_name)
        if output is not None:
            return output
        for candidate in self.previous_step_outputs.values():
            found = candidate.find(step_name)
            if found is not None:
                return found
        return None

    def get_step_content(self, step_name: str) -> Any:
        """The content of an earlier step; for a Parallel, its branches' contents by name."""
        output = self.get_step_output(step_name)
        if output is None:
            return None
        if output.step_type == "Parallel" and output.steps:
            return {c.step_name or "": c.content for c in output.steps}
        return output.content

    def get_all_previous_content(self) -> str:
        """Every earlier step's content, each under a ``=== name ===`` heading."""
        return "\n\n".join(
            f"=== {name} ===\n{out.content}"
            for name, out in self.previous_step_outputs.items()
            if out.content is not None
        )

    def get_last_step_content(self) -> Any:
        """The previous step's content (agno's name for ``previous_step_content``)."""
        return self.previous_step_content

    def get_input_as_string(self) -> str:
        """The run's input as text; empty when there is none."""
        return "" if self.input is None else str(self.input)


def to_timedelta(value: timedelta | float | int | None, *, what: str) -> timedelta | None:
    """A timedelta from a timedelta or seconds, checked to be positive; errors name ``what``."""
    if value is None or isinstance(value, timedelta):
        result = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        result = timedelta(seconds=value)
    else:
        raise TypeError(f"{what} must be a timedelta or a number of seconds, got {value!r}")
    if result is not None and result <= timedelta(0):
        raise ValueError(f"{what} must be positive, got {result}")
    return result


def _jsonable(value: Any) -> Any:
    """Content is stored as JSON; anything else is kept as its string form."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    return str(value)


@dataclass
class HumanReview:
    """Every human pause of a component in one object, as agno groups them:
    ``Step(human_review=HumanReview(requires_confirmation=True, timeout=3600))``.

    Which fields a component takes: confirmation on every component; user input and output
    review on Step and Router; iteration review on Loop. A field a component cannot use is
    a configuration error, not silently ignored.
    """

    requires_confirmation: bool = False
    confirmation_message: str | None = None
    requires_user_input: bool = False
    user_input_message: str | None = None
    user_input_schema: list[Any] | None = None
    requires_output_review: Any = False  # bool, or a callable deciding from the StepOutput
    output_review_message: str | None = None
    requires_iteration_review: bool = False
    iteration_review_message: str | None = None
    on_reject: OnReject | str | None = None
    on_error: OnError | str | None = None
    max_retries: int = 3
    timeout: float | None = None  # seconds, like hitl_timeout
    on_timeout: OnTimeout | str = OnTimeout.cancel

    def __post_init__(self) -> None:
        if self.requires_output_review and self.requires_iteration_review:
            raise ValueError(
                "HumanReview: requires_output_review (Step, Router) and "
                "requires_iteration_review (Loop) cannot both be set"
            )

    def check_for(self, component: str, *, supports: frozenset[str]) -> None:
        """Refuse the fields ``component`` cannot honour."""
        used = {
            "requires_user_input": bool(self.requires_user_input),
            "requires_output_review": bool(self.requires_output_review),
            "requires_iteration_review": bool(self.requires_iteration_review),
        }
        unsupported = sorted(k for k, v in used.items() if v and k not in supports)
        if unsupported:
            raise ValueError(f"HumanReview on {component}: {', '.join(unsupported)} not supported")
