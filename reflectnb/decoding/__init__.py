"""Reflection-aware decoding: reflection vocabulary, schedules, logits processors, schedule strings.

Layer 2a: imports torch (``import reflectnb`` must not import this package).

Examples
--------
>>> from reflectnb.decoding import build_processor, parse_schedule                 # doctest: +SKIP
>>> proc = build_processor("cyclic(amplitude=5, period=600)", backend.tokenizer)   # doctest: +SKIP
>>> backend.generate(["..."], GenerationParams(logits_processors=(proc,)))         # doctest: +SKIP
"""

from reflectnb.decoding.parse import GRAMMAR, parse_schedule
from reflectnb.decoding.processors import (AdditiveReflectionBias, CyclicReflexProcessor, ReflectionProcessor,
                                           ScheduleProcessor, SilverScheduleProcessor, WordScheduleProcessor)
from reflectnb.decoding.schedules import KINDS, Constant, Cosine, Cyclic, Linear, Schedule, Silver, Tip
from reflectnb.decoding.tip import ThoughtSwitchPenalty, build_processor
from reflectnb.decoding.vocab import (DEFAULT_WORDS, VARIANTS, ReflectionVocab, flag_reflection,
                                      resolve_token_id)

__all__ = ["GRAMMAR", "parse_schedule", "AdditiveReflectionBias", "CyclicReflexProcessor", "ReflectionProcessor",
           "ScheduleProcessor", "SilverScheduleProcessor", "WordScheduleProcessor", "KINDS", "Constant", "Cosine",
           "Cyclic", "Linear", "Schedule", "Silver", "Tip", "ThoughtSwitchPenalty", "build_processor",
           "DEFAULT_WORDS", "VARIANTS", "ReflectionVocab", "flag_reflection", "resolve_token_id"]
