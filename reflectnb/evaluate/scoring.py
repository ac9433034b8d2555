"""Turn one method's :class:`~reflectnb.evaluate.methods.Outcome` for one item into a result row.

Contract
--------
:func:`score_outcome` returns a plain dict (one row of ``EvalResult.rows``,
also stored with the item's run in the trace store) with these keys:

``item_id, method, predicted, gold, correct, score, status, error, rounds,
round_answers, round_correct, tokens, seconds, gen_seconds, stop_reason,
final_text, seed, run_id``.

``status`` is ``"ok"``, ``"unparsed"`` (no answer could be extracted: counted
as wrong, and shown) or ``"checker_error"`` (the user's scoring code raised —
the checker, or an extraction function for the final answer: counted as
wrong, with the exception in ``error``). Nothing is dropped, so every method's
accuracy has the same denominator and paired tests line up item by item.

Non-goals: running methods, statistics over rows.
"""

from __future__ import annotations

from typing import Any

from reflectnb.evaluate.methods import Method, Outcome
from reflectnb.evaluate.tasks import Item, TaskSet

ROW_KEYS = ("item_id", "method", "predicted", "gold", "correct", "score", "status", "error", "rounds",
            "round_answers", "round_correct", "tokens", "seconds", "gen_seconds", "stop_reason", "final_text",
            "seed", "run_id")


def check(tasks: TaskSet, item: Item, predicted: str | None) -> tuple[float | None, str, str | None]:
    """``(score, status, error)`` for one extracted answer (``score`` is ``None`` unless checked)."""
    if predicted is None:
        return None, "unparsed", None
    try:
        return float(tasks.checker(predicted, item)), "ok", None
    except Exception as exc:  # a user's checker: keep the evaluation going, record why
        return None, "checker_error", f"{type(exc).__name__}: {exc}"


def score_outcome(tasks: TaskSet, item: Item, method: Method, outcome: Outcome, *, seconds: float,
                  seed: int | None) -> dict[str, Any]:
    """The result row for ``item`` answered by ``method`` (see the module docstring)."""
    checks = [check(tasks, item, answer) for answer in outcome.round_answers]
    score, status, error = checks[-1]
    if status == "unparsed" and outcome.extract_error:
        status, error = "checker_error", outcome.extract_error
    return {
        "item_id": item.id, "method": method.label, "predicted": outcome.round_answers[-1],
        "gold": _plain(item.answer), "correct": _is_correct(score), "score": score, "status": status,
        "error": error, "rounds": outcome.rounds, "round_answers": list(outcome.round_answers),
        "round_correct": [_is_correct(s) for s, _, _ in checks], "tokens": int(outcome.tokens),
        "seconds": float(seconds), "gen_seconds": float(outcome.gen_seconds),
        "stop_reason": outcome.stop_reason, "final_text": outcome.final_text, "seed": seed, "run_id": None,
    }


def _is_correct(score: float | None) -> bool:
    return score is not None and score >= 1.0 - 1e-9


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
