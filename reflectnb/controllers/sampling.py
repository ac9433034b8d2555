"""Sampling for controller decode loops: ``GenerationParams`` as given, transformers' own warpers.

A controller reads the same :class:`~reflectnb.backends.base.GenerationParams`
every backend reads (no mirror of it): :func:`sampling_params` only refuses
``params.stop`` (controllers decide where text ends) and applies a controller's
overrides (SRGen's ``temperature``). :func:`sample_warpers` gives transformers'
Temperature / TopK / TopP warpers in ``generate``'s order, through the helper the
fast engine uses, so every local decode loop samples the same way.
:func:`entropy` is SRGen's entropy (REFERENCE §0.3).

Non-goals: beam search, repetition penalties (pass a logits processor).
"""

from __future__ import annotations

from typing import Any

import torch

from reflectnb.backends.base import GenerationParams
from reflectnb.backends.engine_loop import warpers
from reflectnb.errors import OptionError


def sampling_params(params: GenerationParams | None, **overrides: Any) -> GenerationParams:
    """``params`` (default ``GenerationParams()``) with ``overrides``; stop strings are refused, not ignored."""
    if params is not None and params.stop:
        raise OptionError(f"generation controllers do not take `stop` strings (got {list(params.stop)!r}); "
                          "they decide where text ends themselves (see each controller's `end_think`)")
    params = GenerationParams() if params is None else params
    return params.with_(**overrides) if overrides else params


def sample_warpers(params: GenerationParams) -> list:
    """transformers' warpers for ``params`` (none when greedy: the argmax needs no warping)."""
    if params.temperature == 0:
        return []
    return warpers(float(params.temperature), params.top_k, float(params.top_p))


def entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """SRGen's entropy in nats: ``-sum p ln(p + 1e-10)`` with ``p = softmax(logits / T)`` over the last dim.

    Examples
    --------
    >>> round(float(entropy(torch.zeros(4))), 6)
    1.386294
    """
    p = torch.softmax(logits.float() / temperature, dim=-1)
    return -(p * torch.log(p + 1e-10)).sum(-1)
