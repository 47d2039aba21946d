"""Adding items to the durable outbox, and waking its worker.

``batch`` gathers what one engine event (or one reminder) causes, so it commits as one
transaction; outside a batch each item is written at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bot.store import BotStore

# (dedupe key, run id or group, kind, data): one outbox row to add.
Item = tuple[str, str, str, dict[str, Any]]
# Items made inside the transaction that adds them, from what it reads or changes there.
Producer = Callable[[Connection], list[Item]]


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
        self._batch.producers = []
        try:
            yield
        finally:
            items, self._batch.items = self._batch.items, None
            producers, self._batch.producers = self._batch.producers, None
            if producers:
                self._write(items, producers, now)
            elif items and self.store.enqueue_many(items, now=now):
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

    def enqueue_from(self, produce: Producer, now: datetime) -> None:
        """Add the items ``produce`` makes inside the transaction that adds them (the
        current batch's, when there is one): what it changes commits with them, or neither."""
        producers = getattr(self._batch, "producers", None)
        if producers is not None:
            producers.append(produce)
            return
        self._write([], [produce], now)

    def _write(self, items: list[Item], producers: list[Producer], now: datetime) -> None:
        with self.store.db.write() as conn:
            made = [item for produce in producers for item in produce(conn)]
            added = self.store.enqueue_on(conn, [*items, *made], now=now)
        if added:
            self.wakeup.set()


__all__ = ["Item", "OutboxQueue", "Producer"]
