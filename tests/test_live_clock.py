"""The virtual clock: time that moves only when told, by waits and by model runs."""

from __future__ import annotations

import time

import pytest

from vidcls.live.clock import VirtualClock, is_virtual


def test_it_moves_only_when_told_and_never_back():
    clock = VirtualClock(10.0)
    assert clock() == 10.0
    clock.advance(0.25)
    clock.advance(-5)  # a wait already over
    clock.set(3.0)  # a time already past
    assert clock() == 10.25
    clock.set(11.0)
    assert clock() == 11.0


def test_a_wait_below_its_rounding_still_moves_it():
    """0.2 added five times is not 1.0: the waits that are left over are tiny, and a clock
    that did not move for them would keep the engine turning forever."""
    clock = VirtualClock(1e6)
    before = clock()
    clock.advance(1e-12)  # less than one step of a float near a million
    assert clock() > before


def test_each_model_run_takes_the_run_cost():
    clock = VirtualClock(run_cost=0.125)
    for _ in range(8):
        clock.ran()
    assert clock.runs == 8 and clock() == 1.0
    with pytest.raises(ValueError, match="run_cost"):
        VirtualClock(run_cost=-1)
    with pytest.raises(ValueError, match="run_cost"):
        VirtualClock(run_cost=float("nan"))


def test_only_a_virtual_clock_is_virtual():
    assert is_virtual(VirtualClock()) and not is_virtual(time.monotonic)
