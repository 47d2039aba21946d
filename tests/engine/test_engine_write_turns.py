"""SQLite write turns: this process's writers one at a time, an urgent one first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from engine.db.sqlite import SqliteDb, WriteTurns

WAIT_S = 10.0


def _until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds (each checks a waiter is parked in the turns)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _waiters(turns: WriteTurns) -> int:
    return len(turns._cond._waiters)  # type: ignore[attr-defined]  # Condition's own list


def test_an_urgent_writer_goes_before_ordinary_writers_waiting() -> None:
    turns = WriteTurns()
    order: list[str] = []

    def writer(name: str, *, urgent: bool) -> None:
        assert turns.acquire(urgent=urgent, timeout=WAIT_S)
        order.append(name)
        turns.release()

    assert turns.acquire()
    ordinary = [
        threading.Thread(target=writer, args=(f"ordinary-{i}",), kwargs={"urgent": False})
        for i in range(3)
    ]
    for t in ordinary:
        t.start()
    _until(lambda: _waiters(turns) == 3)
    urgent = threading.Thread(target=writer, args=("urgent",), kwargs={"urgent": True})
    urgent.start()
    _until(lambda: _waiters(turns) == 4)
    turns.release()
    for t in [*ordinary, urgent]:
        t.join(WAIT_S)
    assert order[0] == "urgent"
    assert sorted(order[1:]) == ["ordinary-0", "ordinary-1", "ordinary-2"]


def test_turns_are_reentrant_and_time_out() -> None:
    turns = WriteTurns()
    assert turns.acquire()
    assert turns.acquire(urgent=True)  # the holder takes it again
    got: list[bool] = []
    other = threading.Thread(target=lambda: got.append(turns.acquire(timeout=0.05)))
    other.start()
    other.join(WAIT_S)
    assert got == [False]
    turns.release()
    turns.release()
    with pytest.raises(RuntimeError):
        turns.release()
    assert turns.acquire(timeout=0)
    turns.release()


def test_an_urgent_writer_that_gives_up_lets_ordinary_writers_go() -> None:
    turns = WriteTurns()
    assert turns.acquire()
    ordinary_got: list[bool] = []
    ordinary = threading.Thread(target=lambda: ordinary_got.append(turns.acquire(timeout=WAIT_S)))
    ordinary.start()
    _until(lambda: _waiters(turns) == 1)
    urgent_got: list[bool] = []
    urgent = threading.Thread(
        target=lambda: urgent_got.append(turns.acquire(urgent=True, timeout=0.05))
    )
    urgent.start()
    urgent.join(WAIT_S)
    assert urgent_got == [False]
    turns.release()
    ordinary.join(WAIT_S)
    assert ordinary_got == [True]


def test_write_times_out_as_an_operational_error_when_this_process_holds_the_turn(
    tmp_path: Path,
) -> None:
    db = SqliteDb(db_file=tmp_path / "turns.db")
    db.ensure_schema()
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with db.write() as conn:
            conn.execute(text("SELECT 1"))
            held.set()
            release.wait(WAIT_S)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(WAIT_S)
    try:
        with pytest.raises(OperationalError, match="locked"), db.write(lock_timeout=0.05):
            pass
    finally:
        release.set()
        thread.join(WAIT_S)
    with db.write(lock_timeout=1.0, urgent=True) as conn:  # free again
        assert conn.execute(text("SELECT 1")).scalar() == 1
    db.dispose()
