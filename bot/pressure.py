"""Requests first: background work steps aside while Slack's requests wait.

One process runs the front door (HTTP, Bolt, the inbox insert) and the background (applying
recorded interactions, running the steps after a decision, delivering the outbox) under one
interpreter lock. Past what the machine can apply, the background would take the lock from
the front door and acks would pass Slack's 3 s. So the front door reports how it is doing
— requests in flight, how long the oldest has waited, how late the event loop runs — and
each background item first waits, for a bounded time, while it is under pressure: acks stay
fast, and what was recorded is applied as soon as the burst ends (the inbox is durable).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta

# A request older than this, or an event loop this late, means requests are queueing.
REQUEST_AGE_LIMIT = timedelta(milliseconds=100)
LOOP_LAG_LIMIT = timedelta(milliseconds=25)
LOOP_TICK = timedelta(milliseconds=10)
# A background item waits at most this long for the pressure to pass, then goes anyway:
# under a sustained overload the backlog still moves, only slower.
MAX_YIELD = timedelta(milliseconds=250)
YIELD_STEP = timedelta(milliseconds=5)


class FrontDoorPressure:
    """How loaded the front door is, as seen by the background (thread-safe)."""

    def __init__(
        self,
        *,
        request_age_limit: timedelta = REQUEST_AGE_LIMIT,
        loop_lag_limit: timedelta = LOOP_LAG_LIMIT,
        max_yield: timedelta = MAX_YIELD,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._age_limit = request_age_limit.total_seconds()
        self._lag_limit = loop_lag_limit.total_seconds()
        self._max_yield = max_yield.total_seconds()
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}  # request number -> when it arrived
        self._next = 0
        self._loop_lag = 0.0
        self.yields = 0  # background items that waited (for /metrics and benchmarks)

    @contextmanager
    def request(self, arrived: float | None = None) -> Iterator[None]:
        """Around one request, from its arrival (``arrived``: a monotonic time) to its answer."""
        with self._lock:
            number = self._next
            self._next += 1
            self._started[number] = self._monotonic() if arrived is None else arrived
        try:
            yield
        finally:
            with self._lock:
                del self._started[number]

    def note_loop_lag(self, seconds: float) -> None:
        """How late the event loop ran its last tick."""
        self._loop_lag = max(0.0, seconds)

    def in_flight(self) -> int:
        """Requests being handled now."""
        return len(self._started)

    def under_pressure(self) -> bool:
        """Whether requests are queueing: one is being handled and it is old, or the event
        loop runs late. No request in flight: no pressure, however busy the machine is
        otherwise (the background has nobody to step aside for)."""
        with self._lock:
            oldest = min(self._started.values(), default=None)
        if oldest is None:
            return False
        return self._loop_lag > self._lag_limit or self._monotonic() - oldest > self._age_limit

    def step_aside(self) -> bool:
        """Called by a background worker before each item: wait while under pressure, at
        most ``max_yield``. Returns whether it waited."""
        if not self.under_pressure():
            return False
        self.yields += 1
        deadline = self._monotonic() + self._max_yield
        while self.under_pressure() and self._monotonic() < deadline:
            self._sleep(YIELD_STEP.total_seconds())
        return True

    @asynccontextmanager
    async def loop_watch(self) -> AsyncIterator[None]:
        """While the block runs (an ASGI lifespan), measure how late the event loop runs."""
        task = asyncio.create_task(self._tick())
        try:
            yield
        finally:
            task.cancel()

    async def _tick(self) -> None:
        tick = LOOP_TICK.total_seconds()
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(tick)
            self.note_loop_lag(loop.time() - before - tick)


