"""EvalResult: the rows of an evaluation and the views computed from them.

Contract
--------
An :class:`EvalResult` holds one row per (method, item) (keys in
:data:`~reflectnb.evaluate.scoring.ROW_KEYS`) and computes, without running anything:

* :meth:`~EvalResult.summary` — per method: accuracy with its Wilson interval,
  unparsed answers and checker errors (counted as wrong, and shown), tokens
  and seconds per item, items per minute, and the confirmatory/corrective
  share of reflections;
* :meth:`~EvalResult.paired` — every pair of methods on the same items: exact
  McNemar p-value and a paired bootstrap CI of the accuracy difference;
* :meth:`~EvalResult.outcome_matrix` — per method and round: how many items
  went wrong→right, right→wrong, right→right, wrong→wrong (round ``k``
  compares the answer after round ``k-1`` with the one after round ``k``; the
  row ``"first→final"`` compares the first answer with the final one). An item
  whose loop stopped early keeps its answer in later rounds, so every row sums
  to the number of items;
* :meth:`~EvalResult.reflections` — each reflection round an item actually
  ran, classified as confirmatory / corrective / other (First Try Matters);
* :attr:`~EvalResult.charts` — altair charts of these tables.

Non-goals: running methods (``runner.py``); storing (the trace store already has every item).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from reflectnb.errors import OptionError
from reflectnb.evaluate.stats import (KINDS, TRANSITIONS, discordant, mcnemar_exact, paired_bootstrap,
                                      reflection_kind, transition, wilson)
from reflectnb.strategies.voting import normalize

SUMMARY_COLUMNS = ["method", "n", "correct", "accuracy", "ci_low", "ci_high", "unparsed", "checker_errors",
                   "tokens_per_item", "seconds_per_item", "items_per_minute", "reflections", "confirmatory_rate",
                   "corrective_rate"]


@dataclass
class EvalResult:
    """The rows of one evaluation (``eval_id``) and the views over them."""

    eval_id: str
    tasks: str
    model: str
    methods: list[str]
    rows: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.95

    def to_df(self):
        """One row per (method, item), as a pandas DataFrame."""
        import pandas as pd

        from reflectnb.evaluate.scoring import ROW_KEYS

        return pd.DataFrame(self.rows, columns=list(ROW_KEYS))

    def rows_of(self, method: str) -> list[dict[str, Any]]:
        """The rows of one method (an OptionError lists the methods if unknown)."""
        if method not in self.methods:
            raise OptionError(f"no method {method!r} in this evaluation; it has {self.methods}")
        return [r for r in self.rows if r["method"] == method]

    # -- tables ------------------------------------------------------------------------------------------------

    def summary(self):
        """Per-method accuracy (Wilson CI), unparsed, errors, tokens/time per item, reflection shares."""
        import pandas as pd

        return pd.DataFrame([self._summary_row(m) for m in self.methods], columns=SUMMARY_COLUMNS)

    def _summary_row(self, method: str) -> dict[str, Any]:
        rows = self.rows_of(method)
        n, k = len(rows), sum(r["correct"] for r in rows)
        low, high = wilson(k, n, self.confidence)
        seconds = _mean([r["seconds"] for r in rows])
        kinds = [kind for r in rows for kind in _reflection_kinds(r)]
        return {"method": method, "n": n, "correct": k, "accuracy": k / n if n else float("nan"),
                "ci_low": low, "ci_high": high, "unparsed": _count(rows, "unparsed"),
                "checker_errors": _count(rows, "checker_error"), "tokens_per_item": _mean([r["tokens"] for r in rows]),
                "seconds_per_item": seconds, "items_per_minute": 60 / seconds if seconds else float("nan"),
                "reflections": len(kinds), "confirmatory_rate": _share(kinds, "confirmatory"),
                "corrective_rate": _share(kinds, "corrective")}

    def paired(self, resamples: int = 2000, seed: int = 0):
        """Every pair (a, b): accuracies, difference a−b with a paired bootstrap CI, McNemar exact p."""
        import pandas as pd

        out = []
        for a, b in combinations(self.methods, 2):
            ca, cb = self._aligned(a, b)
            only_a, only_b = discordant(ca, cb)
            diff, low, high = paired_bootstrap(ca, cb, resamples=resamples, confidence=self.confidence, seed=seed)
            out.append({"a": a, "b": b, "n": len(ca), "accuracy_a": _mean(ca), "accuracy_b": _mean(cb),
                        "difference": diff, "diff_ci_low": low, "diff_ci_high": high,
                        "only_a_right": only_a, "only_b_right": only_b, "mcnemar_p": mcnemar_exact(only_a, only_b)})
        return pd.DataFrame(out, columns=["a", "b", "n", "accuracy_a", "accuracy_b", "difference", "diff_ci_low",
                                          "diff_ci_high", "only_a_right", "only_b_right", "mcnemar_p"])

    def _aligned(self, a: str, b: str) -> tuple[list[bool], list[bool]]:
        by_a = {r["item_id"]: r["correct"] for r in self.rows_of(a)}
        by_b = {r["item_id"]: r["correct"] for r in self.rows_of(b)}
        common = [i for i in by_a if i in by_b]
        return [by_a[i] for i in common], [by_b[i] for i in common]

    def outcome_matrix(self, method: str | None = None):
        """Counts of wrong→right, right→wrong, right→right, wrong→wrong per method and round.

        Methods without reflection rounds (baseline, self-consistency) have no rows.
        """
        import pandas as pd

        methods = [method] if method is not None else self.methods
        out = [row for m in methods for row in _matrix_rows(m, self.rows_of(m))]
        return pd.DataFrame(out, columns=["method", "round", *TRANSITIONS, "items"])

    def reflections(self):
        """Per method: reflections run, and how many were confirmatory, corrective, other."""
        import pandas as pd

        out = []
        for m in self.methods:
            kinds = [kind for r in self.rows_of(m) for kind in _reflection_kinds(r)]
            if kinds:
                out.append({"method": m, "reflections": len(kinds), **{k: kinds.count(k) for k in KINDS},
                            "confirmatory_rate": _share(kinds, "confirmatory"),
                            "corrective_rate": _share(kinds, "corrective")})
        return pd.DataFrame(out, columns=["method", "reflections", *KINDS, "confirmatory_rate", "corrective_rate"])

    @property
    def charts(self) -> "Charts":
        """``.accuracy()``, ``.tokens_vs_accuracy()``, ``.outcomes()`` (altair charts)."""
        return Charts(self)

    # -- display -----------------------------------------------------------------------------------------------

    def __str__(self) -> str:
        return f"EvalResult {self.eval_id} ({self.tasks}, {self.model})\n{self.summary().to_string(index=False)}"

    def _repr_html_(self) -> str:
        head = (f"<b>EvalResult</b> <code>{html.escape(self.eval_id)}</code> — {html.escape(self.tasks)}, "
                f"{html.escape(self.model)}")
        return f"<div class='reflectnb-eval'>{head}{self.summary().to_html(index=False, escape=True)}</div>"


class Charts:
    """The charts of one result (each a pure function in :mod:`reflectnb.evaluate.charts`)."""

    def __init__(self, result: EvalResult):
        self.result = result

    def accuracy(self):
        from reflectnb.evaluate.charts import accuracy_chart

        return accuracy_chart(self.result.summary())

    def tokens_vs_accuracy(self):
        from reflectnb.evaluate.charts import tokens_accuracy_chart

        return tokens_accuracy_chart(self.result.summary())

    def outcomes(self):
        from reflectnb.evaluate.charts import outcome_chart

        return outcome_chart(self.result.outcome_matrix())


def padded(values: list[Any], length: int) -> list[Any]:
    """``values`` extended to ``length`` by repeating the last one (an early stop keeps its answer)."""
    return list(values) + [values[-1]] * (length - len(values)) if values else []


def _matrix_rows(method: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    depth = max((len(r["round_correct"]) for r in rows), default=0)
    if depth < 2:
        return []
    series = [padded(r["round_correct"], depth) for r in rows]
    pairs = [(str(k), k - 1, k) for k in range(1, depth)] + [("first→final", 0, depth - 1)]
    out = []
    for name, i, j in pairs:
        labels = [transition(s[i], s[j]) for s in series]
        out.append({"method": method, "round": name, **{t: labels.count(t) for t in TRANSITIONS},
                    "items": len(series)})
    return out


def _reflection_kinds(row: dict[str, Any]) -> list[str]:
    correct, answers = row["round_correct"], row["round_answers"]
    return [reflection_kind(correct[k - 1], correct[k], _same(answers[k - 1], answers[k]))
            for k in range(1, min(row["rounds"], len(correct) - 1) + 1)]


def _same(a: str | None, b: str | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and normalize(a) == normalize(b))


def _count(rows: list[dict[str, Any]], status: str) -> int:
    return sum(1 for r in rows if r["status"] == status)


def _mean(values: list[Any]) -> float:
    return sum(float(v) for v in values) / len(values) if values else float("nan")


def _share(kinds: list[str], kind: str) -> float:
    return kinds.count(kind) / len(kinds) if kinds else float("nan")
