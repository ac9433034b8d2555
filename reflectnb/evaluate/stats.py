"""Statistics for comparing methods on the same items: pure functions on counts and 0/1 lists.

Contract
--------
* :func:`wilson` — the Wilson score interval for ``k`` successes in ``n``
  trials (``wilson(7, 10) == (0.3968…, 0.8922…)`` at 95 %).
* :func:`mcnemar_exact` — the two-sided exact McNemar test: a binomial test of
  ``b`` against ``b + c`` discordant pairs at p = 1/2 (``b=1, c=6`` → 0.125).
* :func:`paired_bootstrap` — a percentile bootstrap CI of the difference in
  accuracy between two methods, resampling *items* (pairs stay together).
* :func:`transition` / :func:`reflection_kind` — how one reflection changed an
  answer: ``wrong→right`` … and, after Kang et al. "First Try Matters" (2025),
  ``confirmatory`` (right→right, or wrong→wrong with the same answer),
  ``corrective`` (wrong→right) or ``other`` (right→wrong, wrong→wrong with a
  different answer).

Non-goals: multiple-comparison corrections; the stdlib and numpy only (no scipy).
"""

from __future__ import annotations

import math
import numbers
from statistics import NormalDist
from typing import Sequence

from reflectnb.errors import OptionError

TRANSITIONS = ("wrong→right", "right→wrong", "right→right", "wrong→wrong")
KINDS = ("confirmatory", "corrective", "other")


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise OptionError(f"`confidence` must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    return NormalDist().inv_cdf((1 + confidence) / 2)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for ``k`` successes out of ``n`` (``(nan, nan)`` for ``n == 0``).

    Examples
    --------
    >>> [round(x, 4) for x in wilson(7, 10)]
    [0.3968, 0.8922]
    """
    if n < 0 or not 0 <= k <= max(n, 0):
        raise OptionError(f"wilson needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    z = _z(confidence)
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exactly 0 / 1 at the ends, not 1e-17
    high = 1.0 if k == n else min(1.0, centre + half)
    return (low, high)


def binomial_two_sided(b: int, n: int) -> float:
    """Two-sided exact binomial p-value of ``b`` successes in ``n`` at p = 1/2."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, n - b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact McNemar p-value from the discordant counts ``b`` (A right, B wrong) and ``c`` (A wrong, B right).

    Examples
    --------
    >>> mcnemar_exact(1, 6)
    0.125
    """
    if b < 0 or c < 0:
        raise OptionError(f"McNemar counts must be >= 0, got b={b}, c={c}")
    return binomial_two_sided(b, b + c)


def discordant(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int]:
    """``(b, c)``: items only ``a`` got right, items only ``b`` got right."""
    _same_length(a, b)
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    return only_a, only_b


def paired_bootstrap(a: Sequence[bool], b: Sequence[bool], *, resamples: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(difference, low, high)``: accuracy(a) − accuracy(b) and its percentile bootstrap CI.

    Examples
    --------
    >>> d, lo, hi = paired_bootstrap([1, 1, 1, 0], [0, 1, 0, 0])
    >>> d, lo <= d <= hi
    (0.5, True)
    """
    import numpy as np

    _same_length(a, b)
    _z(confidence)
    if isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral) or resamples <= 0:
        raise OptionError(f"`resamples` must be a positive integer (e.g. 2000), got {resamples!r}")
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diff.size == 0:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(resamples, diff.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(diff.mean()), float(low), float(high))


def _same_length(a: Sequence[object], b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise OptionError(f"paired comparison needs the same items for both methods, got {len(a)} and {len(b)}")


def transition(before: bool, after: bool) -> str:
    """``"wrong→right"``, ``"right→wrong"``, ``"right→right"`` or ``"wrong→wrong"``."""
    return f"{'right' if before else 'wrong'}→{'right' if after else 'wrong'}"


def reflection_kind(before: bool, after: bool, same_answer: bool) -> str:
    """``confirmatory``, ``corrective`` or ``other`` (see the module docstring).

    Examples
    --------
    >>> reflection_kind(False, False, True), reflection_kind(False, True, False)
    ('confirmatory', 'corrective')
    """
    if after and not before:
        return "corrective"
    if before and after or (not before and not after and same_answer):
        return "confirmatory"
    return "other"
