"""``compare``: the one-call evaluation API.

Contract
--------
``compare(tasks, methods, model=..., n=...)`` validates everything cheap first
(method names and options, the task set, numbers), then loads the model, runs
every method on every item (:func:`~reflectnb.evaluate.runner.run_eval`:
batched across items, resumable, each item a run in the trace store) and
returns an :class:`~reflectnb.evaluate.result.EvalResult`.

The **eval id** names the evaluation in the trace store. By default it is a
hash of everything the rows depend on (:func:`~reflectnb.evaluate.identity.eval_key`):
the task set (name, ids, questions, answers, instruction), the checker and the
extraction rule (a Python function by qualified name and source hash), the
model name and dtype, and the generation settings. So running the same
``compare`` again resumes it (items already completed are read back, not
regenerated), adding a method later reuses the others, and changing how items
are asked or scored starts a new evaluation instead of reusing rows scored the
old way. Pass ``eval_id=`` to choose it, or ``resume=False`` to start a fresh one.

Non-goals: running several models in one call (call ``compare`` per model).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any, Sequence

from reflectnb.backends.base import Backend
from reflectnb.errors import OptionError
from reflectnb.evaluate.methods import Method, parse_methods
from reflectnb.evaluate.result import EvalResult
from reflectnb.evaluate.runner import run_eval
from reflectnb.evaluate.tasks import TaskSet, load_tasks

DEFAULT_BATCH_SIZE = 8  # items at once on a local model (a server backend: its `concurrency`, when more)


def compare(tasks: Any, methods: str | Sequence[str | Method] = ("baseline", "reflect"), *,
            model: str | Backend | None = None, n: int | None = None, seed: int = 0, batch_size: int | None = None,
            temperature: float = 0.0, max_tokens: int = 256, checker: Any = "exact", extract: Any = "auto",
            eval_id: str | None = None, resume: bool = True, trace: bool = True, progress: bool = True,
            confidence: float = 0.95, **task_options: Any) -> EvalResult:
    """Compare methods on a task set with a verifier.

    Parameters
    ----------
    tasks : str, path, DataFrame, list of dict or TaskSet
        ``"rg:<dataset>"`` (reasoning-gym), a JSONL file, rows with ``question``
        and ``answer`` fields (see :func:`~reflectnb.evaluate.tasks.load_tasks`).
    methods : list of str or one comma-separated str
        From ``baseline``, ``self_consistency``, ``reflect``, ``critique``,
        ``debate``, with options ``reflect(rounds=2)`` and a decoding schedule
        ``baseline@cyclic(amplitude=5, period=60)``.
    model : str or Backend
        A model name for :func:`reflectnb.backends.load_model` (default: the embedded model).
    n : int, optional
        Number of items (reasoning-gym: generated; others: the first ``n``).
    seed : int
        Task generation seed and generation seed (recorded with every item).
    batch_size : int, optional
        Items run together; their generate calls are merged (1 = one by one). Default
        8, or a server backend's requests in flight (``concurrency``) when that is more,
        so a batch of items keeps the server as busy as ``concurrency`` allows.
    temperature, max_tokens :
        Generation settings of every method (self-consistency samples at its own temperature).
    checker, extract :
        How answers are checked and read (ignored for reasoning-gym, which scores itself).
    eval_id, resume :
        The evaluation's name in the trace store; ``resume=False`` makes a fresh id.
    trace, progress, confidence :
        Write items to the trace store; show tqdm bars; the level of the intervals.
    task_options :
        Extra reasoning-gym dataset options.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> model = ScriptedBackend(lambda prompt, i: "The answer is 4")
    >>> result = compare([{"question": "2+2?", "answer": "4"}, {"question": "2+3?", "answer": "5"}],
    ...                  ["baseline"], model=model, trace=False, progress=False)
    >>> result.summary()[["method", "n", "correct"]].values.tolist()
    [['baseline', 2, 1]]
    """
    parsed = parse_methods(methods)
    _check_numbers(batch_size=batch_size, max_tokens=max_tokens, n=n)
    if not 0 <= temperature:
        raise OptionError(f"`temperature` must be >= 0, got {temperature!r}")
    if not 0 < confidence < 1:
        raise OptionError(f"`confidence` must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    task_set = _task_set(tasks, n, seed, checker, extract, task_options)
    from reflectnb.backends import load_model

    backend = load_model(model)
    settings = {"temperature": temperature, "max_tokens": max_tokens, "seed": seed}
    eval_id = eval_id or (default_eval_id(task_set, backend, settings) if resume else f"eval-{uuid.uuid4().hex[:12]}")
    batch_size = default_batch_size(backend) if batch_size is None else batch_size
    rows = run_eval(task_set, parsed, backend, eval_id=eval_id, batch_size=batch_size if backend.can_batch else 1,
                    temperature=temperature, max_tokens=max_tokens, seed=seed, trace=trace, progress=progress)
    return EvalResult(eval_id, task_set.name, backend.name, [m.label for m in parsed], rows,
                      settings={**settings, "batch_size": batch_size, "items": len(task_set)}, confidence=confidence)


def default_batch_size(backend: Backend) -> int:
    """8 items at once, or as many as a server backend keeps requests in flight, when more.

    Why: each merged call is one step of ``batch_size`` items, so a batch of 8 leaves a
    server backend with 16 requests in flight at most half busy (measured in
    ``benchmarks/bench_eval_http.py``).
    """
    in_flight = getattr(backend, "in_flight", None)
    return max(DEFAULT_BATCH_SIZE, in_flight()) if callable(in_flight) else DEFAULT_BATCH_SIZE


def _task_set(tasks: Any, n: int | None, seed: int, checker: Any, extract: Any, options: dict[str, Any]) -> TaskSet:
    if isinstance(tasks, TaskSet):
        if options:
            raise OptionError(f"options {sorted(options)} apply when loading tasks, not to a TaskSet")
        return tasks if n is None else TaskSet(tasks.name, tasks.items[:n], tasks.checker, tasks.extract,
                                               tasks.instruction)
    return load_tasks(tasks, n=n, seed=seed, checker=checker, extract=extract, **options)


def _check_numbers(**values: Any) -> None:
    for name, value in values.items():
        if value is None and name in ("n", "batch_size"):
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise OptionError(f"`{name}` must be a positive integer, got {value!r}")


def default_eval_id(tasks: TaskSet, model: str | Backend, settings: dict[str, Any]) -> str:
    """``eval-<12 hex>`` from :func:`~reflectnb.evaluate.identity.eval_key` (tasks, scoring, model, settings)."""
    from reflectnb.evaluate.identity import eval_key

    key = json.dumps(eval_key(tasks, model, settings), sort_keys=True)
    return "eval-" + hashlib.sha256(key.encode()).hexdigest()[:12]
