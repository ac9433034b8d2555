"""Choosing which nodes to keep or visit: ToT greedy/sample selection and MCTS UCT.

Contract
--------
* :func:`select_greedy` keeps the ``k`` highest values; ties keep their input
  order (Python's sort is stable), as ToT's ``sorted(ids, key=value)[:k]`` does.
* :func:`select_sample` draws ``k`` indices without replacement with
  probability proportional to value. ``None`` and negative values count as 0;
  when every remaining weight is 0 it draws uniformly (ToT's ``p = v / sum(v)``
  divides by zero there). ToT draws *with* replacement, which puts duplicate
  states in the beam; reflectnb draws without (documented in docs/trees.md).
* :func:`uct_score` is ReST-MCTS*'s ``V + c·√(2·ln N / n)``, and ``V + INF`` for an
  unvisited child; :func:`best_uct` breaks ties at random with the caller's RNG.

Non-goals: building nodes, generating text.
"""

from __future__ import annotations

import math
import random
from typing import Sequence

C_UCT = 0.4
INF = 0.8


def _weight(value: float | None) -> float:
    return max(float(value), 0.0) if value is not None else 0.0


def select_greedy(values: Sequence[float | None], k: int) -> list[int]:
    """Indices of the ``k`` highest values, ties in input order.

    Examples
    --------
    >>> select_greedy([1, 3, 3, 0.5, 3], 2)
    [1, 2]
    """
    order = sorted(range(len(values)), key=lambda i: _weight(values[i]), reverse=True)
    return order[:k]


def select_sample(values: Sequence[float | None], k: int, rng: random.Random) -> list[int]:
    """``k`` indices drawn without replacement, probability ∝ value (uniform if all 0).

    Examples
    --------
    >>> select_sample([0, 0, 0], 2, random.Random(0))  # no division by zero
    [1, 2]
    """
    pool = list(range(len(values)))
    chosen: list[int] = []
    while pool and len(chosen) < k:
        weights = [_weight(values[i]) for i in pool]
        total = sum(weights)
        if total <= 0:
            pick = rng.randrange(len(pool))
        else:
            pick = rng.choices(range(len(pool)), weights=weights)[0]
        chosen.append(pool.pop(pick))
    return chosen


def uct_score(value: float, visits: int, parent_visits: int, c_uct: float = C_UCT, inf: float = INF) -> float:
    """UCT of a child: ``V + c·√(2·ln N / n)``, or ``V + INF`` when ``n == 0``.

    Examples
    --------
    >>> uct_score(0.3, 0, 5)
    1.1
    >>> round(uct_score(0.5, 2, 4), 4)  # 0.5 + 0.4·√(2·ln 4 / 2)
    0.971
    """
    if visits <= 0:
        return value + inf
    if parent_visits <= 1:
        return value  # ln 1 = 0 (ln of 0 visits is undefined; treated the same)
    return value + c_uct * math.sqrt(2 * math.log(parent_visits) / visits)


def best_uct(children: Sequence[tuple[float, int]], parent_visits: int, rng: random.Random,
             c_uct: float = C_UCT, inf: float = INF) -> int:
    """Index of the child ``(V, n)`` with the highest UCT; ties broken with ``rng``.

    Unlike the reference (which starts from ``low`` = 0 and so can find no child
    when every score is 0), every child is a candidate.
    """
    if not children:
        raise ValueError("best_uct needs at least one child")
    scores = [uct_score(v, n, parent_visits, c_uct, inf) for v, n in children]
    top = max(scores)
    tied = [i for i, s in enumerate(scores) if s == top]
    return tied[0] if len(tied) == 1 else rng.choice(tied)
