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

import importlib
from typing import Any

_WHERE = {
    "compare": "compare", "default_eval_id": "compare",
    "EvalResult": "result",
    "Method": "methods", "METHODS": "methods", "parse_methods": "methods",
    "Item": "tasks", "TaskSet": "tasks", "load_tasks": "tasks", "from_reasoning_gym": "tasks",
    "reasoning_gym_datasets": "tasks",
    "extract_answer": "extract", "RULES": "extract",
    "make_checker": "checkers", "to_number": "checkers",
    "wilson": "stats", "mcnemar_exact": "stats", "paired_bootstrap": "stats",
    "run_eval": "runner",
    "reflect_eval": "magic",
}
_RENAMED = {"extract_answer": "extract"}  # the module ``extract`` would shadow a function of that name
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'reflectnb.evaluate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"reflectnb.evaluate.{module}"), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
