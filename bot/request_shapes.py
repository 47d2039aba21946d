"""The shapes of Slack requests the bot accepts, checked before Bolt's middleware and the
listeners see them (``bot.middleware.shapes``).

Bolt assumes well-formed payloads (a ``"view": null`` makes it raise); anything that is
not shaped like a request Slack sends is refused with a 400, and changes nothing. Nesting
is bounded too: Slack's payloads are a dozen levels deep, and anything that walks a payload
recursively (``json.dumps``, validation) fails at Python's recursion limit.
Only structure is checked: what the values mean is looked up and checked by the listeners.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _User(_Loose):
    id: str


class _Action(_Loose):
    action_id: str
    block_id: str | None = None
    value: str | None = None


class _ViewState(_Loose):
    values: dict[str, dict[str, dict[str, Any]]]


class _View(_Loose):
    type: str  # "modal" or "home"; Bolt reads it unconditionally
    id: str | None = None
    callback_id: str
    private_metadata: str | None = None
    hash: str | None = None
    state: _ViewState | None = None
    blocks: list[dict[str, Any]] | None = None


class _BlockActions(_Loose):
    type: Literal["block_actions"]
    user: _User
    actions: Annotated[list[_Action], Field(min_length=1)]
    trigger_id: str | None = None
    channel: dict[str, Any] | None = None
    container: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    view: _View | None = None


class _ViewSubmission(_Loose):
    type: Literal["view_submission", "view_closed"]
    user: _User
    view: _View


class _EventCallback(_Loose):
    type: Literal["event_callback"]
    event: dict[str, Any]


class _UrlVerification(_Loose):
    type: Literal["url_verification"]
    challenge: str


_Interactive = TypeAdapter(
    Annotated[
        _BlockActions | _ViewSubmission | _EventCallback | _UrlVerification,
        Field(discriminator="type"),
    ]
)


class _SlashCommand(_Loose):
    command: str
    user_id: str
    text: str = ""
    channel_id: str | None = None
    trigger_id: str | None = None


MAX_NESTING = 64


def nesting_exceeds(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``value`` has dicts or lists nested more than ``limit`` deep (without recursing)."""
    if not isinstance(value, dict | list):
        return False
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        pending.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def request_problem(body: Any) -> str | None:
    """None if ``body`` (as Bolt parsed it) is shaped like a request we handle, else why not."""
    if not isinstance(body, dict) or not body:
        return "empty"
    if nesting_exceeds(body):
        return f"nested more than {MAX_NESTING} deep"
    try:
        if "command" in body:
            _SlashCommand.model_validate(body)
        else:
            _Interactive.validate_python(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        return f"{where}: {first['msg']}"
    return None
