"""The evaluation benchmark's bound on batching (``benchmarks/bench_eval.py``): it must hold for every schedule.

``bench_eval`` says how far any batching could take its ratio: the decode
steps of a set of items cost at least ``a * longest chain + b * all steps``,
with ``a + b k`` a line under the measured cost of a step at ``k`` rows. These
tests check that line, and the bound against schedules built at random (items
joining and leaving a batch at any step, never more rows than the batch).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_eval import _line_below, ratio_bounds  # noqa: E402

COSTS = [
    [7.0, 6.9, 7.9, 8.0, 7.5, 8.6, 8.0, 9.0],  # bf16 in one run: not monotonic
    [41.0, 84.9, 91.1, 62.9, 71.2, 72.6, 88.8, 90.1],  # fp32 in one run
    [10.0, 4.0, 30.0],  # the chord from the first to the last lies above the middle by more than a
    [5.0],
]


@pytest.mark.parametrize("costs", COSTS)
def test_the_line_lies_under_every_measured_cost(costs):
    a, b = _line_below(costs)
    assert a >= 0 and b >= 0
    for k, cost in enumerate(costs, start=1):
        assert a + b * k <= cost + 1e-12


def test_the_line_touches_the_costs_when_they_grow_evenly():
    a, b = _line_below([3.0, 4.0, 5.0, 6.0])
    assert (a, b) == pytest.approx((2.0, 1.0))


def _random_schedule(chains: list[int], batch: int, rng: random.Random) -> list[int]:
    """Rows per step of one feasible schedule: each step runs at most ``batch`` unfinished items, one step each."""
    left = list(chains)
    rows = []
    while any(left):
        waiting = [i for i, n in enumerate(left) if n]
        chosen = rng.sample(waiting, rng.randint(1, min(batch, len(waiting))))
        for i in chosen:
            left[i] -= 1
        rows.append(len(chosen))
    return rows


@pytest.mark.parametrize("costs", COSTS[:2])
def test_no_schedule_decodes_for_less_than_the_bound(costs):
    rng = random.Random(0)
    batch = len(costs)
    a, b = _line_below(costs)
    for _ in range(300):
        chains = [rng.randint(1, 40) for _ in range(rng.randint(1, 12))]
        bound = a * max(chains) + b * sum(chains)
        spent = sum(costs[k - 1] for k in _random_schedule(chains, batch, rng))
        assert spent >= bound - 1e-9


def test_ratio_bounds_in_figures():
    single = {"seconds": 10.0}
    batched = {"prefill_s": 2.0}
    bounds = ratio_bounds(single, batched, chains=[3, 5], costs=[1.0, 1.5])
    # line 0.5 + 0.5 k: at least 0.5 * 5 + 0.5 * 8 = 6.5 s of steps
    assert bounds["decode_s_at_least"] == pytest.approx(6.5)
    assert bounds["any_schedule"] == pytest.approx(10.0 / 8.5)
    assert bounds["packed"] == pytest.approx(10.0 / (2.0 + 8 / 2 * 1.5))
    assert bounds["free_decoding"] == pytest.approx(5.0)
    assert ratio_bounds(single, {"prefill_s": 0.0}, [3], [1.0]) == {}
