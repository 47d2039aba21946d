"""Time as the engine sees it. Deadlines are computed from an injected clock so tests
(and the bot's time-skipping test environment) can move time without sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the engine reads the time; inject one to control deadlines in tests."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The real time, for production."""

    def now(self) -> datetime:
        """Now, from the system clock, in UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: ``advance(timedelta(minutes=5))``."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The time this clock was last set or advanced to."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the time forward by ``delta`` and return the new time."""
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (timezone-aware), forwards or back."""
        require_aware(when, "ManualClock.set")
        with self._lock:
            self._now = when


SYSTEM_CLOCK = SystemClock()


def require_aware(value: datetime, what: str) -> datetime:
    """Deadlines are compared and stored in UTC: a naive datetime is a caller's mistake."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(
            f"{what} needs a timezone-aware datetime (e.g. datetime.now(UTC)), got {value!r}"
        )
    return value


def utcnow() -> datetime:
    """The wall-clock time in UTC, for timestamps no deadline depends on."""
    return datetime.now(UTC)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def format_time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "ManualClock",
    "SystemClock",
    "require_aware",
    "timedelta",
    "utcnow",
]
