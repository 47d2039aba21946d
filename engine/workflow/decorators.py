"""``@pause``: declare a function's human-in-the-loop settings where the function is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from engine.workflow.types import OnError, OnReject, UserInputField

F = TypeVar("F", bound=Callable[..., Any])
PAUSE_CONFIG_ATTR = "__signoff_pause__"


@dataclass(frozen=True)
class PauseConfig:
    """The pause options ``@pause`` attached to a function, read when it becomes a Step."""

    name: str | None = None
    requires_confirmation: bool = False
    confirmation_message: str | None = None
    requires_user_input: bool = False
    user_input_message: str | None = None
    user_input_schema: tuple[UserInputField, ...] = ()
    on_reject: OnReject | str | None = None
    pause_timeout: timedelta | float | None = None
    requires_output_review: bool = False
    output_review_message: str | None = None
    on_error: OnError | str | None = None


# Keyword-only options, the same as Step's pause options.
def pause(  # noqa: PLR0913
    *,
    name: str | None = None,
    requires_confirmation: bool = False,
    confirmation_message: str | None = None,
    requires_user_input: bool = False,
    user_input_message: str | None = None,
    user_input_schema: list[UserInputField] | list[dict[str, Any]] | None = None,
    on_reject: OnReject | str | None = None,
    pause_timeout: timedelta | float | None = None,
    requires_output_review: bool = False,
    output_review_message: str | None = None,
    on_error: OnError | str | None = None,
) -> Callable[[F], F]:
    """Mark a step function as pausing; a ``Step(executor=fn)`` picks the settings up
    (``name`` names the step when the Step gives none)."""
    config = PauseConfig(
        name=name,
        requires_confirmation=requires_confirmation,
        confirmation_message=confirmation_message,
        requires_user_input=requires_user_input,
        user_input_message=user_input_message,
        user_input_schema=tuple(UserInputField.coerce(f) for f in user_input_schema or ()),
        on_reject=on_reject,
        pause_timeout=pause_timeout,
        requires_output_review=requires_output_review,
        output_review_message=output_review_message,
        on_error=on_error,
    )

    def decorate(fn: F) -> F:
        setattr(fn, PAUSE_CONFIG_ATTR, config)
        return fn

    return decorate


def get_pause_config(fn: object) -> PauseConfig | None:
    """The ``PauseConfig`` that ``@pause`` put on ``fn``, or None if it has none."""
    config = getattr(fn, PAUSE_CONFIG_ATTR, None)
    return config if isinstance(config, PauseConfig) else None
