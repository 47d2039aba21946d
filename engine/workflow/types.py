"""Value types of a workflow: what a step receives, what it returns, what a pause asks for."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from engine.errors import UserInputValidationError

FIELD_TYPES = ("str", "int", "float", "bool")
_TRUE_STRINGS = frozenset({"true", "yes", "y", "1", "on"})
_FALSE_STRINGS = frozenset({"false", "no", "n", "0", "off"})


class OnReject(StrEnum):
    """What happens to a run when a paused step is rejected (or its deadline passes)."""

    skip = "skip"
    cancel = "cancel"

    @classmethod
    def parse(cls, value: OnReject | str) -> OnReject:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(
                f"on_reject must be one of {[m.value for m in cls]}, got {value!r}"
            ) from None


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
        return dataclasses.replace(
            self, allowed_values=list(self.allowed_values) if self.allowed_values else None
        )

    def convert(self, raw: Any) -> Any:
        """Return ``raw`` as this field's type, or raise ValueError saying why it is not.

        Strings as a form sends them ("42", "0.5", "true") are converted where that is
        unambiguous; a bool is never an int, an int is a fine float.
        """
        kind = self.field_type
        if kind == "str":
            if not isinstance(raw, str):
                raise ValueError(f"expected text, got {type(raw).__name__}")
            value: Any = raw
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
        return {
            "name": self.name,
            "field_type": self.field_type,
            "description": self.description,
            "required": self.required,
            "allowed_values": self.allowed_values,
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UserInputField:
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
    """What a step produced. ``skipped`` marks a step rejected with ``OnReject.skip``."""

    content: Any = None
    step_name: str | None = None
    success: bool = True
    error: str | None = None
    skipped: bool = False
    # A step may end the workflow early (successfully) by returning stop=True.
    stop: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_name": self.step_name,
            "content": _jsonable(self.content),
            "success": self.success,
            "error": self.error,
            "skipped": self.skipped,
            "stop": self.stop,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepOutput:
        return cls(
            content=data.get("content"),
            step_name=data.get("step_name"),
            success=bool(data.get("success", True)),
            error=data.get("error"),
            skipped=bool(data.get("skipped", False)),
            stop=bool(data.get("stop", False)),
        )


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
        return dict(self.additional_data.get("user_input") or {})

    def get_step_content(self, step_name: str) -> Any:
        output = self.previous_step_outputs.get(step_name)
        return output.content if output else None

    def get_input_as_string(self) -> str:
        return "" if self.input is None else str(self.input)


def to_timedelta(value: timedelta | float | int | None, *, what: str) -> timedelta | None:
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
