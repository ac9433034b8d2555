"""The evaluation runner: methods × items, batched across items, resumable, every item traced.

Contract
--------
:func:`run_eval` answers every item of a :class:`~reflectnb.evaluate.tasks.TaskSet`
with every :class:`~reflectnb.evaluate.methods.Method` and returns one row per
(method, item) (see :mod:`reflectnb.evaluate.scoring`), methods in the order
given, items in task order.

* **Batching.** Items go ``batch_size`` at a time through
  :func:`~reflectnb.evaluate.batching.run_batched`, so the generate calls of
  the items of a batch are merged (8 baseline items → one 8-row call).
  ``batch_size=1`` runs items one by one, without threads.
* **Tracing and resuming.** With ``trace=True`` each (method, item) is one run
  in the trace store (kind ``eval:<method label>``, params with the eval id,
  item id, method, seed and generation settings; the correctness as a score;
  the row in the run's result), written when the item is done. Before
  running, the runner asks the store which items of this eval id and method
  already completed and skips them, so a rerun after a crash or Ctrl-C
  continues where it stopped, without duplicates.
* **Time.** ``seconds`` is the wall time of the item's batch divided by its size.
* **Errors.** Ctrl-C stops the run after storing every item that had
  finished, including the items of the interrupted batch that were done
  before it (e.g. a reflect loop that stopped early); the interrupted items
  are not stored and are redone by a rerun. A backend error ends the run
  after the batch's other items are stored.

Non-goals: statistics and charts (``result.py``, ``charts.py``).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.evaluate import record
from reflectnb.evaluate.batching import run_batched
from reflectnb.evaluate.methods import Method, Outcome, run_item
from reflectnb.evaluate.scoring import score_outcome
from reflectnb.evaluate.tasks import Item, TaskSet
from reflectnb.trace import ListRecorder


def generation_params(backend: Backend, method: Method, *, temperature: float, max_tokens: int,
                      seed: int | None) -> GenerationParams:
    """Settings for ``method`` on ``backend``, with its schedule turned into a logits processor."""
    from reflectnb.backends.params import params_for

    return params_for(backend, temperature=temperature, max_tokens=max_tokens, seed=seed,
                      schedule=method.schedule)


def run_eval(tasks: TaskSet, methods: Sequence[Method], backend: Backend, *, eval_id: str, batch_size: int = 8,
             temperature: float = 0.0, max_tokens: int = 256, seed: int | None = 0, trace: bool = True,
             progress: bool = True) -> list[dict[str, Any]]:
    """Rows for every (method, item); see the module docstring.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> from reflectnb.evaluate.tasks import load_tasks
    >>> from reflectnb.evaluate.methods import parse_methods
    >>> tasks = load_tasks([{"question": "2+2?", "answer": "4"}])
    >>> rows = run_eval(tasks, parse_methods("baseline"), ScriptedBackend(["The answer is 4"]),
    ...                 eval_id="demo", trace=False, progress=False)
    >>> rows[0]["correct"], rows[0]["predicted"]
    (True, '4')
    """
    rows: list[dict[str, Any]] = []
    for method in methods:
        params = generation_params(backend, method, temperature=temperature, max_tokens=max_tokens, seed=seed)
        rows += _run_method(tasks, method, backend, params, eval_id=eval_id, batch_size=batch_size,
                            trace=trace, progress=progress)
    return rows


def _run_method(tasks: TaskSet, method: Method, backend: Backend, params: GenerationParams, *, eval_id: str,
                batch_size: int, trace: bool, progress: bool) -> list[dict[str, Any]]:
    done = record.completed_rows(eval_id, method.label) if trace else {}
    todo = [item for item in tasks.items if item.id not in done]
    bar = _progress(len(tasks.items), len(tasks.items) - len(todo), method.label, progress)
    try:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            for row in _run_chunk(tasks, method, backend, params, chunk, eval_id=eval_id, trace=trace):
                done[row["item_id"]] = row
            bar.update(len(chunk))
    finally:
        bar.close()
    return [done[item.id] for item in tasks.items if item.id in done]


def _run_chunk(tasks: TaskSet, method: Method, backend: Backend, params: GenerationParams, chunk: list[Item], *,
               eval_id: str, trace: bool) -> list[dict[str, Any]]:
    def attempt(b: Backend, i: int) -> tuple[Outcome, ListRecorder]:
        recorder = ListRecorder()
        return run_item(method, b, tasks, chunk[i], params, recorder), recorder

    def keep(results: list[Any]) -> tuple[list[dict[str, Any]], BaseException | None]:
        seconds = (time.perf_counter() - started) / len(chunk)
        return _keep(tasks, method, backend, params, chunk, results, eval_id=eval_id, trace=trace, seconds=seconds)

    started = time.perf_counter()
    try:
        results = _attempt_all(backend, attempt, len(chunk))
    except KeyboardInterrupt as interrupt:  # store the items of this batch that had already finished
        keep(getattr(interrupt, "partial", None) or [])
        raise
    rows, failure = keep(results)
    if failure is not None:
        raise failure
    return rows


def _keep(tasks: TaskSet, method: Method, backend: Backend, params: GenerationParams, chunk: list[Item],
          results: list[Any], *, eval_id: str, trace: bool, seconds: float
          ) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Score (and store) the finished items; return their rows and the first failure of the others."""
    rows, failure = [], None
    for item, result in zip(chunk, results):
        if result is None or isinstance(result, BaseException):
            failure = failure or result
            continue
        outcome, recorder = result
        row = score_outcome(tasks, item, method, outcome, seconds=seconds, seed=params.seed)
        if trace:
            row["run_id"] = record.write_item(eval_id, tasks, item, method, backend.name, params, recorder, row)
        rows.append(row)
    return rows, failure


def _attempt_all(backend: Backend, attempt: Callable[[Backend, int], Any], n: int) -> list[Any]:
    if n == 1:
        try:
            return [attempt(backend, 0)]
        except Exception as exc:
            return [exc]
    return run_batched(backend, attempt, n)[0]


def _progress(total: int, initial: int, label: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"eval {label}", unit="item", disable=not enabled, leave=True)
