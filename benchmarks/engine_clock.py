"""Time the local fast engine spends in prefill and in decode steps, for benchmarks that explain a batching ratio."""

from __future__ import annotations

import time


class EngineClock:
    """Seconds the fast engine spends in prefill and in decode steps, and how many decode steps it ran.

    Why: prompt tokens cost the same whether calls are batched or not (prefill is
    already a large matrix product at batch 1), so the time in prefill bounds
    what batching can gain: ``ratio <= T(one at a time) / prefill(batched)``
    even if batched decoding were free. bench_loops reports that bound beside its
    batching ratio, and bench_eval a tighter one built on it; the step count
    tells rows waiting on a batch's longest row from a step's cost. ``close()`` removes the wrappers.
    """

    def __init__(self, backend):
        self.engine = getattr(getattr(backend, "fast", None), "engine", None)
        self.seconds = {"prefill": 0.0, "step": 0.0}
        self.steps = 0
        if self.engine is not None:
            for name in self.seconds:
                setattr(self.engine, name, self._timed(name, getattr(self.engine, name)))

    def _timed(self, name, fn):
        def timed(*args, **kwargs):
            began = time.perf_counter()
            self.steps += name == "step"
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - began
        return timed

    def take(self) -> dict:
        out, self.seconds = {**self.seconds, "steps": self.steps}, {"prefill": 0.0, "step": 0.0}
        self.steps = 0
        return out

    def close(self) -> None:
        if self.engine is not None:
            for name in self.seconds:
                delattr(self.engine, name)
