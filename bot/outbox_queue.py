"""Adding items to the durable outbox, and waking its worker.

``batch`` gathers what one engine event (or one reminder) causes, so it commits as one
transaction; outside a batch each item is written at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from bot.store import BotStore

# (dedupe key, run id or group, kind, data): one outbox row to add.
Item = tuple[str, str, str, dict[str, Any]]


class OutboxQueue:
    """Writes outbox rows (in the current batch, when there is one) and wakes the worker."""

    def __init__(self, store: BotStore, *, wakeup: threading.Event) -> None:
        self.store = store
        self.wakeup = wakeup
        self._batch = threading.local()

    @contextmanager
    def batch(self, now: datetime) -> Iterator[None]:
        """Enqueue everything added in this block in one commit (fewer durable writes)."""
        self._batch.items = []
        try:
            yield
        finally:
            items, self._batch.items = self._batch.items, None
            if items and self.store.enqueue_many(items, now=now):
                self.wakeup.set()

    def enqueue(
        self, key: str, run_id: str, kind: str, data: dict[str, Any], now: datetime
    ) -> None:
        """Add an outbox item (in the current batch, when there is one)."""
        batch = getattr(self._batch, "items", None)
        if batch is not None:
            batch.append((key, run_id, kind, data))
            return
        if self.store.enqueue(key=key, run_id=run_id, kind=kind, data=data, now=now):
            self.wakeup.set()


__all__ = ["Item", "OutboxQueue"]
