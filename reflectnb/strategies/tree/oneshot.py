"""Best-of-N and self-consistency as one-level trees (the baselines tree searches are compared with).

Both generate ``n`` whole solutions (``task.solve_prompt()``) in ONE call as
children of the root. **Best-of-N** values them (verifier, PRM, or the model's
own value/vote evaluation) and answers with the highest-valued one (first on
ties). **Self-consistency** (Wang et al. 2023) extracts each solution's answer
(``task.answer``) and takes the majority (ties: the first answer to reach the
top count); a node's value is its answer's vote share, the root's
``attributes["votes"]`` the tally. ``%reflect_eval``'s ``self_consistency``
method runs this function too (on the item's prompt, with the evaluation's
extraction rule), so there is one self-consistency. Statuses: the chosen
solution and (self-consistency) every solution agreeing with it →
``terminal``; the others → ``pruned``.

Non-goals: weighted self-consistency.
"""

from __future__ import annotations

from typing import Callable

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.strategies.context import RunContext
from reflectnb.strategies.engine import positive_int
from reflectnb.strategies.tree import common
from reflectnb.strategies.tree.budget import MAX_NODES, check_budget
from reflectnb.strategies.tree.core import Search, prompt_text
from reflectnb.strategies.tree.result import TreeResult
from reflectnb.strategies.tree.tasks import Task
from reflectnb.strategies.voting import majority, normalize
from reflectnb.trace import Node


def _solutions(search: Search, n: int) -> list[Node]:
    root = search.nodes[0]
    prompt = search.task.solve_prompt()
    texts = search.generate(search.backend, [prompt] * n, search.params)
    search.set(root, visits=1, status="selected")
    return [search.add(root, t.strip(), prompt_text(prompt), 1) for t in texts]


def best_of_n(ctx: RunContext | Backend, task: Task | str, *, n: int = 5, evaluate: str = "value",
              n_evaluate: int = 3, verifier: Callable | None = None, prm: Callable | None = None,
              on_value_error: str = "record", value_backend: Backend | None = None,
              params: GenerationParams | None = None, value_params: GenerationParams | None = None,
              seed: int | None = 0, max_nodes: int | None = MAX_NODES) -> TreeResult:
    """``n`` solutions, keep the best-valued one.

    Examples
    --------
    >>> t = Game24Task("4 9 10 13")                                          # doctest: +SKIP
    >>> best_of_n(model, t, n=8, verifier=t.verify).answer                  # doctest: +SKIP
    """
    n = positive_int("n", n)
    check_budget(1 + n, max_nodes, n, 1)
    ev = common.evaluation(evaluate=evaluate, n_evaluate=n_evaluate, verifier=verifier, prm=prm,
                           value_backend=value_backend, value_params=value_params, seed=seed,
                           on_value_error=on_value_error, normalize=False)
    search = common.start("best_of_n", ctx, task, generate="sample", branch=n, params=params, evaluation=ev,
                          seed=seed, options={"n": n})

    def body() -> TreeResult:
        kids = _solutions(search, n)
        search.evaluate(kids)
        best = max(kids, key=lambda k: k.value or 0.0) if kids else None
        for kid in kids:
            search.set(kid, status="terminal" if kid is best else "pruned")
        return search.finish(best, "done")

    return common.run(search, body)


def self_consistency(ctx: RunContext | Backend, task: Task | str, *, n: int = 5,
                     params: GenerationParams | None = None, seed: int | None = 0,
                     max_nodes: int | None = MAX_NODES) -> TreeResult:
    """``n`` solutions, majority answer (no evaluation calls).

    Examples
    --------
    >>> self_consistency(model, "What is 17 * 3?", n=5).answer               # doctest: +SKIP
    """
    n = positive_int("n", n)
    check_budget(1 + n, max_nodes, n, 1)
    ev = common.evaluation(evaluate="value", n_evaluate=1, verifier=None, prm=None, value_backend=None,
                           value_params=None, seed=seed, on_value_error="record", normalize=False)
    search = common.start("self_consistency", ctx, task, generate="sample", branch=n, params=params,
                          evaluation=ev, seed=seed, options={"n": n})

    def body() -> TreeResult:
        kids = _solutions(search, n)
        answers = [search.task.answer(search.state(k)) or None for k in kids]
        winner, votes = majority(answers)
        search.set(search.nodes[0], attributes={"votes": votes})
        shares = {normalize(a): c / n for a, c in votes.items()}
        best = None
        for kid, answer in zip(kids, answers):
            agree = winner is not None and answer is not None and normalize(answer) == normalize(winner)
            best = best or (kid if agree else None)
            share = shares.get(normalize(answer), 0.0) if answer else 0.0
            search.set(kid, value=share, status="terminal" if agree else "pruned",
                       attributes={"extracted_answer": answer})
        result = search.finish(best, "done")
        result.answer = winner or ""
        return result

    return common.run(search, body)
