"""Node budgets: refusing a search before any model call when it could grow too large.

Each search estimates the most nodes it could create (an upper bound that
follows the algorithm: a beam caps a layer, ``max_visits`` caps DFS,
``iterations`` caps MCTS) and refuses to start above ``max_nodes`` (default
10,000) with the estimate in the message, so a typo such as ``depth=90`` fails
in a millisecond instead of running for a day (the refusal itself is
:func:`reflectnb.strategies.engine.check_estimate`, shared with the loop magics).

Non-goals: time budgets (a search can always be interrupted with Ctrl-C).
"""

from __future__ import annotations

from reflectnb.strategies.engine import check_estimate

__all__ = ["MAX_NODES", "check_budget", "estimate_bfs", "estimate_dfs", "estimate_mcts"]

MAX_NODES = 10_000
_CAP = 10**15  # estimates stop growing here (avoids huge integers for absurd depths)


def full_tree(branch: int, depth: int) -> int:
    """Nodes below the root of a complete tree: ``Σ_{d=1..depth} branch**d`` (capped).

    Examples
    --------
    >>> full_tree(5, 9)
    2441405
    """
    return _layers(branch, depth, widest=_CAP)


def estimate_bfs(branch: int, depth: int, beam: int) -> int:
    """Beam search: each layer has at most ``min(branch**d, beam·branch)`` nodes."""
    return min(1 + _layers(branch, depth, widest=beam * branch), _CAP)


def _layers(branch: int, depth: int, widest: int) -> int:
    """``Σ_{d=1..depth} min(branch**d, widest)``, capped; once layers stop growing the rest is one product.

    The loop runs at most ~50 times whatever ``depth`` is (a typo like ``depth=10**9``
    must be refused in a millisecond, not after a billion iterations).

    Examples
    --------
    >>> _layers(1, 10**9, _CAP), _layers(3, 10**9, 12)
    (1000000000, 11999999988)
    """
    total, layer = 0, 1
    for done in range(depth):
        grown = min(layer * branch, widest, _CAP)
        if grown == layer:  # stable from here on: depth - done more layers of the same size
            return min(total + (depth - done) * layer, _CAP)
        layer, total = grown, min(total + grown, _CAP)
        if total >= _CAP:
            return _CAP
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
    check_estimate(estimate, max_nodes, "max_nodes", "this search would create",
                   f"nodes (branch {branch}, depth {depth})", "raise max_nodes or lower branch/depth")
