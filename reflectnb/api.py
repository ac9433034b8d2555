"""The public Python API: one call runs a method with tracing and an optional live view.

``reflectnb.reflect(...)``, ``critique``, ``debate``, ``tree`` and every other
registered strategy (:mod:`reflectnb.strategies.spec`) are made by
:func:`strategy_function` from the strategy's spec; each call goes through
:func:`run_strategy`, which

1. checks the options against the spec and refuses a run above ``max_generations``,
2. resolves model names to backends (:func:`reflectnb.backends.load_model`) and
   turns a ``schedule`` string into a logits processor for that model,
3. opens a run in the trace store (unless ``trace=False``) and, if ``live``,
   shows the spec's live view; both receive the reports through one
   :class:`~reflectnb.trace.FanOut` recorder, inside one
   :class:`~reflectnb.strategies.context.RunContext` (the view's stop button sets its stop signal),
4. calls ``spec.run(ctx, task, options)`` and returns its result with ``result.run_id`` set.

:func:`generate` is the raw call (one prompt or a batch), traced the same way.

Ctrl-C (or the live view's stop button) ends the run as ``interrupted`` in the
store, with everything produced so far; the ``KeyboardInterrupt`` is re-raised
with the partial result attached as ``.partial``.

This module composes the lower layers; it contains no loop logic of its own.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable, Iterator, Sequence

from reflectnb.backends import Backend, load_model
from reflectnb.backends.base import GenerationParams, Prompt
from reflectnb.backends.params import params_for
from reflectnb.errors import OptionError
from reflectnb.strategies.context import RunContext
from reflectnb.strategies.spec import Strategy, check_budget, get_strategy, strategies
from reflectnb.trace import FanOut, ListRecorder, Recorder

Model = str | Backend | None


@contextlib.contextmanager
def traced_run(kind: str, model_name: str, settings: dict[str, Any], *, trace: bool = True,
               live: Any = None, view_kind: str | None = None) -> Iterator[tuple[Recorder, Any, Any]]:
    """Open a trace-store run and a live view; yield ``(recorder, run, view)``.

    ``run`` is the store's run recorder (``None`` with ``trace=False``): call
    ``run.set_result(...)`` when done. ``view`` is the live view or ``None``; it
    is displayed before the run starts and marked finished when it ends.
    """
    view = _live_view(view_kind or kind, live)
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


def _context(backend: Backend, params: GenerationParams, recorder: Recorder, view: Any, **fields: Any) -> RunContext:
    """The run context: reports go to ``recorder``; a view hears turns and its stop button sets the stop signal."""
    ctx = RunContext(backend, params=params, recorder=recorder, on_turn=getattr(view, "on_turn", None), **fields)
    listener = getattr(view, "stop_listener", None)
    if listener is not None:
        ctx.stop.watch(listener.requested, listener.poll, view.stop_message)
    return ctx


def _run_traced(kind: str, backend: Backend, params: GenerationParams, settings: dict[str, Any],
                run: Callable[[RunContext, Any, Any], Any], task: Any, options: Any, *, trace: bool, live: Any,
                view_kind: str | None = None) -> Any:
    """``run(ctx, task, options)`` in a traced run; store its answer and stop reason; set ``run_id``."""
    stored = None
    try:
        with traced_run(kind, backend.name, settings, trace=trace, live=live, view_kind=view_kind) as (
                recorder, stored, view):
            result = run(_context(backend, params, recorder, view), task, options)
            answer = getattr(result, "answer", getattr(result, "final_answer", None))
            stop_reason = getattr(result, "stop_reason", None)
            if stored is not None:
                question = getattr(result, "task", None) or getattr(result, "question", None) or settings.get("task")
                stored.set_result(answer, stop_reason, task=question)
                result.run_id = stored.run_id
            if view is not None:
                view.finish("completed", stop_reason, answer)
            return result
    except KeyboardInterrupt as interrupt:
        partial = getattr(interrupt, "partial", None)  # a loop's result, or generate's generations
        for item in (partial if isinstance(partial, list) else [partial]):
            if stored is not None and hasattr(item, "run_id"):
                item.run_id = stored.run_id
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
        A generation controller from ``reflectnb.controllers`` (``BudgetForcing``,
        ``SRGen``, ``FirstTryEarlyStop``, ``PSR``, ``IDSampling``); its interventions are traced.

    Examples
    --------
    >>> gen = reflectnb.generate("The capital of France is", max_tokens=8)  # doctest: +SKIP
    >>> gen.text, gen.tokens[0].entropy, gen.run_id                       # doctest: +SKIP
    """
    backend = load_model(model)
    batch = isinstance(prompt, (list, tuple)) and not _is_message_list(prompt)
    prompts = list(prompt) if batch else [prompt]
    params = params_for(backend, temperature=temperature, max_tokens=max_tokens, seed=seed,
                        schedule=schedule, variants=variants, top_logprobs=top_logprobs)

    settings = {**params.to_dict(), "controller": repr(controller) if controller is not None else None}
    result = _run_traced("generate", backend, params, settings, _generate, prompts, controller, trace=trace,
                         live=live)
    return result.items if batch else result.items[0]


def _generate(ctx: RunContext, prompts: list[Prompt], controller: Any) -> "_Generations":
    """:func:`generate`'s body, shaped like a strategy's ``run(ctx, task, options)``."""
    from reflectnb.trace import Step

    if controller is None:
        gens = ctx.backend.generate(prompts, ctx.params, on_token=ctx.token)
    else:
        gens = [controller.run(ctx.backend, p, ctx.params, on_token=ctx.token) for p in prompts]
    for gen in gens:
        ctx.recorder.on_step(Step(kind="generation", text=gen.text, generation=gen,
                                  attributes={"controller": type(controller).__name__} if controller else {}))
    return _Generations(gens)


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


def run_strategy(name: str, task: Any, *, model: Model = None, temperature: float | None = None,
                 max_tokens: int | None = None, seed: int | None = None, schedule: Any = None,
                 trace: bool = True, live: Any = False, max_generations: int | None = None,
                 where: str | None = None, **options: Any) -> Any:
    """Run the registered strategy ``name`` on ``task``: the body of every ``reflectnb.<name>`` function.

    Model options (a critic, debate agents) may be names or loaded backends.
    A run whose estimated model calls exceed ``max_generations`` (default
    10,000) is refused before anything loads. ``where`` names the caller in
    error messages (``%%reflect`` for the magic; default ``reflectnb.<name>``).
    """
    spec = get_strategy(name, "api")
    magic = where is not None and where.startswith("%%")
    where = where or f"reflectnb.{name}"
    opts = spec.options_from(_load_models(spec, options), where, flags=magic)
    counts = [f for f in spec.fields if f.type is int and getattr(opts, f.name) is not None]
    check_budget(spec.estimate(opts), max_generations, where,
                 f"lower {' or '.join(f.flag for f in counts)}, or raise --max-generations" if magic else
                 f"lower {' or '.join(f.name for f in counts)}, or pass a larger max_generations")
    backend = load_model(model) if model is not None else _first_model(spec, opts) or load_model(None)
    params = params_for(backend, temperature=spec.sampling["temperature"] if temperature is None else temperature,
                        max_tokens=max_tokens or spec.sampling["max_tokens"], seed=seed, schedule=schedule)
    settings = _settings(params, task=str(getattr(task, "question", task)), **_plain_options(opts),
                         schedule=str(schedule) if schedule else None)
    return _run_traced(name, backend, params, settings, spec.run, task, opts, trace=trace, live=live,
                       view_kind=spec.view)


def _load_models(spec: Strategy, options: dict[str, Any]) -> dict[str, Any]:
    """Model options given as names (``"smollm2-135m"``, or ``"a,b,c"`` for many) become backends."""
    out = dict(options)
    for f in spec.fields:
        value = out.get(f.name)
        if not f.info.model or value is None:
            continue
        if f.info.many:
            names = [m.strip() for m in value.split(",")] if isinstance(value, str) else list(value)
            out[f.name] = [load_model(m) for m in names]
        else:
            out[f.name] = load_model(value)
    return out


def _first_model(spec: Strategy, opts: Any) -> Backend | None:
    """Without ``model``, the first of a method's own models (``debate(models=[a, b, c])`` runs as ``a``)."""
    for f in spec.fields:
        value = getattr(opts, f.name)
        if f.info.model and value:
            return value[0] if f.info.many else None
    return None


def _plain_options(opts: Any) -> dict[str, Any]:
    """Options as the trace records them: backends by name, callables and templates left out."""
    out = {}
    for key, value in vars(opts).items():
        if isinstance(value, Backend):
            value = value.name
        elif isinstance(value, list) and value and all(isinstance(v, Backend) for v in value):
            value = [v.name for v in value]
        out[key] = value
    return out


def strategy_function(name: str) -> Callable[..., Any]:
    """``reflectnb.<name>``: a function with the strategy's options as keywords, its help as docstring."""
    spec = get_strategy(name, "api")

    def run(task: Any, **kwargs: Any) -> Any:
        return run_strategy(name, task, **kwargs)

    common = inspect.signature(run_strategy).parameters
    params = [inspect.Parameter(spec.task_name, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [p for key, p in common.items() if key not in ("name", "task", "options", "where")]
    params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default) for f in spec.fields]
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = name
    run.__module__ = __name__
    run.__doc__ = (f"{spec.help_text()}\n\nAlso: model, temperature (default {spec.sampling['temperature']}), "
                   f"max_tokens (default {spec.sampling['max_tokens']}), seed, schedule, trace, live, "
                   "max_generations; see reflectnb.api.run_strategy.")
    return run


def __getattr__(name: str) -> Any:
    """``reflectnb.api.reflect`` and every other registered strategy's function."""
    if name.startswith("_") or name not in strategies("api"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return strategy_function(name)


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
