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

from reflectnb import _lazy

_WHERE = {
    "parse": ("GRAMMAR", "parse_schedule"),
    "schedules": ("KINDS", "Constant", "Cosine", "Cyclic", "Linear", "Schedule", "Silver", "Tip"),
    "vocab": ("DEFAULT_WORDS", "VARIANTS", "ReflectionVocab", "flag_reflection", "resolve_form",
              "resolve_token_id"),
    "processors": ("AdditiveReflectionBias", "CyclicReflexProcessor", "ReflectionProcessor", "ScheduleProcessor",
                   "SilverScheduleProcessor", "WordScheduleProcessor"),
    "tip": ("ThoughtSwitchPenalty", "build_processor"),
}
_LAZY = _lazy.by_module(__name__, _WHERE)
__all__ = sorted(_LAZY)
__getattr__, __dir__ = _lazy.attach(__name__, _LAZY)
