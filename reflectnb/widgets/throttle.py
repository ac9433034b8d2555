"""Throttle: let an event through at most once per interval, the first one at once.

Both live views (:class:`~reflectnb.widgets.live.LiveView`,
:class:`~reflectnb.widgets.tree.TreeView`) sync streamed state to the front-end
through one of these, so a fast model never floods the comm. The first event
always passes: the clock is ``time.monotonic()``, whose zero is the boot, so a
"last sync at 0.0" would hold back the first token on a machine up for less than
the interval (the bug this class exists to fix once).
"""

from __future__ import annotations

import math
import time
from typing import Callable

from reflectnb.errors import OptionError


class Throttle:
    """``ready()`` is true at most once per ``interval`` seconds, and always the first time.

    ``clock`` is injectable so tests can pin time (e.g. a machine booted 0.5 s ago).
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic):
        if not interval >= 0:  # also refuses NaN
            raise OptionError(f"`throttle` must be >= 0 seconds, got {interval!r}")
        self.interval = interval
        self._clock = clock
        self._last = -math.inf

    def ready(self) -> bool:
        """True (and the interval restarts) when an event may pass now."""
        now = self._clock()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False

    def mark(self) -> None:
        """Record a sync made for another reason (e.g. the end of a run)."""
        self._last = self._clock()

    def reset(self) -> None:
        """Let the next event through at once."""
        self._last = -math.inf
