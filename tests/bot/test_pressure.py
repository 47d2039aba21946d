"""Requests first: the background steps aside while requests wait (bot/pressure.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.pressure import FrontDoorPressure


class FakeTime:
    """A monotonic clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def _pressure(t: FakeTime) -> FrontDoorPressure:
    return FrontDoorPressure(
        request_age_limit=timedelta(milliseconds=100),
        loop_lag_limit=timedelta(milliseconds=25),
        max_yield=timedelta(milliseconds=250),
        monotonic=t.monotonic,
        sleep=t.sleep,
    )


def test_no_waiting_request_means_no_waiting_background() -> None:
    t = FakeTime()
    pressure = _pressure(t)
    assert not pressure.under_pressure()
    assert pressure.step_aside() is False
    with pressure.request():  # a fresh request is not yet queueing
        assert pressure.in_flight() == 1
        assert not pressure.under_pressure()
        assert pressure.step_aside() is False
    assert pressure.in_flight() == 0 and t.slept == 0 and pressure.yields == 0


def test_an_old_request_makes_background_wait_at_most_max_yield() -> None:
    t = FakeTime()
    pressure = _pressure(t)
    with pressure.request(arrived=t.now - 0.2):  # waited 200 ms already
        assert pressure.under_pressure()
        assert pressure.step_aside() is True
        # Bounded: the backlog still moves under a sustained overload.
        assert abs(t.slept - 0.25) < 0.006
    assert pressure.yields == 1
    assert not pressure.under_pressure()


def test_the_wait_ends_when_the_request_is_answered() -> None:
    t = FakeTime()
    answered_after = 0.05
    pressure: FrontDoorPressure

    def sleep_then_answer(seconds: float) -> None:
        t.sleep(seconds)
        if t.slept >= answered_after and pressure.in_flight():
            request.__exit__(None, None, None)  # the request is answered meanwhile

    pressure = FrontDoorPressure(monotonic=t.monotonic, sleep=sleep_then_answer)
    request = pressure.request(arrived=t.now - 0.2)
    request.__enter__()
    assert pressure.step_aside() is True
    assert answered_after <= t.slept < 0.25


def test_a_late_event_loop_is_pressure_while_requests_are_handled() -> None:
    t = FakeTime()
    pressure = _pressure(t)
    pressure.note_loop_lag(0.030)
    assert not pressure.under_pressure()  # a busy machine, but nobody waits on us
    with pressure.request():
        assert pressure.under_pressure()
        pressure.note_loop_lag(0.001)
        assert not pressure.under_pressure()


def test_the_loop_watch_measures_the_event_loop() -> None:
    pressure = FrontDoorPressure()

    async def main() -> None:
        async with pressure.loop_watch():
            await asyncio.sleep(0.05)  # ticks run meanwhile
            pressure.note_loop_lag(1.0)  # overwritten by the next tick
            await asyncio.sleep(0.05)

    asyncio.run(main())
    assert pressure._loop_lag < 1.0
