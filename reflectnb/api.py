"""The public Python API: one call runs a loop with tracing and an optional live view.

``reflectnb.reflect(...)``, ``critique``, ``debate`` and ``generate`` each:

1. resolve model names to backends (:func:`reflectnb.backends.load_model`),
2. turn a ``schedule`` string into a logits processor for that model,
3. open a run in the trace store (unless ``trace=False``) and, if ``live``,
   show a live view; both receive the loop's reports through one
   :class:`~reflectnb.trace.FanOut` recorder,
4. call the strategy and return its result with ``result.run_id`` set.

Ctrl-C (or the live view's stop button) ends the run as ``interrupted`` in the
store, with everything produced so far; the ``KeyboardInterrupt`` is re-raised
with the partial result attached as ``.partial``.

This module composes the lower layers; it contains no loop logic of its own.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

from reflectnb.backends import Backend, load_model
from reflectnb.backends.base import GenerationParams, Prompt
from reflectnb.backends.params import params_for
from reflectnb.errors import OptionError
from reflectnb.trace import FanOut, ListRecorder, Recorder

Model = str | Backend | None


@contextlib.contextmanager
def traced_run(kind: str, model_name: str, settings: dict[str, Any], *, trace: bool = True,
               live: Any = None) -> Iterator[tuple[Recorder, Any, Any]]:
    """Open a trace-store run and a live view; yield ``(recorder, run, view)``.

    ``run`` is the store's run recorder (``None`` with ``trace=False``): call
    ``run.set_result(...)`` when done. ``view`` is the live view or ``None``; it
    is displayed before the run starts and marked finished when it ends.
    """
    view = _live_view(kind, live)
    status = "failed"
    try:
        if not trace:
            yield (FanOut(ListRecorder(), view) if view is not None else ListRecorder()), None, view
        else:
            from reflectnb.store import open_store

            with open_store().run(kind, model_name, settings) as run:
                yield (FanOut(run, view) if view is not None else run), run, view
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if view is not None and getattr(view, "status", "running") == "running":
            view.finish(status)


def _live_view(kind: str, live: Any) -> Any:
    if live is None or live is False:
        return None
    if live is True:
        from reflectnb.widgets import LiveView, TreeView

        return TreeView(title="tree", status="running").show() if kind == "tree" else LiveView(kind=kind).show()
    return live  # a view the caller made


def _run_strategy(kind: str, model_name: str, settings: dict[str, Any], call: Callable[[Recorder], Any],
                  *, trace: bool, live: Any) -> Any:
    run = None
    try:
        with traced_run(kind, model_name, settings, trace=trace, live=live) as (recorder, run, view):
            result = call(recorder)
            answer = getattr(result, "answer", getattr(result, "final_answer", None))
            stop_reason = getattr(result, "stop_reason", None)
            if run is not None:
                task = getattr(result, "task", None) or getattr(result, "question", None) or settings.get("task")
                run.set_result(answer, stop_reason, task=task)
                result.run_id = run.run_id
            if view is not None:
                view.finish("completed", stop_reason, answer)
            return result
    except KeyboardInterrupt as interrupt:
        partial = getattr(interrupt, "partial", None)  # a loop's result, or generate's generations
        for item in (partial if isinstance(partial, list) else [partial]):
            if run is not None and hasattr(item, "run_id"):
                item.run_id = run.run_id
        raise


def generate(prompt: Prompt | Sequence[Prompt], *, model: Model = None, temperature: float = 0.0,
             max_tokens: int = 256, seed: int | None = None, schedule: Any = None, variants: str = "exact",
             controller: Any = None, trace: bool = True, live: Any = False, top_logprobs: int = 0):
    """Generate from one prompt (or a batch) with tracing; returns Generation(s).

    Parameters
    ----------
    schedule : str, optional
        A reflection-token schedule, e.g. ``"cyclic(amplitude=5, period=600)"``.
    variants : str
        Which spellings of the reflection words the schedule biases: ``"exact"``
        (CyclicReflex's choice), ``"exact+space"`` or ``"all_case_space"``.
    controller : optional
        A generation controller from ``reflectnb.decoding.controllers`` (``BudgetForcing``,
        ``SRGen``, ``FirstTryEarlyStop``, ``PSR``, ``IDSampling``); its interventions are traced.

    Examples
    --------
    >>> gen = reflectnb.generate("The capital of France is", max_tokens=8)  # doctest: +SKIP
    >>> gen.text, gen.tokens[0].entropy, gen.run_id                       # doctest: +SKIP
    """
    from reflectnb.trace import Step

    backend = load_model(model)
    batch = isinstance(prompt, (list, tuple)) and not _is_message_list(prompt)
    prompts = list(prompt) if batch else [prompt]
    params = params_for(backend, temperature=temperature, max_tokens=max_tokens, seed=seed,
                        schedule=schedule, variants=variants, top_logprobs=top_logprobs)

    def call(recorder: Recorder):
        if controller is None:
            gens = backend.generate(prompts, params, on_token=recorder.on_token)
        else:
            gens = [controller.run(backend, p, params, on_token=recorder.on_token) for p in prompts]
        for gen in gens:
            recorder.on_step(Step(kind="generation", text=gen.text, generation=gen,
                                  attributes={"controller": type(controller).__name__} if controller else {}))
        return _Generations(gens)

    settings = {**params.to_dict(), "controller": repr(controller) if controller is not None else None}
    result = _run_strategy("generate", backend.name, settings, call, trace=trace, live=live)
    return result.items if batch else result.items[0]


def _is_message_list(prompt: Sequence[Any]) -> bool:
    from reflectnb.trace import Message

    return bool(prompt) and all(isinstance(m, (Message, dict)) for m in prompt)


class _Generations:
    """Carries generations through :func:`_run_strategy`, which sets ``run_id`` on each."""

    def __init__(self, items):
        self.items = items
        self.answer = items[0].text if len(items) == 1 else None
        self.stop_reason = items[0].finish_reason if len(items) == 1 else None

    @property
    def run_id(self):
        return self.items[0].run_id if self.items else None

    @run_id.setter
    def run_id(self, value):
        for item in self.items:
            item.run_id = value


def _settings(params: GenerationParams, **options: Any) -> dict[str, Any]:
    """What the trace store records as the run's parameters (no backends, no callables)."""
    out = {k: v for k, v in options.items() if v is None or isinstance(v, (str, int, float, bool, list, dict))}
    out["generation"] = params.to_dict()
    return out


def _view_hooks(recorder: Recorder) -> dict[str, Any]:
    """Forward turn announcements (which agent is which batch row) to a live view."""
    views = [r for r in getattr(recorder, "recorders", [recorder]) if hasattr(r, "on_turn")]
    return {"on_turn": views[0].on_turn} if views else {}


def reflect(task: str, *, model: Model = None, rounds: int = 3, history: str = "full", tone: Any = None,
            stop_fn: Callable[[str], Any] | None = None, score_threshold: float | None = None,
            templates: dict[str, str] | None = None, temperature: float = 0.0, max_tokens: int = 256,
            seed: int | None = None, schedule: Any = None, trace: bool = True, live: Any = False):
    """Self-Refine: draft, self-feedback, refine, for up to ``rounds`` rounds.

    Parameters
    ----------
    task : str
        What to write or solve.
    model : str or Backend, optional
        Model name (default: ``smollm2-135m``) or a backend object.
    rounds : int
        Feedback-then-refine rounds after the draft (stops earlier on the
        feedback's stop marker, ``stop_fn`` or ``score_threshold``).
    schedule : str, optional
        A reflection-token schedule, e.g. ``"cyclic(amplitude=5, period=600)"``.
    trace, live : bool
        Record the run in the trace store; show a live view while it runs.

    Examples
    --------
    >>> result = reflectnb.reflect("Write a haiku about rain.", rounds=2)   # doctest: +SKIP
    >>> result.answer, result.stop_reason, result.run_id                    # doctest: +SKIP
    """
    import reflectnb.strategies as strategies

    backend = load_model(model)
    params = params_for(backend, temperature=temperature, max_tokens=max_tokens, seed=seed, schedule=schedule)
    settings = _settings(params, task=task, rounds=rounds, history=history, tone=tone,
                         score_threshold=score_threshold, schedule=str(schedule) if schedule else None)
    return _run_strategy("reflect", backend.name, settings, lambda rec: strategies.reflect(
        backend, task, rounds=rounds, history=history, stop_fn=stop_fn, score_threshold=score_threshold,
        templates=templates, tone=tone, params=params, recorder=rec, **_view_hooks(rec)),
        trace=trace, live=live)


def critique(task: str, *, model: Model = None, critic: Model = None, rounds: int = 1,
             refine_policy: str = "always", templates: dict[str, str] | None = None,
             temperature: float = 0.0, max_tokens: int = 256, seed: int | None = None,
             schedule: Any = None, trace: bool = True, live: Any = False):
    """Actor answers step by step, a critic judges each step, the actor revises.

    Examples
    --------
    >>> result = reflectnb.critique("What is 12 * 13?", rounds=1)   # doctest: +SKIP
    >>> result.first_wrong_step, result.answer                       # doctest: +SKIP
    """
    import reflectnb.strategies as strategies

    actor = load_model(model)
    judge = load_model(critic) if critic else actor
    params = params_for(actor, temperature=temperature, max_tokens=max_tokens, seed=seed, schedule=schedule)
    settings = _settings(params, task=task, critic=judge.name, rounds=rounds, refine_policy=refine_policy)
    return _run_strategy("critique", actor.name, settings, lambda rec: strategies.critique(
        actor, task, critic=judge, rounds=rounds, refine_policy=refine_policy, templates=templates,
        params=params, recorder=rec, **_view_hooks(rec)), trace=trace, live=live)


def debate(question: str, *, model: Model = None, models: Sequence[Model] | str | None = None,
           method: str = "du", rounds: int | None = None, agents: int | None = None,
           aggregator: str = "majority", templates: dict[str, str] | None = None,
           temperature: float = 0.0, max_tokens: int = 256, seed: int | None = None,
           schedule: Any = None, trace: bool = True, live: Any = False):
    """Multi-agent debate: ``method="du"`` (N agents, R rounds, vote) or ``"mad"`` (moderated).

    ``models`` gives one model per agent (du) or per role (mad: affirmative,
    negative, moderator); agents sharing a model are generated as one batch.

    Examples
    --------
    >>> result = reflectnb.debate("Is 91 prime?", agents=3, rounds=2)   # doctest: +SKIP
    >>> result.answer, result.votes                                      # doctest: +SKIP
    """
    import reflectnb.strategies as strategies
    from reflectnb.errors import OptionError

    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models or [])
    backends = [load_model(m) for m in names] or [load_model(model)]
    params = params_for(backends[0], temperature=temperature, max_tokens=max_tokens, seed=seed, schedule=schedule)
    settings = _settings(params, question=question, method=method, rounds=rounds, agents=agents,
                         aggregator=aggregator, models=[b.name for b in backends])
    if method == "mad":
        target = backends[0] if len(backends) == 1 else dict(zip(("affirmative", "negative", "moderator"), backends))
        call = lambda rec: strategies.debate_mad(target, question, max_rounds=rounds or 3, templates=templates,  # noqa: E731
                                                 params=params, recorder=rec, **_view_hooks(rec))
    elif method == "du":
        call = lambda rec: strategies.debate_du(backends, question, n_agents=agents, rounds=rounds or 2,  # noqa: E731
                                                aggregator=aggregator, templates=templates, params=params,
                                                recorder=rec, **_view_hooks(rec))
    else:
        raise OptionError(f"`method` must be 'du' or 'mad', got {method!r}")
    return _run_strategy("debate", backends[0].name, settings, call, trace=trace, live=live)


def tree(task: Any, *, model: Model = None, method: str = "bfs", temperature: float | None = None,
         max_tokens: int | None = None, seed: int | None = None, trace: bool = True, live: Any = False,
         **options: Any):
    """Search over reasoning steps: ``method`` is bfs | dfs | mcts | best_of_n | self_consistency.

    ``task`` is a question string or a task object (``Game24Task``,
    ``ArithmeticTask``); ``options`` go to the search (``iterations``, ``branch``,
    ``depth``, ``verifier``, ``prm`` …; see ``docs/trees.md``). Every node is
    recorded in the trace store and can be rebuilt from SQL.

    Examples
    --------
    >>> from reflectnb.strategies.tree import Game24Task
    >>> r = reflectnb.tree(Game24Task("4 9 10 13"), method="mcts", iterations=10)   # doctest: +SKIP
    >>> r.best_path, r.answer                                                       # doctest: +SKIP
    """
    from reflectnb.strategies.tree import tree_search

    backend = load_model(model)
    if temperature is not None or max_tokens is not None:
        options["params"] = params_for(backend, temperature=0.7 if temperature is None else temperature,
                                       max_tokens=max_tokens or 96, seed=seed)
    if seed is not None:
        options["seed"] = seed
    settings = {"task": str(getattr(task, "question", task)), "method": method,
                **{k: v for k, v in options.items() if isinstance(v, (str, int, float, bool))}}
    return _run_strategy("tree", backend.name, settings,
                         lambda rec: tree_search(backend, task, method, recorder=rec, **options),
                         trace=trace, live=live)


def view(what: Any, *, store: Any = None, **kwargs: Any):
    """Open a run in the interactive tree view.

    ``what`` is a tree result (its nodes), a reflect / critique / debate result
    (a refinement chain as a path, a debate as a layered graph: round × agent), or a
    run id from the trace store. ``view.selected`` is the node clicked last.

    Examples
    --------
    >>> v = reflectnb.view(reflectnb.tree("Make 24 from 4 9 10 13", method="mcts"))   # doctest: +SKIP
    >>> v = reflectnb.view(reflectnb.debate("Is 0.1 + 0.2 == 0.3 in floats?"))          # doctest: +SKIP
    >>> v = reflectnb.view("run-3f2a…")                                                  # doctest: +SKIP
    """
    from reflectnb.widgets import TreeView

    if isinstance(what, str):
        return TreeView.from_run(what, store=store, **kwargs)
    if hasattr(what, "nodes") and hasattr(what, "best_path"):
        return TreeView.from_result(what, **kwargs)
    if hasattr(what, "steps"):
        kind = getattr(what, "strategy", "") or "reflect"
        method = getattr(what, "method", None)
        return TreeView.from_steps(what.steps, kind=f"{kind} · {method}" if method else kind, **kwargs)
    raise OptionError(f"reflectnb.view takes a result (tree, reflect, critique, debate) or a run id; "
                      f"got {type(what).__name__}")
