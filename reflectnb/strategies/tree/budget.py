"""Checking search options before any model call: positive sizes, known modes, node budgets.

Each search estimates the most nodes it could create (an upper bound that
follows the algorithm: a beam caps a layer, ``max_visits`` caps DFS,
``iterations`` caps MCTS) and refuses to start above ``max_nodes`` (default
10,000) with the estimate in the message, so a typo such as ``depth=90`` fails
in a millisecond instead of running for a day.

Non-goals: time budgets (a search can always be interrupted with Ctrl-C).
"""

from __future__ import annotations

from typing import Any

from reflectnb.errors import OptionError
from reflectnb.strategies.engine import choice as one_of
from reflectnb.strategies.engine import positive_int as positive

__all__ = ["MAX_NODES", "positive", "one_of", "fraction", "check_budget", "estimate_bfs", "estimate_dfs",
           "estimate_mcts"]

MAX_NODES = 10_000
_CAP = 10**15  # estimates stop growing here (avoids huge integers for absurd depths)


def fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise OptionError(f"`{name}` must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def full_tree(branch: int, depth: int) -> int:
    """Nodes below the root of a complete tree: ``Σ_{d=1..depth} branch**d`` (capped).

    Examples
    --------
    >>> full_tree(5, 9)
    2441405
    """
    total, layer = 0, 1
    for _ in range(depth):
        layer = min(layer * branch, _CAP)
        total = min(total + layer, _CAP)
    return total


def estimate_bfs(branch: int, depth: int, beam: int) -> int:
    """Beam search: each layer has at most ``min(branch**d, beam·branch)`` nodes."""
    total, layer = 1, 1
    for _ in range(depth):
        layer = min(layer * branch, beam * branch)
        total = min(total + layer, _CAP)
    return total


def estimate_dfs(branch: int, depth: int, tries: int, max_visits: int | None) -> int:
    """DFS: every visited state generates ``branch`` children; visits are capped by ``max_visits``."""
    visits = 1 + full_tree(min(tries, branch), depth - 1)
    if max_visits is not None:
        visits = min(visits, max_visits)
    return min(1 + visits * branch, 1 + full_tree(branch, depth))


def estimate_mcts(branch: int, depth: int, iterations: int) -> int:
    """MCTS: one expansion of ``branch`` children per iteration (rollouts add no nodes)."""
    return min(1 + iterations * branch, 1 + full_tree(branch, depth))


def check_budget(estimate: int, max_nodes: int | None, branch: int, depth: int) -> None:
    """Refuse a search whose node estimate is above ``max_nodes`` (``None``: no limit).

    Examples
    --------
    >>> check_budget(estimate_dfs(5, 9, 5, None), 10_000, 5, 9)
    Traceback (most recent call last):
    ...
    reflectnb.errors.OptionError: this search would create about 2,441,406 nodes (branch 5, depth 9); raise max_nodes or lower branch/depth
    """
    if max_nodes is not None and estimate > positive("max_nodes", max_nodes):
        raise OptionError(f"this search would create about {estimate:,} nodes (branch {branch}, "
                          f"depth {depth}); raise max_nodes or lower branch/depth")
