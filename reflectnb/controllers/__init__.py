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
>>> from reflectnb.controllers import BudgetForcing                         # doctest: +SKIP
>>> gen = BudgetForcing(max_think=24).run(backend, "What is 2+3?")                   # doctest: +SKIP
"""

from __future__ import annotations

from reflectnb import _lazy

_WHERE = {
    "base": ("Controller", "Plain"),
    "budget": ("BudgetForcing", "answer_delimiter"),
    "deepening": ("IDSampling", "id_boundaries"),
    "firsttry": ("FirstTryEarlyStop", "find_candidate", "label_candidates", "number_lines"),
    "psr": ("PSR", "DEFAULT_PROBE", "parse_judge"),
    "srgen": ("SRGen", "adaptive_threshold", "correct_hidden", "srgen_loss"),
    "sampling": ("entropy", "sample_warpers", "sampling_params"),
    "loop": ("Decoder",),
}
_LAZY = _lazy.by_module(__name__, _WHERE)
__all__ = sorted(_LAZY)
__getattr__, __dir__ = _lazy.attach(__name__, _LAZY)
