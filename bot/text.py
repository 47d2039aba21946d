"""Content we did not write, made safe for Slack: the one place that escapes it.

Run input, step output, error text, reasons and values typed by people, workflow and step
names: all of it reaches Slack through these functions, so no mention (``<!channel>``,
``<@U…>``), link (``<http…|…>``) or code fence in the content comes alive in a message.
Text the bot writes itself (mentions of known IDs, dates, formatting) is added around the
escaped content, never inside it.
"""

from __future__ import annotations

import json
from typing import Any

# A backtick in content would close our code span or fence; U+02CB looks the same and is inert.
_INERT_BACKTICK = "\u02cb"
_INERT_FENCE = _INERT_BACKTICK * 3


def as_text(value: Any) -> str:
    """A value as a person reads it: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def clip(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(value: Any) -> str:
    """Content for mrkdwn (and a message's notification ``text``): ``&``, ``<`` and ``>``
    escaped as Slack requires, so nothing in it is parsed as a mention, link or date; and a
    code fence in it made inert, so it cannot open or close a code block of ours."""
    text = as_text(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("```", _INERT_FENCE)


def escape_clipped(value: Any, limit: int) -> str:
    """``escape`` of the content clipped to ``limit`` characters *before* escaping (so an
    entity is never cut in half), then clipped again in case the entities made it longer."""
    return clip(escape(clip(as_text(value), limit)), limit)


def code(value: Any, limit: int) -> str:
    """Content as inline code: escaped, backticks made inert, clipped to ``limit``."""
    inner = escape_clipped(value, max(limit - 2, 1)).replace("`", _INERT_BACKTICK)
    return f"`{inner}`" if inner else ""


def code_block(value: Any, limit: int) -> str:
    """Content as a code block that survives whatever it holds: escaped, its backticks made
    inert (a fence in the content cannot close ours), clipped to ``limit`` with the fences."""
    inner = escape_clipped(value, max(limit - 6, 1)).replace("`", _INERT_BACKTICK)
    return f"```{inner}```"


def one_line(value: Any) -> str:
    """Content on one line (for context lines and labels): newlines become spaces."""
    return " ".join(as_text(value).split())


__all__ = ["as_text", "clip", "code", "code_block", "escape", "escape_clipped", "one_line"]
