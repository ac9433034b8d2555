"""Reflection-aware decoding: reflection vocabulary, schedules, logits processors, schedule strings.

Layer 2a. ``import reflectnb`` does not import this package. Names are loaded on
first use: ``parse_schedule``, the schedules and the vocabulary need only numpy,
so a magic can validate ``--schedule`` without importing torch; the processors
(``processors.py``, ``tip.py``) import torch.

Examples
--------
>>> from reflectnb.decoding import build_processor, parse_schedule                 # doctest: +SKIP
>>> proc = build_processor("cyclic(amplitude=5, period=600)", backend.tokenizer)   # doctest: +SKIP
>>> backend.generate(["..."], GenerationParams(logits_processors=(proc,)))         # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "parse": ("GRAMMAR", "parse_schedule"),
    "schedules": ("KINDS", "Constant", "Cosine", "Cyclic", "Linear", "Schedule", "Silver", "Tip"),
    "vocab": ("DEFAULT_WORDS", "VARIANTS", "ReflectionVocab", "flag_reflection", "resolve_form",
              "resolve_token_id"),
    "processors": ("AdditiveReflectionBias", "CyclicReflexProcessor", "ReflectionProcessor", "ScheduleProcessor",
                   "SilverScheduleProcessor", "WordScheduleProcessor"),
    "tip": ("ThoughtSwitchPenalty", "build_processor"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'reflectnb.decoding' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"reflectnb.decoding.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
