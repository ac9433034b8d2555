"""The evaluation's side of the trace store: write one item's run, find the items already done.

Contract
--------
* :func:`write_item` records one (method, item) as one run of kind
  ``eval:<method label>`` whose params hold ``eval_id``, ``item_id``,
  ``method``, ``seed``, the task set, checker and generation settings. The
  run gets the loop's steps (with generations and tokens) and scores as the
  loop reported them, then the scores ``correct`` (1/0, label = the row's
  status) and ``checker_score``, and the result row under ``result.eval``.
* :func:`completed_rows` returns ``{item_id: row}`` for the runs of an eval id
  and method whose status is ``completed`` (runs left ``running`` by a killed
  process, or ``interrupted``/``failed``, do not count, so they are redone).

Only the store's public API is used (``open_store``, ``TraceStore.run``,
``TraceStore.sql``). Non-goals: a storage layer of its own.
"""

from __future__ import annotations

import json
from typing import Any

from reflectnb.backends.base import GenerationParams
from reflectnb.evaluate.identity import rule_identity
from reflectnb.trace import ListRecorder, Score

KIND_PREFIX = "eval:"


def kind_of(label: str) -> str:
    """The run kind of a method label."""
    return KIND_PREFIX + label


def _store() -> Any:
    from reflectnb.store import open_store

    return open_store()


def write_item(eval_id: str, tasks: Any, item: Any, method: Any, model: str, params: GenerationParams,
               recorder: ListRecorder, row: dict[str, Any]) -> str:
    """Write one finished item as a completed run; returns its run id."""
    settings = {"eval_id": eval_id, "item_id": item.id, "method": method.label, "method_name": method.name,
                "options": method.options, "schedule": method.schedule, "seed": params.seed, "task_set": tasks.name,
                "checker": repr(tasks.checker), "extract": rule_identity(tasks.extract),
                "generation": params.to_dict()}
    with _store().run(kind_of(method.label), model, settings) as run:
        for step in recorder.steps:
            run.on_step(step)
        for score in recorder.scores:
            run.on_score(score)
        run.on_score(Score("correct", value=float(row["correct"]), label=row["status"],
                           explanation=row["error"] or f"predicted {row['predicted']!r}, gold {row['gold']!r}"))
        run.on_score(Score("checker_score", value=row["score"], label=row["status"]))
        run.set_result(row["predicted"], row["stop_reason"], task=item.question,
                       eval={k: v for k, v in row.items() if k != "run_id"})
    return run.run_id


def completed_rows(eval_id: str, label: str) -> dict[str, dict[str, Any]]:
    """``{item_id: row}`` of the completed runs of this eval id and method (latest wins)."""
    frame = _store().sql(
        "SELECT run_id, result FROM runs WHERE kind = $kind AND json_extract_string(params, '$.eval_id') = $eval "
        "AND status = 'completed' ORDER BY ended_at", {"kind": kind_of(label), "eval": eval_id})
    done: dict[str, dict[str, Any]] = {}
    for run_id, result in zip(frame["run_id"], frame["result"]):
        row = _row(result)
        if row is not None:
            done[row["item_id"]] = {**row, "run_id": run_id}
    return done


def _row(result: Any) -> dict[str, Any] | None:
    data = json.loads(result) if isinstance(result, str) else result
    row = data.get("eval") if isinstance(data, dict) else None
    return row if isinstance(row, dict) and "item_id" in row else None
