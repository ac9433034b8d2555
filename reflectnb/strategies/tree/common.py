"""Option checking and set-up shared by every tree search; running one under the loops' Ctrl-C wrapper.

:func:`start` validates what all searches share (run context, task, value
source, params) and returns a ready :class:`~reflectnb.strategies.tree.core.Search`.
A search's first argument is a :class:`~reflectnb.strategies.context.RunContext`
or a bare backend: the model, the recorder and the token path (so a stop
request ends a search as it ends a loop) come from it. Its generation settings
do **not**: a search keeps its own ``params=`` keyword, ``None`` meaning
sampling at T = 0.7 with the search's seed (:func:`default_params`), because a
context always has params and their default (greedy) would make sampled
children identical. Pass ``params=ctx.params`` to use the run's.
Values come from exactly one source: ``verifier=`` (``(state) -> bool | float``),
``prm=`` (``(question, partial) -> float``), or the model's own evaluation
(``evaluate="value"`` or ``"vote"``, ``n_evaluate`` samples).

Non-goals: the search policies.
"""

from __future__ import annotations

from typing import Any, Callable

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.errors import OptionError
from reflectnb.strategies.context import RunContext, as_context
from reflectnb.strategies.engine import choice, positive_int, run_loop
from reflectnb.strategies.tree.core import Evaluation, Search
from reflectnb.strategies.tree.result import TreeResult
from reflectnb.strategies.tree.tasks import Task

GENERATE_MODES = ("propose", "sample")
EVALUATE_MODES = ("value", "vote")


def as_task(task: Task | str) -> Task:
    """A :class:`Task`; a plain string becomes the generic question task."""
    if isinstance(task, Task):
        return task
    if isinstance(task, str) and task.strip():
        return Task(task.strip())
    raise OptionError(f"`task` must be a question string or a Task (e.g. Game24Task('4 9 10 13')), got {task!r:.60}")


def default_params(params: GenerationParams | None, seed: int | None, max_new_tokens: int) -> GenerationParams:
    """``params``, or sampling at T = 0.7 (ToT's and ReST-MCTS*'s temperature) with the run's seed."""
    if params is None:
        return GenerationParams(max_new_tokens=max_new_tokens, temperature=0.7, seed=seed)
    if not isinstance(params, GenerationParams):
        raise OptionError(f"`params` must be a GenerationParams, got {type(params).__name__}")
    return params


def evaluation(*, evaluate: str, n_evaluate: int, verifier: Callable | None, prm: Callable | None,
               value_backend: Backend | None, value_params: GenerationParams | None, seed: int | None,
               on_value_error: str, normalize: bool) -> Evaluation:
    """Which value source to use, checked."""
    choice("on_value_error", on_value_error, ("record", "raise"))
    if verifier is not None and prm is not None:
        raise OptionError("pass either `verifier` (state -> bool|float) or `prm` (question, partial -> float), not both")
    for name, fn in (("verifier", verifier), ("prm", prm)):
        if fn is not None and not callable(fn):
            raise OptionError(f"`{name}` must be a function, got {type(fn).__name__}")
    if value_backend is not None and not isinstance(value_backend, Backend):
        raise OptionError(f"`value_backend` must be a Backend, got {type(value_backend).__name__}")
    mode = "verifier" if verifier is not None else "prm" if prm is not None else choice(
        "evaluate", evaluate, EVALUATE_MODES)
    return Evaluation(mode=mode, backend=value_backend, n_evaluate=positive_int("n_evaluate", n_evaluate),
                      params=default_params(value_params, seed, 32), fn=verifier or prm,
                      on_error=on_value_error, normalize=normalize)


def start(method: str, ctx: RunContext | Backend, task: Task | str, *, generate: str, branch: int,
          params: GenerationParams | None, evaluation: Evaluation, seed: int | None,
          options: dict[str, Any]) -> Search:
    """A checked, ready :class:`Search` with its root node (node 0, the question) reported."""
    ctx = as_context(ctx)
    choice("generate", generate, GENERATE_MODES)
    params = default_params(params, seed, 96)
    if generate == "sample" and branch > 1 and params.temperature == 0:
        raise OptionError(f"generate='sample' with temperature 0 makes {branch} identical children; "
                          "use a temperature > 0 in `params`, or generate='propose'")
    search = Search(method, as_task(task), ctx, params, evaluation, seed,
                    {**options, "generate": generate, "branch": branch, "evaluate": evaluation.mode,
                     "n_evaluate": evaluation.n_evaluate, "seed": seed, "params": params.to_dict()})
    search.add(None, search.task.question, iteration=0)
    return search


def run(search: Search, body: Callable[[], TreeResult]) -> TreeResult:
    """Run the search; on Ctrl-C keep what was built (``stop_reason='interrupted'``) and re-raise.

    The loops' wrapper (:func:`~reflectnb.strategies.engine.run_loop`) does it; the
    tree is finished first, so the partial result on the exception has its best path.
    """
    return run_loop(search.result, body, lambda: search.finish(None, "interrupted"))
