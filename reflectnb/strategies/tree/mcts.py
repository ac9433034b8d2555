"""ReST-MCTS* (Zhang et al. 2024, ``MCTS/mcts.py``): MCTS over reasoning steps with value backups.

One iteration:

1. **Select**: from the root, while the node is fully expanded, move to the
   child with the best UCT ``V + c_uct·√(2·ln N / n)`` (unvisited: ``V + INF``;
   ties broken by the run's seeded RNG). A node with ``V ≥ end_gate`` reached
   this way is the solution (stop reason ``solved``).
2. **Expand** (once per node): unless the state is final (``task.is_final``,
   the repo's "simple reflection") or at ``depth``, generate ``branch`` next
   steps in ONE call (duplicates dropped), value them in ONE call, mark the
   node fully expanded.
3. **Simulate**: pick a child by UCT; roll forward ``roll_forward_steps`` steps,
   each sampling ``roll_branch`` continuations (one call) and valuing them
   (one call), following the best (``greedy``) or a random one; track the best
   value ``max_V`` and stop at a final state. Then
   ``V ← (1 − α)·V + α·max_V`` and ``n += 1`` for that child.
4. **Backpropagate** from the expanded node to the root: ``n += 1``; a fully
   expanded node gets ``V = Σ V_c·n_c / Σ n_c``.

Without a solution after ``iterations``, the answer is the best-V node
(``getBestV``: the highest V in the fully expanded part of the tree, later
ties win). Values must lie in [0, 1]: a verifier/PRM is clamped to it, model
evaluations are divided by ``n_evaluate × 20`` ("sure" from every sample = 1).
Rollout states are not added to the tree; each rollout is kept on the rolled
child as ``attributes["rollouts"]``.

Statuses: created → ``expanded``; reached by selection or simulated →
``selected``; final, at ``depth``, or ``V ≥ end_gate`` → ``terminal``.
"""

from __future__ import annotations

from typing import Callable

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.strategies.context import RunContext
from reflectnb.errors import OptionError
from reflectnb.strategies.engine import choice, number_in, positive_int
from reflectnb.strategies.tree import common
from reflectnb.strategies.tree.budget import MAX_NODES, check_budget, estimate_mcts
from reflectnb.strategies.tree.core import Search
from reflectnb.strategies.tree.result import TreeResult
from reflectnb.strategies.tree.select import C_UCT, INF, best_uct
from reflectnb.strategies.tree.tasks import Task
from reflectnb.trace import Node


def rollout_update(value: float, max_value: float, alpha: float = 0.5) -> float:
    """``(1 − α)·V + α·max_V``.

    Examples
    --------
    >>> round(rollout_update(0.4, 0.9, 0.5), 10)
    0.65
    """
    return (1 - alpha) * value + alpha * max_value


def backup_value(children: list[tuple[float, int]]) -> float | None:
    """Visit-weighted mean ``Σ V_c·n_c / Σ n_c`` of ``(V, n)`` pairs (``None`` if no visits).

    Examples
    --------
    >>> round(backup_value([(0.2, 1), (0.8, 3)]), 10)
    0.65
    """
    total = sum(n for _, n in children)
    return None if total == 0 else sum(v * n for v, n in children) / total


def mcts(ctx: RunContext | Backend, task: Task | str, *, iterations: int = 100, branch: int = 3,
         depth: int | None = None, c_uct: float = C_UCT, inf: float = INF, roll_forward_steps: int = 2,
         roll_branch: int = 1, roll_policy: str = "greedy", alpha: float = 0.5, end_gate: float = 0.9,
         generate: str = "sample", evaluate: str = "value", n_evaluate: int = 3, verifier: Callable | None = None,
         prm: Callable | None = None, on_value_error: str = "record", value_backend: Backend | None = None,
         params: GenerationParams | None = None, value_params: GenerationParams | None = None,
         seed: int | None = 0, max_nodes: int | None = MAX_NODES) -> TreeResult:
    """ReST-MCTS* search; defaults are the repo's ``evaluate.py`` ones.

    ``iterations`` 100, ``branch`` 3, ``roll_forward_steps`` 2, ``roll_branch`` 1,
    ``roll_policy`` greedy, ``alpha`` 0.5, ``end_gate`` 0.9, ``c_uct`` 0.4, ``inf`` 0.8,
    T = 0.7. ``depth`` (default ``task.steps``) stops expansion; ``roll_forward_steps=0``
    skips simulation. Other parameters as in :func:`tot_bfs`.

    Examples
    --------
    >>> t = Game24Task("4 9 10 13")                                                    # doctest: +SKIP
    >>> mcts(model, t, prm=t.process_reward, iterations=20).best_path                # doctest: +SKIP
    """
    task = common.as_task(task)
    depth = positive_int("depth", depth if depth is not None else task.steps)
    branch, iterations = positive_int("branch", branch), positive_int("iterations", iterations)
    roll_branch = positive_int("roll_branch", roll_branch)
    if isinstance(roll_forward_steps, bool) or not isinstance(roll_forward_steps, int) or roll_forward_steps < 0:
        raise OptionError(f"`roll_forward_steps` must be an integer >= 0, got {roll_forward_steps!r}")
    choice("roll_policy", roll_policy, ("greedy", "random"))
    alpha, end_gate = number_in("alpha", alpha), number_in("end_gate", end_gate)
    c_uct, inf = number_in("c_uct", c_uct, 0, 100), number_in("inf", inf, 0, 100)
    check_budget(estimate_mcts(branch, depth, iterations), max_nodes, branch, depth)
    ev = common.evaluation(evaluate=evaluate, n_evaluate=n_evaluate, verifier=verifier, prm=prm,
                           value_backend=value_backend, value_params=value_params, seed=seed,
                           on_value_error=on_value_error, normalize=True)
    opts = {"iterations": iterations, "depth": depth, "c_uct": c_uct, "inf": inf, "alpha": alpha,
            "end_gate": end_gate, "roll_forward_steps": roll_forward_steps, "roll_branch": roll_branch,
            "roll_policy": roll_policy}
    search = common.start("mcts", ctx, task, generate=generate, branch=branch, params=params, evaluation=ev,
                          seed=seed, options=opts)
    search.set(search.nodes[0], value=0.0, status="selected")
    return common.run(search, lambda: _Tree(search, opts, generate, branch).run())


class _Tree:
    def __init__(self, search: Search, opts: dict, generate: str, branch: int):
        self.search, self.o, self.generate, self.branch = search, opts, generate, branch

    def run(self) -> TreeResult:
        for it in range(1, self.o["iterations"] + 1):
            node = self.select(self.search.nodes[0])
            if node.parent is not None and (node.value or 0.0) >= self.o["end_gate"]:
                self.search.set(node, status="terminal")
                return self.search.finish(node, "solved")
            self.expand_and_simulate(node, it)
            self.backpropagate(node)
        return self.search.finish(self.best_v(self.search.nodes[0])[0], "iterations")

    def _full(self, node: Node) -> bool:
        return bool(node.attributes.get("fully_expanded"))

    def _uct_child(self, node: Node) -> Node:
        kids = self.search.children(node)
        pick = best_uct([(k.value or 0.0, k.visits) for k in kids], node.visits, self.search.rng,
                        self.o["c_uct"], self.o["inf"])
        return kids[pick]

    def select(self, node: Node) -> Node:
        while self._full(node) and self.search.children(node):
            node = self._uct_child(node)
            if node.status != "terminal":
                self.search.set(node, status="selected")
        return node

    def _ends(self, node: Node) -> bool:
        return node.depth >= self.o["depth"] or (node.depth > 0 and self.search.task.is_final(self.search.state(node)))

    def expand_and_simulate(self, node: Node, it: int) -> None:
        search = self.search
        if self._ends(node) or node.attributes.get("end"):
            search.set(node, status="terminal", attributes={"end": True})
            return
        kids = search.expand([node], self.generate, self.branch, it, dedupe=True)[0]
        if not kids:
            search.set(node, status="terminal", attributes={"end": True})
            return
        search.evaluate(kids)
        search.set(node, attributes={"fully_expanded": True})
        if self.o["roll_forward_steps"] > 0:
            roll = self._uct_child(node)
            best = self.rollout(roll, it)
            search.set(roll, value=rollout_update(roll.value or 0.0, best, self.o["alpha"]),
                       visits=roll.visits + 1, status="terminal" if self._ends(roll) else "selected")

    def rollout(self, node: Node, it: int) -> float:
        """Roll forward from ``node``; the best value seen (``node.V`` if it is final)."""
        search, task = self.search, self.search.task
        if self._ends(node):
            return node.value or 0.0
        state, depth, best, record = search.state(node), node.depth, 0.0, {"iteration": it, "steps": [], "values": []}
        for _ in range(self.o["roll_forward_steps"]):
            steps = self._roll_steps(state)
            if not steps:
                break
            outcomes = search.score_states([state + s + "\n" for s in steps])
            for _value, attrs in outcomes:
                if "value_error" in attrs:
                    record["value_error"] = attrs["value_error"]
                    search.fail(f"a rollout from node {node.node_id}", state, attrs["value_error"])
            values = [v or 0.0 for v, _ in outcomes]
            pick = values.index(max(values)) if self.o["roll_policy"] == "greedy" else search.rng.randrange(len(steps))
            state, depth, best = state + steps[pick] + "\n", depth + 1, max(best, values[pick])
            record["steps"].append(steps[pick])
            record["values"].append(values[pick])
            if task.is_final(state) or depth >= self.o["depth"]:
                break
        record["max_value"] = best
        search.set(node, attributes={"rollouts": [*node.attributes.get("rollouts", []), record]})
        return best

    def _roll_steps(self, state: str) -> list[str]:
        task, k = self.search.task, self.o["roll_branch"]
        if self.generate == "propose":
            texts = self.search.generate(self.search.backend, [task.propose_prompt(state)], self.search.params)
            steps = task.parse_proposals(texts[0])[:k]
        else:
            texts = self.search.generate(self.search.backend, [task.sample_prompt(state)] * k, self.search.params)
            steps = [task.parse_step(t) for t in texts]
        return [s for s in steps if s]

    def backpropagate(self, node: Node | None) -> None:
        search = self.search
        while node is not None:
            value = node.value
            if self._full(node):
                got = backup_value([(k.value or 0.0, k.visits) for k in search.children(node)])
                value = value if got is None else got
            search.set(node, visits=node.visits + 1, value=value)
            node = None if node.parent is None else search.nodes[node.parent]

    def best_v(self, node: Node) -> tuple[Node, float]:
        """ReST-MCTS* ``getBestV``: max V over the fully expanded part; later ties win."""
        if not self._full(node):
            return node, node.value or 0.0
        best, best_v = node, node.value or 0.0
        for child in self.search.children(node):
            sub, sub_v = self.best_v(child)
            if sub_v >= best_v:
                best, best_v = sub, sub_v
        return best, best_v
