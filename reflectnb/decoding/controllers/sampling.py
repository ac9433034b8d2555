"""Sampling settings for controller decode loops, read from ``GenerationParams`` by duck typing.

``decoding`` sits below ``backends`` in the layer order, so this module does
not import ``GenerationParams``; it reads the same field names from whatever
``params`` object it is given (or uses the same defaults when ``params`` is
``None``). ``params.stop`` is refused: controllers decide where text ends.

:func:`warp` applies temperature, top-k, then top-p in ``model.generate``'s
order; :func:`entropy` is SRGen's entropy (REFERENCE §0.3).

Non-goals: beam search, repetition penalties (pass a logits processor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from reflectnb.errors import OptionError


@dataclass(frozen=True)
class Sampling:
    """What a controller's decode loop needs from ``GenerationParams``."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None
    seed: int | None = None
    processors: tuple[Any, ...] = ()
    top_logprobs: int = 0

    @classmethod
    def from_params(cls, params: Any | None, **overrides: Any) -> "Sampling":
        """Read a ``GenerationParams`` (or ``None``); ``overrides`` win."""
        if params is not None and getattr(params, "stop", ()):
            raise OptionError(f"generation controllers do not take `stop` strings (got {list(params.stop)!r}); "
                              "they decide where text ends themselves (see each controller's `end_think`)")
        values = {} if params is None else {
            "max_new_tokens": params.max_new_tokens, "temperature": float(params.temperature),
            "top_p": float(params.top_p), "top_k": params.top_k, "seed": params.seed,
            "processors": tuple(params.logits_processors), "top_logprobs": int(params.top_logprobs)}
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_p": self.top_p,
                "top_k": self.top_k, "seed": self.seed, "top_logprobs": self.top_logprobs,
                "logits_processors": [type(p).__name__ for p in self.processors]}


def warp(scores: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """Temperature, top-k, top-p on ``scores[batch, vocab]`` (a new tensor; greedy leaves them as is)."""
    if sampling.temperature == 0:
        return scores
    scores = scores / sampling.temperature
    if sampling.top_k:
        kth = torch.topk(scores, min(sampling.top_k, scores.shape[-1]), dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if sampling.top_p < 1.0:
        scores = _top_p(scores, sampling.top_p)
    return scores


def _top_p(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    # transformers' TopPLogitsWarper: drop the low tail whose mass is <= 1 - top_p, keep at least one
    sorted_scores, order = torch.sort(scores, descending=False, dim=-1)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = False
    return scores.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """SRGen's entropy in nats: ``-sum p ln(p + 1e-10)`` with ``p = softmax(logits / T)`` over the last dim.

    Examples
    --------
    >>> round(float(entropy(torch.zeros(4))), 6)
    1.386294
    """
    p = torch.softmax(logits.float() / temperature, dim=-1)
    return -(p * torch.log(p + 1e-10)).sum(-1)
