"""Generation settings for a backend, with a reflection-token schedule turned into a processor.

Shared by the public API and the evaluation runner, so a ``schedule`` string
means the same thing everywhere. Layer 3: imports ``decoding`` lazily.
"""

from __future__ import annotations

from typing import Any

from reflectnb.backends.base import Backend, GenerationParams


def params_for(backend: Backend, *, temperature: float | None = 0.0, max_tokens: int | None = 256,
               seed: int | None = None, schedule: Any = None, variants: str = "exact",
               **extra: Any) -> GenerationParams:
    """Generation settings for ``backend``, with ``schedule`` turned into a processor.

    ``variants`` picks which spellings of the reflection words the schedule
    biases (``"exact"``, ``"exact+space"``, ``"all_case_space"``; see docs/decoding.md).
    """
    processors = tuple(_processors(backend, schedule, variants))
    return GenerationParams(max_new_tokens=max_tokens or 256, temperature=temperature or 0.0,
                            seed=seed, logits_processors=processors, **extra)


def _processors(backend: Backend, schedule: Any, variants: str = "exact") -> list[Any]:
    if schedule is None or (isinstance(schedule, str) and schedule.strip().lower() in ("", "none")):
        return []
    from reflectnb.decoding import build_processor

    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is None:
        from reflectnb.errors import CapabilityError

        raise CapabilityError(f"a reflection-token schedule needs a local model with a tokenizer; "
                              f"{backend.name!r} has none (schedules cannot run over HTTP)")
    processor = build_processor(schedule, tokenizer, variants=variants)
    return [processor] if processor is not None else []
