"""TIP, the thought-switching penalty (Wang et al. 2025, REFERENCE §1.6), and ``build_processor``.

Contract
--------
* :class:`ThoughtSwitchPenalty` subtracts ``alpha`` from the switch-token logits
  while ``Ψ ≤ t < Ψ + beta``. ``mode="paper"``: Ψ is the position of the row's
  latest generated switch token (0 before any), read from ``input_ids`` at
  every step. ``mode="cyclicreflex"``: Ψ ≡ 0, a fixed window ``[0, beta)`` (how
  the CyclicReflex repo ran TIP). A switch token sampled at t sets Ψ = t, so the
  penalty covers t+1 … t+beta−1 (the token at t itself was already sampled).
  Like the CyclicReflex baselines, a row is no longer modified once the end of
  thinking token was generated (``end_token=None`` switches that off).
* :func:`build_processor` turns a schedule string (``%%reflect --schedule``)
  into the matching processor for a tokenizer.

Non-goals: the paper's exact switch-token list (NOT FOUND; ``switch_words`` is a parameter).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from reflectnb.decoding.parse import parse_schedule
from reflectnb.decoding.processors import (PromptLen, ReflectionProcessor, WordScheduleProcessor,
                                           _vocab_and_end)
from reflectnb.decoding.schedules import Schedule, Tip
from reflectnb.decoding.vocab import DEFAULT_WORDS


class ThoughtSwitchPenalty(ReflectionProcessor):
    """TIP: ``z[v] -= alpha`` for switch tokens ``v`` while ``Ψ ≤ t < Ψ + beta``.

    Parameters
    ----------
    tokenizer : tokenizer or ReflectionVocab
    alpha : float, default 3.0
        Penalty (the paper's α). Negative values promote instead.
    beta : int, default 600
        Penalty duration in tokens (β).
    mode : {"paper", "cyclicreflex"}
        Ψ re-anchored at each switch token, or Ψ ≡ 0.
    switch_words : sequence of str
        Switch words (default: CyclicReflex's V̂, which is what it ran TIP with).
    end_token, variants, prompt_len : as for :class:`CyclicReflexProcessor`.

    Examples
    --------
    >>> tip = ThoughtSwitchPenalty(tokenizer, alpha=3.0, beta=600, mode="paper")   # doctest: +SKIP
    """

    def __init__(self, tokenizer: Any, alpha: float = 3.0, beta: int = 600, mode: str = "paper",
                 switch_words: Sequence[str] = DEFAULT_WORDS, end_token: str | None = "</think>",
                 variants: str = "exact", *, prompt_len: PromptLen = None):
        self.schedule = Tip(alpha=alpha, beta=beta, mode=mode)
        vocab, end_id = _vocab_and_end(tokenizer, switch_words, variants, end_token)
        self.end_token = end_token
        super().__init__(vocab, end_token_id=end_id, prompt_len=prompt_len)

    def anchors(self, input_ids: torch.Tensor, generated: torch.Tensor,
                positions: torch.Tensor) -> torch.Tensor:
        """Ψ per row: position of the latest generated switch token, 0 before any (or in cyclicreflex mode)."""
        if self.schedule.mode != "paper":
            return torch.zeros_like(positions)
        is_switch = torch.isin(input_ids, self.ids.to(input_ids.device)) & generated
        cols = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        last = torch.where(is_switch, cols, torch.full_like(cols, -1)).max(dim=1).values
        prompt_len = input_ids.shape[1] - positions
        return torch.where(last >= 0, last - prompt_len, torch.zeros_like(last))

    def deltas(self, input_ids, positions, generated):
        psi = self.anchors(input_ids, generated, positions)
        inside = (positions >= psi) & (positions < psi + self.schedule.beta)
        return torch.where(inside, -float(self.schedule.alpha), 0.0)

    def __repr__(self) -> str:
        return f"ThoughtSwitchPenalty(schedule={self.schedule!r}, ids={self.ids.tolist()}, {self.gating})"


def build_processor(schedule: str | Schedule | None, tokenizer: Any, *, words: Sequence[str] = DEFAULT_WORDS,
                    variants: str = "exact", end_token: str | None = "</think>",
                    prompt_len: PromptLen = None) -> ReflectionProcessor | None:
    """The processor for a schedule string or object (``None`` for ``"none"``).

    ``tip(...)`` gives a :class:`ThoughtSwitchPenalty` (``words`` are its switch
    words); every other kind a :class:`WordScheduleProcessor` over
    ``ReflectionVocab(tokenizer, words, variants)``, gated after ``end_token``.

    Examples
    --------
    >>> build_processor("cyclic(amplitude=5, period=600)", tokenizer)   # doctest: +SKIP
    WordScheduleProcessor(schedule=cyclic(amplitude=5, period=600, ...), ids=[...], ...)
    """
    parsed = parse_schedule(schedule)
    if parsed is None:
        return None
    if isinstance(parsed, Tip):
        return ThoughtSwitchPenalty(tokenizer, parsed.alpha, parsed.beta, parsed.mode, words, end_token,
                                    variants, prompt_len=prompt_len)
    return WordScheduleProcessor(tokenizer, parsed, words, variants, end_token, prompt_len)
