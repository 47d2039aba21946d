"""Reading Slack payloads defensively: no field is trusted to be there or well-typed."""

from __future__ import annotations

from typing import Any


def dig(data: Any, *path: str | int) -> Any:
    """``data[path...]``, or None where any step of the path is missing or mistyped."""
    for key in path:
        if isinstance(key, int):
            if not isinstance(data, list) or not -len(data) <= key < len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[key] if isinstance(key, int) else data.get(key)
    return data
