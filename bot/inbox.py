"""The durable inbox: record, then acknowledge; apply after the ack, exactly once.

- ``InboxWriter``: a group-commit writer thread. A listener hands it one interaction and
  waits (at most ``RECORD_WAIT`` seconds); every interaction that arrives while a
  transaction runs goes into the next one, so a burst of clicks costs a few commits. The
  insert skips a key already recorded: a Slack retry or replay is a no-op.
- ``record_then_ack``: the one helper every state-changing listener calls. Recorded: the
  listener's ack goes out. Not recorded in time (database locked, down): the person is told
  at once — a slash command gets an ephemeral text, a modal an inline error, a button a 503
  (Slack then shows that the click did not go through) — never a 200 followed by a loss.
- ``ApplySlots``: the worker's apply threads, shared with the writer. An interaction
  recorded while a thread is free is recorded already leased to this process and handed
  to the worker in memory: no claim transaction, no poll between the ack and the apply.
- ``InboxWorker``: takes recorded interactions with a lease (an expired lease — a replica
  that died — is taken over), applies each through its handler (``decide``, ``start``…),
  retries transient failures with backoff and jitter, and after ``MAX_ATTEMPTS`` gives up,
  counts it in ``/metrics`` and tells the person. A decision's inbox row is marked done in
  the transaction that claims the pause (``engine.db.base.claim_hook``).
"""

from __future__ import annotations

import contextvars
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, BoltResponse
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import DBAPIError

from bot.kinds import InboxState
from bot.store import InboxEntry, InboxItem

if TYPE_CHECKING:
    from bot.decisions import DecisionResult
    from bot.service import Signoff

log = logging.getLogger("signoff.inbox")

RECORD_WAIT = 1.5  # seconds a listener waits for its insert: the ack stays well within 3 s
# Of Slack's 3 s, what may pass from a request's arrival until its insert is given up: a
# request that queued behind others for longer is refused at once (503: the person sees it
# failed), not recorded and applied after Slack has shown it failed.
ACK_BUDGET = 2.5
MIN_RECORD_WAIT = 0.05  # less than this left of the budget: refuse rather than try
LOCK_WAIT = 1.2  # seconds the insert waits for a lock another process holds
MAX_BATCH = 500
LEASE = timedelta(seconds=60)
START_LEASE = timedelta(minutes=10)  # a start is done when its run paused or ended
MAX_ATTEMPTS = 8
BASE_BACKOFF = 0.5
MAX_BACKOFF = 60.0
APPLY_THREADS = 4

NOT_RECORDED = (
    ":warning: Signoff could not record this just now (its database is busy or unreachable). "
    "Nothing was done: please try again in a moment."
)


class InboxUnavailableError(Exception):
    """The interaction could not be recorded in time; nothing was done."""


# When the HTTP request being handled in this thread arrived (time.monotonic()); set by the
# server around Bolt's dispatch, None elsewhere (Socket Mode, tests calling in directly).
RECEIVED_AT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "signoff_received_at", default=None
)


def record_budget() -> float:
    """How long recording may take for the request being handled: ``RECORD_WAIT``, less
    what its queueing already used of ``ACK_BUDGET``."""
    received = RECEIVED_AT.get()
    if received is None:
        return RECORD_WAIT
    return min(RECORD_WAIT, ACK_BUDGET - (time.monotonic() - received))


@dataclass
class _Pending:
    entry: InboxEntry
    deadline: float
    future: Future[bool] = field(default_factory=Future)


class ApplySlots:
    """The inbox worker's apply threads as slots, shared by the writer that records
    interactions and the worker that applies them (both given it by ``Signoff``).

    The writer reserves slots for what it is about to record, records those rows already
    leased, and hands them over (``hand_over``); the worker starts them at once. Rows that
    found no free slot wait for the worker's claim, as rows from other replicas do. No
    slot is free until the worker opens them (``open``): a worker that is not running is
    handed nothing."""

    def __init__(self, wakeup: threading.Event) -> None:
        self._wakeup = wakeup
        self._lock = threading.Lock()
        self._open = False
        self._free = 0
        self._handed: queue.SimpleQueue[InboxItem] = queue.SimpleQueue()
        self._left = False  # rows recorded with no slot free: for the worker's claim

    def open(self, size: int) -> None:
        """The worker is running with ``size`` apply threads."""
        with self._lock:
            self._open, self._free = True, size

    def close(self) -> None:
        """The worker stops: nothing more is reserved."""
        with self._lock:
            self._open = False

    def reserve(self, wanted: int) -> int:
        """Reserve up to ``wanted`` slots; returns how many were free."""
        with self._lock:
            got = max(0, min(wanted, self._free)) if self._open else 0
            self._free -= got
            return got

    def release(self, count: int = 1) -> None:
        """Give slots back (a row applied, or a reservation not used)."""
        with self._lock:
            self._free += count

    def hand_over(self, items: list[InboxItem]) -> None:
        """Items recorded leased to this process, one reserved slot each: start them."""
        for item in items:
            self._handed.put(item)
        self._wakeup.set()

    def left_for_claim(self) -> None:
        """Rows were recorded that found no slot free: the worker claims them."""
        with self._lock:
            self._left = True
        self._wakeup.set()

    def take_left(self) -> bool:
        """Whether rows were left for the claim since the last call."""
        with self._lock:
            left, self._left = self._left, False
            return left

    def take_handed(self) -> list[InboxItem]:
        """What was handed over since the last call."""
        taken: list[InboxItem] = []
        while True:
            try:
                taken.append(self._handed.get_nowait())
            except queue.Empty:
                return taken


class InboxWriter:
    """Batches concurrent inserts into one transaction (group commit), each bounded."""

    def __init__(self, signoff: Signoff, *, wait: float = RECORD_WAIT) -> None:
        self.signoff = signoff
        self.slots = signoff.apply_slots
        self.wait = wait
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="signoff-inbox-writer", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop the writer thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def record(self, entry: InboxEntry, *, wait: float | None = None) -> bool:
        """Record ``entry`` durably; True if it is new, False for a repeat of its key.
        Raises ``InboxUnavailableError`` if that did not happen within ``wait`` seconds
        (default: the writer's, less what the request's queueing used: ``record_budget``)."""
        wait = min(self.wait, record_budget()) if wait is None else wait
        if wait <= MIN_RECORD_WAIT:
            raise InboxUnavailableError("the request waited too long before it was handled")
        self._ensure_started()
        pending = _Pending(entry, time.monotonic() + wait)
        self._queue.put(pending)
        try:
            return pending.future.result(timeout=wait)
        except FutureTimeout:
            # The writer skips an entry whose deadline passed before its transaction began;
            # one already in a transaction may still commit, and is then applied: the
            # person was told to retry, and a retry finds the step decided.
            raise InboxUnavailableError("timed out") from None
        except InboxUnavailableError:
            raise
        except Exception as exc:
            raise InboxUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        now_mono = time.monotonic()
        live = []
        for item in batch:
            if item.deadline <= now_mono:
                item.future.set_exception(InboxUnavailableError("timed out before recording"))
            else:
                live.append(item)
        if not live:
            return
        # What will be applied goes first, as many as apply threads are free: those are
        # recorded leased to this process and handed straight to the worker.
        live.sort(key=lambda item: item.entry.data is None)
        applicable = sum(1 for item in live if item.entry.data is not None)
        reserved = self.slots.reserve(applicable)
        remaining = min(item.deadline for item in live) - now_mono
        try:
            inserted = self.signoff.store.record_inbox(
                [item.entry for item in live],
                now=self.signoff.clock.now(),
                lock_timeout=max(0.05, min(LOCK_WAIT, remaining - 0.1)),
                leased=reserved,
                lease=LEASE,
            )
        except Exception as exc:
            self.slots.release(reserved)
            log.warning("recording %d interactions failed: %s", len(live), exc)
            for item in live:
                item.future.set_exception(InboxUnavailableError(str(exc)))
            return
        self.batches += 1
        handed = [
            item.entry.taken()
            for item, new in zip(live[:reserved], inserted[:reserved], strict=True)
            if new
        ]
        if len(handed) < reserved:
            self.slots.release(reserved - len(handed))  # repeats: recorded before
        if handed:
            self.slots.hand_over(handed)
        for item, new in zip(live, inserted, strict=True):
            item.future.set_result(new)
        if any(inserted[reserved:]):
            self.slots.left_for_claim()


# -- the one helper listeners call --------------------------------------------------------------
def record_then_ack(
    signoff: Signoff,
    ack: Ack,
    *,
    key: str | None,
    kind: str,
    user_id: str,
    data: dict[str, Any],
    surface: str,
    ack_kwargs: dict[str, Any] | None = None,
    error_block: str | None = None,
) -> bool:
    """Record an interaction that changes state, then ack it; returns whether it was new.

    ``surface`` says how to tell the person when it could not be recorded: ``"command"``
    (ephemeral text in the ack), ``"view"`` (``response_action: errors`` on
    ``error_block``) or ``"action"`` (HTTP 503). A repeat (same ``key``) is acked the same
    way and does nothing. ``key`` None (no de-dup key in the payload) records under a fresh
    key, so it still acts once per delivery.
    """
    if key is None:
        import uuid

        key = f"nokey:{uuid.uuid4().hex}"
    try:
        new = signoff.inbox_writer.record(InboxEntry(key, kind, user_id, data))
    except InboxUnavailableError as exc:
        log.warning("could not record %s %s: %s", kind, key, exc)
        signoff.metrics.inbox_record_failures.inc()
        _refuse(ack, surface, error_block)
        return False
    if not new:
        log.info("dropping repeated delivery %s", key)
    ack(**(ack_kwargs or {}))
    return new


def _refuse(ack: Ack, surface: str, error_block: str | None) -> None:
    if surface == "command":
        ack(text=NOT_RECORDED, response_type="ephemeral")
    elif surface == "view":
        from bot import blocks

        ack(response_action="errors", errors={error_block or "_": blocks.modal_error(NOT_RECORDED)})
    else:
        # Not ack(): Slack shows the person a click that failed, and nothing happened.
        ack.response = BoltResponse(status=503, body={"error": "could not record the interaction"})


# -- applying what was recorded ------------------------------------------------------------------
# Applies one recorded interaction of its kind.
Handler = Callable[[InboxItem], "DecisionResult | None"]


def _transient(exc: BaseException) -> bool:
    """Whether ``exc`` may go away by itself (retry it), or says the work cannot be done."""
    if isinstance(exc, DBAPIError):
        return True  # locked, down, connection reset: all pass
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", HTTPStatus.OK)
        return status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR
    return isinstance(exc, (TimeoutError, OSError, ConnectionError))


class InboxWorker:
    """Applies recorded interactions: takes due rows with a lease (another replica takes
    them over when a lease expires), runs each kind's handler, retries transient failures
    with back-off and jitter, and gives up after a bound, telling the person."""

    def __init__(
        self,
        signoff: Signoff,
        *,
        handlers: Mapping[str, Handler],
        reply: Callable[[InboxItem, str], None],
        poll_interval: float = 0.5,
    ) -> None:
        self.signoff = signoff
        # What to do with each recorded kind (a handler returns None when it finishes the
        # row itself), and how to tell the person how it went.
        self.handlers = dict(handlers)
        self.reply = reply
        self.poll_interval = poll_interval
        self.slots = signoff.apply_slots
        # Whether rows may be due that no claim took: a claim that filled every free thread
        # (or found none free), rows the writer could not hand over, a poll's tick.
        self._more_due = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=APPLY_THREADS, thread_name_prefix="inbox")
        self._rng = random.Random()

    def start(self) -> None:
        """Start the worker thread (and take rows handed over by the writer)."""
        self._thread = threading.Thread(target=self._loop, name="signoff-inbox", daemon=True)
        self._thread.start()
        self.slots.open(APPLY_THREADS)

    def stop(self) -> None:
        """Stop after the row being applied."""
        self.slots.close()
        self._stop.set()
        self.signoff.inbox_wakeup.set()
        if self._thread:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            woken = self.signoff.inbox_wakeup.wait(self.poll_interval)
            self.signoff.inbox_wakeup.clear()
            try:
                self._start(self.slots.take_handed())
                # Rows handed over need no claim; one is made only when rows may wait in
                # the table (the writer left some, a claim was full, or a poll's tick:
                # other replicas' rows, retries come due, leases run out).
                if self.slots.take_left() or self._more_due or not woken:
                    while not self._stop.is_set() and self._take_for_free_threads():
                        pass
            except Exception:
                log.exception("inbox pass failed")

    def _take_for_free_threads(self) -> bool:
        """Claim as many due rows as apply threads are free, and start each on one: a row
        recorded while others are being applied starts as soon as a thread frees, not
        after the whole batch before it. True when every free thread got a row (more may
        be due); a thread that finishes wakes the loop."""
        free = self.slots.reserve(APPLY_THREADS)
        if free <= 0:
            self._more_due = True  # not looked: a thread that frees looks
            return False
        try:
            items = self.signoff.store.claim_inbox(
                now=self.signoff.clock.now(), lease=LEASE, limit=free
            )
        except Exception:
            self.slots.release(free)
            raise
        if len(items) < free:
            self.slots.release(free - len(items))
        self._start(items)
        self._more_due = len(items) == free
        return self._more_due

    def _start(self, items: list[InboxItem]) -> None:
        """Apply each item on a pool thread (its slot reserved); the slot frees after."""
        for item in items:
            self._pool.submit(self.apply, item).add_done_callback(self._thread_freed)

    def _thread_freed(self, _done: Future[None]) -> None:
        self.slots.release(1)
        self.signoff.inbox_wakeup.set()  # a row that found every thread busy may start

    def apply_due(self, *, in_this_thread: bool = False) -> int:
        """One pass: claim what is due and apply it (in parallel, or ``in_this_thread``),
        waiting for all of it. Returns how many were taken."""
        now = self.signoff.clock.now()
        items = self.signoff.store.claim_inbox(now=now, lease=LEASE)
        if in_this_thread:
            for item in items:
                self.apply(item)
        elif items:
            list(self._pool.map(self.apply, items))
        return len(items)

    def apply(self, item: InboxItem) -> None:
        """Apply one taken row with its kind's handler; record done, retry or given up."""
        signoff = self.signoff
        signoff.pressure.step_aside()  # Slack's requests waiting go first
        handler = self.handlers.get(item.kind)
        if handler is None:
            self._give_up(item, f"no handler for {item.kind!r}")
            return
        try:
            result = handler(item)
        except Exception as exc:
            if _transient(exc) and item.attempts < MAX_ATTEMPTS:
                delay = min(MAX_BACKOFF, BASE_BACKOFF * 2 ** (item.attempts - 1))
                delay *= 0.5 + self._rng.random()  # jitter: replicas do not retry in step
                at = signoff.clock.now() + timedelta(seconds=delay)
                log.warning("will retry %s %s in %.1fs: %s", item.kind, item.key, delay, exc)
                signoff.metrics.inbox_retries.labels(kind=item.kind).inc()
                error = repr(exc)
                self._safely(lambda: signoff.store.retry_inbox(item.key, at=at, error=error))
                return
            log.error("applying %s %s failed", item.kind, item.key, exc_info=exc)
            self._give_up(item, f"{type(exc).__name__}: {exc}")
            return
        if result is None:
            return  # the handler finishes the row itself (in a claim, or later)
        self._safely(
            lambda: signoff.store.finish_inbox(
                item.key, state=InboxState.done, now=signoff.clock.now()
            )
        )
        if not result.ok or result.tell:
            self.reply(item, result.message)

    def _give_up(self, item: InboxItem, error: str) -> None:
        signoff = self.signoff
        signoff.metrics.inbox_given_up.labels(kind=item.kind).inc()
        self._safely(
            lambda: signoff.store.finish_inbox(
                item.key, state=InboxState.failed, now=signoff.clock.now(), error=error[:2000]
            )
        )
        self.reply(
            item,
            ":x: Signoff could not carry this out after several tries; nothing was decided. "
            "Please try again.",
        )

    @staticmethod
    def _safely(write: Callable[[], None]) -> None:
        try:
            write()
        except Exception:
            # The lease lapses and the row is taken again: applying is idempotent.
            log.warning("recording an inbox outcome failed", exc_info=True)


def drain(signoff: Signoff, worker: InboxWorker, *, timeout: float = 10.0) -> int:
    """Apply every due interaction now, in this thread (tests: wait for exactly this)."""
    applied = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = worker.apply_due(in_this_thread=True)
        applied += n
        if n == 0:
            return applied
    raise TimeoutError("the inbox did not drain")
