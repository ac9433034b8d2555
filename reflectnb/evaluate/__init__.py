"""Evaluation: does reflection help? Methods × items with a verifier, statistics and charts.

Examples
--------
>>> from reflectnb.evaluate import compare                                   # doctest: +SKIP
>>> result = compare("rg:basic_arithmetic", ["baseline", "self_consistency", "reflect"],
...                  model="smollm2-135m", n=20)                              # doctest: +SKIP
>>> result.summary()           # accuracy with Wilson CI, tokens and time per item    # doctest: +SKIP
>>> result.paired()            # exact McNemar and paired bootstrap CI per pair       # doctest: +SKIP
>>> result.outcome_matrix()    # wrong→right, right→wrong, … per round                # doctest: +SKIP
>>> result.charts.tokens_vs_accuracy()                                                # doctest: +SKIP

Layer: alongside ``reflectnb.api`` (above strategies, backends, decoding and
the store). Importing this package imports none of torch, pandas, altair,
DuckDB or reasoning-gym; each is imported when first needed.
"""

from __future__ import annotations

from reflectnb import _lazy

_WHERE = {
    "compare": ("compare", "default_eval_id"),
    "result": ("EvalResult",),
    "methods": ("Method", "METHODS", "parse_methods"),
    "tasks": ("Item", "TaskSet", "load_tasks", "from_reasoning_gym", "reasoning_gym_datasets"),
    "checkers": ("make_checker", "to_number"),
    "stats": ("wilson", "mcnemar_exact", "paired_bootstrap"),
    "runner": ("run_eval",),
}
_LAZY = {**_lazy.by_module(__name__, _WHERE),  # extraction is shared with the loops' votes, one layer down
         "extract_answer": ("reflectnb.strategies.voting", "extract_answer"),
         "RULES": ("reflectnb.strategies.voting", "RULES")}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = _lazy.attach(__name__, _LAZY)
