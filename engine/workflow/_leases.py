"""Leases on running runs: held while this process runs their steps, renewed by one small
thread per workflow, so that another process can tell a live run from one whose process died."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.db.base import BaseDb

log = logging.getLogger("engine.leases")
_suffix = (os.getpid(), uuid.uuid4().hex[:8])


def process_owner_id() -> str:
    """Who holds a lease: host, pid and a random part (a pid can be reused)."""
    global _suffix
    if _suffix[0] != os.getpid():  # forked
        _suffix = (os.getpid(), uuid.uuid4().hex[:8])
    return f"{socket.gethostname()}:{_suffix[0]}:{_suffix[1]}"


class LeaseKeeper:
    def __init__(
        self, *, db: Callable[[], BaseDb], now: Callable[[], datetime], lease: timedelta
    ) -> None:
        self._db = db
        self._now = now
        self.lease = lease
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def until(self) -> datetime:
        return self._now() + self.lease

    def hold(self, run_id: str) -> None:
        with self._lock:
            self._held.add(run_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._renew_loop, daemon=True, name="engine-leases"
                )
                self._thread.start()

    def release(self, run_id: str) -> None:
        with self._lock:
            self._held.discard(run_id)

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def renew_now(self) -> int:
        held = self.held()
        if not held:
            return 0
        return self._db().renew_leases(process_owner_id(), held, until=self.until())

    def _renew_loop(self) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while True:
            self._wake.wait(interval)
            if not self.held():
                with self._lock:
                    if not self._held:
                        self._thread = None
                        return
            try:
                self.renew_now()
            except Exception:  # the database may be briefly unreachable; try again
                log.warning("could not renew run leases", exc_info=True)
