"""``RunStatus``: where a run stands."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run stands; completed, cancelled and error are final."""

    pending = "pending"
    running = "running"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"
    error = "error"

    @property
    def is_final(self) -> bool:
        """Whether the run has ended and will never change again."""
        return self in (RunStatus.completed, RunStatus.cancelled, RunStatus.error)
