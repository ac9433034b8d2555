"""The one throttle both live views use: first event at once, then at most one per interval."""

from __future__ import annotations

import math

import pytest

from reflectnb.errors import OptionError
from reflectnb.widgets.throttle import Throttle


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("boot", [0.0, 0.05, 1e6])
def test_the_first_event_passes_whatever_the_clock_reads(boot):
    clock = Clock(boot)
    throttle = Throttle(0.1, clock)
    assert throttle.ready() is True
    assert throttle.ready() is False
    clock.now += 0.099
    assert throttle.ready() is False
    clock.now += 0.001
    assert throttle.ready() is True


def test_mark_restarts_the_interval_and_reset_lets_the_next_event_through():
    clock = Clock(5.0)
    throttle = Throttle(1.0, clock)
    throttle.mark()
    assert throttle.ready() is False
    throttle.reset()
    assert throttle.ready() is True


def test_zero_interval_lets_everything_through():
    throttle = Throttle(0, Clock(0.0))
    assert all(throttle.ready() for _ in range(5))


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan])
def test_negative_and_nan_intervals_are_refused(bad):
    with pytest.raises(OptionError, match="`throttle` must be >= 0 seconds"):
        Throttle(bad)
