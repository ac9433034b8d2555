"""Generation controllers: decoding interventions that need their own decode loop.

A logits processor can only reshape one step's scores. A controller decides
*what happens next*: it appends forced text (s1 budget forcing, iterative
deepening), stops early (First-Try), backtracks (PSR) or re-predicts a token
from a corrected hidden state (SRGen). Each is a small class whose ``__init__``
validates its settings and whose ``run(backend, prompt, params=None,
on_token=None)`` returns a plain :class:`~reflectnb.trace.Generation` whose
tokens carry ``intervention`` labels and whose ``params["interventions"]``
lists every intervention. See ``docs/controllers.md``.

Names load lazily, so importing this package does not import torch.

Examples
--------
>>> from reflectnb.decoding.controllers import BudgetForcing                         # doctest: +SKIP
>>> gen = BudgetForcing(max_think=24).run(backend, "What is 2+3?")                   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "base": ("Controller", "Plain"),
    "budget": ("BudgetForcing", "answer_delimiter"),
    "deepening": ("IDSampling", "id_boundaries"),
    "firsttry": ("FirstTryEarlyStop", "find_candidate", "label_candidates", "number_lines"),
    "psr": ("PSR", "DEFAULT_PROBE", "parse_judge"),
    "srgen": ("SRGen", "adaptive_threshold", "correct_hidden", "srgen_loss"),
    "sampling": ("Sampling", "entropy"),
    "loop": ("Decoder",),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'reflectnb.decoding.controllers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"reflectnb.decoding.controllers.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
