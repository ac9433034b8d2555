"""Tree of Thoughts depth-first search with pruning and backtracking (ToT crosswords notebook).

Visit a state: generate its children in ONE call, evaluate them, and try them
in descending value order (stable on ties), at most ``tries`` per state (3 in
ToT). A child is entered only if its value is at least ``prune_below`` (when
``prune``), fewer than ``max_visits`` states have been visited (100 in ToT) and
the depth is below ``depth`` (ToT: fewer than 10 steps). After a child's
subtree is done the search *backtracks* to the next child (``backtrack=False``
follows only the first child: the paper's "−backtrack" ablation;
``prune=False`` is "−prune"). A final state (``task.is_final``) or one at
``depth`` is terminal; the search stops early at a terminal whose value is at
least ``solved_at``.

Defaults that ToT does not fix (its pruning asks the LM whether any clue is
"impossible"): ``prune_below`` is 1.0 for model values (prune when every
sample said "impossible"), 0 for votes (nothing), 0.5 for verifier/PRM values;
``solved_at`` is 1.0 for a verifier/PRM and off for model values.

Statuses: visited → ``selected``; not entered → ``pruned``; terminal →
``terminal``; generated below a state the search left → ``expanded``.
"""

from __future__ import annotations

from typing import Callable

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.strategies.context import RunContext
from reflectnb.strategies.engine import finite_number, positive_int
from reflectnb.strategies.tree import common
from reflectnb.strategies.tree.budget import MAX_NODES, check_budget, estimate_dfs
from reflectnb.strategies.tree.core import Search
from reflectnb.strategies.tree.result import TreeResult
from reflectnb.strategies.tree.select import select_greedy
from reflectnb.strategies.tree.tasks import Task
from reflectnb.trace import Node

PRUNE_BELOW = {"value": 1.0, "vote": 0.0, "verifier": 0.5, "prm": 0.5}


class _Stop(Exception):
    def __init__(self, reason: str):
        self.reason = reason


def tot_dfs(ctx: RunContext | Backend, task: Task | str, *, depth: int | None = None, branch: int = 5,
            tries: int = 3, max_visits: int | None = 100, prune: bool = True, prune_below: float | None = None,
            backtrack: bool = True, solved_at: float | None = None, generate: str = "propose",
            evaluate: str = "value", n_evaluate: int = 3, verifier: Callable | None = None,
            prm: Callable | None = None, on_value_error: str = "record", value_backend: Backend | None = None,
            params: GenerationParams | None = None, value_params: GenerationParams | None = None,
            seed: int | None = 0, max_nodes: int | None = MAX_NODES) -> TreeResult:
    """Depth-first Tree of Thoughts with pruning and backtracking.

    Parameters are those of :func:`tot_bfs` plus ``tries`` (children tried per
    state), ``max_visits`` (``None``: unlimited), ``prune``/``prune_below``,
    ``backtrack`` and ``solved_at`` (see the module docstring for defaults).

    Examples
    --------
    >>> t = ArithmeticTask("(3 + 5) * 2", 16)                                     # doctest: +SKIP
    >>> tot_dfs(model, t, prm=t.process_reward, generate="sample").answer       # doctest: +SKIP
    """
    task = common.as_task(task)
    depth = positive_int("depth", depth if depth is not None else task.steps)
    branch, tries = positive_int("branch", branch), positive_int("tries", tries)
    if max_visits is not None:
        positive_int("max_visits", max_visits)
    check_budget(estimate_dfs(branch, depth, tries, max_visits), max_nodes, branch, depth)
    ev = common.evaluation(evaluate=evaluate, n_evaluate=n_evaluate, verifier=verifier, prm=prm,
                           value_backend=value_backend, value_params=value_params, seed=seed,
                           on_value_error=on_value_error, normalize=False)
    threshold = PRUNE_BELOW[ev.mode] if prune_below is None else finite_number("prune_below", prune_below)
    goal = (1.0 if ev.mode in ("verifier", "prm") else None) if solved_at is None else \
        finite_number("solved_at", solved_at)
    search = common.start("dfs", ctx, task, generate=generate, branch=branch, params=params, evaluation=ev,
                          seed=seed,
                          options={"depth": depth, "tries": tries, "max_visits": max_visits, "prune": prune,
                                   "prune_below": threshold, "backtrack": backtrack, "solved_at": goal})
    walk = _Walk(search, depth, branch, tries, max_visits, threshold if prune else None, backtrack, goal, generate)
    return common.run(search, walk.run)


class _Walk:
    """The recursive visit with its counters (visits so far, terminals found)."""

    def __init__(self, search: Search, depth: int, branch: int, tries: int, max_visits: int | None,
                 threshold: float | None, backtrack: bool, goal: float | None, generate: str):
        self.search, self.depth, self.branch, self.tries = search, depth, branch, tries
        self.max_visits, self.threshold, self.backtrack, self.goal = max_visits, threshold, backtrack, goal
        self.generate, self.visited, self.terminals = generate, 0, []  # type: list[Node]

    def run(self) -> TreeResult:
        try:
            self.visit(self.search.nodes[0])
            reason = "done"
        except _Stop as stop:
            reason = stop.reason
        return self.search.finish(self._best(), reason)

    def visit(self, node: Node) -> None:
        if self.max_visits is not None and self.visited >= self.max_visits:
            raise _Stop("max_visits")
        self.visited += 1
        search = self.search
        search.set(node, visits=node.visits + 1, status="selected")
        if node.depth > 0 and (search.task.is_final(search.state(node)) or node.depth >= self.depth):
            search.set(node, status="terminal")
            self.terminals.append(node)
            if self.goal is not None and (node.value or 0.0) >= self.goal:
                raise _Stop("solved")
            return
        children = search.expand([node], self.generate, self.branch, self.visited)[0]
        values = search.evaluate(children)
        self._try(children, select_greedy(values, len(children)))

    def _try(self, children: list[Node], order: list[int]) -> None:
        entered = False
        for rank, i in enumerate(order):
            child = children[i]
            blocked = rank >= self.tries or (entered and not self.backtrack) or (
                self.threshold is not None and (child.value or 0.0) < self.threshold)
            if blocked:
                self.search.set(child, status="pruned")
                continue
            entered = True
            self.visit(child)

    def _best(self) -> Node | None:
        pool = self.terminals or [n for n in self.search.nodes if n.visits > 0 and n.depth > 0]
        if not pool:
            return None
        return max(pool, key=lambda n: (n.depth if not self.terminals else 0, n.value or 0.0))
