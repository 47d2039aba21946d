from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    pending = "pending"
    running = "running"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"
    error = "error"

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.completed, RunStatus.cancelled, RunStatus.error)
