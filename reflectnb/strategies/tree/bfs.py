"""Tree of Thoughts breadth-first (beam) search (Yao et al. 2023, ``src/tot/methods/bfs.py``).

Per step (layer) 1..``depth``: **generate** children of every beam state in
ONE batched call (``propose``: one "possible next steps" prompt per state,
split into lines, at most ``branch`` kept; ``sample``: ``branch`` samples of
the next step); **evaluate** them (ToT value map summed over ``n_evaluate``
samples, cached by prompt, duplicates 0 — or votes, a verifier, a PRM);
**select** ``beam`` of them (``greedy``, stable on ties; or ``sample`` ∝ value).
States that are already final (``task.is_final``) are not expanded again but
stay candidates. The answer is the best state of the last layer.

Statuses: kept and final (or on the last layer) → ``terminal``; kept →
``selected``; not kept → ``pruned``; the root → ``selected``.

Non-goals: ToT's task-specific ``stops`` per step (use ``params.stop``).
"""

from __future__ import annotations

from typing import Callable

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.strategies.context import RunContext
from reflectnb.strategies.engine import choice, positive_int
from reflectnb.strategies.tree import common
from reflectnb.strategies.tree.budget import MAX_NODES, check_budget, estimate_bfs
from reflectnb.strategies.tree.core import Search
from reflectnb.strategies.tree.result import TreeResult
from reflectnb.strategies.tree.select import select_greedy, select_sample
from reflectnb.strategies.tree.tasks import Task
from reflectnb.trace import Node


def tot_bfs(ctx: RunContext | Backend, task: Task | str, *, depth: int | None = None,
            branch: int | None = None, beam: int = 5, generate: str = "propose", evaluate: str = "value",
            n_evaluate: int = 3, select: str = "greedy", verifier: Callable | None = None,
            prm: Callable | None = None, on_value_error: str = "record", value_backend: Backend | None = None,
            params: GenerationParams | None = None, value_params: GenerationParams | None = None,
            seed: int | None = 0, max_nodes: int | None = MAX_NODES) -> TreeResult:
    """Tree of Thoughts BFS: generate, evaluate, keep the best ``beam`` states, ``depth`` times.

    Parameters
    ----------
    ctx : RunContext or Backend
        The run context (its backend expands and values; its recorder gets every
        node; tokens go through ``ctx.token``, so its stop signal ends the search),
        or a bare model.
    task : Task or str
        A question string (generic prompts) or a task such as ``Game24Task("4 9 10 13")``.
    depth : int, optional
        Steps (layers); default ``task.steps`` (4 for the game of 24).
    branch : int, optional
        Children per state: at most this many proposals (default 8) or this many
        samples (default 5).
    beam : int
        States kept per layer (ToT's ``n_select_sample``, b = 5 for the game of 24).
    generate, evaluate, select : str
        ``propose`` | ``sample``; ``value`` | ``vote``; ``greedy`` | ``sample``.
    n_evaluate : int
        Evaluation samples per state (value) or votes per layer (vote).
    verifier, prm : callable, optional
        ``verifier(state) -> bool | float`` or ``prm(question, partial) -> float``
        replaces the model's own evaluation.
    on_value_error : str
        ``record`` (keep going; ``attributes['value_error']``, value None) or ``raise``.
    params, value_params : GenerationParams, optional
        Settings for expansions and for the model's evaluations. ``None`` (the
        default) samples at T = 0.7 with ``seed`` (ToT's temperature; 96 and 32
        new tokens). The context's own ``params`` are not used: pass
        ``params=ctx.params`` for the run's settings.
    max_nodes : int or None
        Refuse (OptionError) when the estimated node count is above it.

    Examples
    --------
    >>> from reflectnb.strategies.tree import Game24Task
    >>> result = tot_bfs(model, Game24Task("4 9 10 13"), beam=5)      # doctest: +SKIP
    >>> result.answer, result.stop_reason                              # doctest: +SKIP
    """
    task = common.as_task(task)
    depth = positive_int("depth", depth if depth is not None else task.steps)
    branch = positive_int("branch", branch if branch is not None else (8 if generate == "propose" else 5))
    beam, select = positive_int("beam", beam), choice("select", select, ("greedy", "sample"))
    check_budget(estimate_bfs(branch, depth, beam), max_nodes, branch, depth)
    ev = common.evaluation(evaluate=evaluate, n_evaluate=n_evaluate, verifier=verifier, prm=prm,
                           value_backend=value_backend, value_params=value_params, seed=seed,
                           on_value_error=on_value_error, normalize=False)
    search = common.start("bfs", ctx, task, generate=generate, branch=branch, params=params, evaluation=ev,
                          seed=seed,
                          options={"depth": depth, "beam": beam, "select": select})
    return common.run(search, lambda: _layers(search, depth, branch, beam, generate, select))


def _layers(search: Search, depth: int, branch: int, beam: int, generate: str, select: str) -> TreeResult:
    root = search.nodes[0]
    search.set(root, status="selected")
    frontier, stop = [root], "depth"
    for step in range(1, depth + 1):
        done = [n for n in frontier if n is not root and search.task.is_final(search.state(n))]
        todo = [n for n in frontier if n not in done]
        if not todo:
            stop = "all_final"
            break
        children = [c for group in search.expand(todo, generate, branch, step) for c in group]
        for parent in todo:
            search.set(parent, visits=parent.visits + 1)
        if not children:
            stop = "no_children"
            break
        search.evaluate(children)
        frontier = _select(search, done + children, beam, select, last=step == depth)
    best = max(frontier, key=lambda n: n.value or 0.0) if frontier and frontier[0] is not root else None
    return search.finish(best, stop)


def _select(search: Search, candidates: list[Node], beam: int, select: str, last: bool) -> list[Node]:
    values = [n.value for n in candidates]
    picked = select_greedy(values, beam) if select == "greedy" else select_sample(values, beam, search.rng)
    kept = set(picked)
    for i, node in enumerate(candidates):
        final = last or search.task.is_final(search.state(node))
        search.set(node, status=("terminal" if final else "selected") if i in kept else "pruned")
    return [candidates[i] for i in picked]
