"""Logits processors that add a schedule δ(t) to the reflection-token logits.

Contract
--------
* transformers ``LogitsProcessor`` shape, duck-typed (no transformers import):
  ``processor(input_ids: LongTensor[batch, seq], scores: FloatTensor[batch, vocab]) -> FloatTensor``.
  ``scores`` is never modified in place; a new tensor is returned. Rows whose δ
  is 0 (outside a window, or gated) are bitwise unchanged, and only the
  reflection ids change, by exactly δ (in the scores' dtype).
* **Positions.** t counts generated tokens from 0: ``t = input_ids.shape[1] - prompt_len``.
  ``model.generate`` pads on the *left*, so every row's generated tokens start at
  the same column and one ``prompt_len`` (the padded prompt length) serves all
  rows. Set it with ``set_prompt_len(n)`` (alias ``reset(n)``) before each
  generation, or with ``prompt_len=`` in the constructor; a per-row sequence is
  accepted for right-padded custom loops. Left unset ("auto"), the first call
  of a generation defines it: a call whose length is not one more than the
  previous call's starts a new generation. ``LocalBackend`` calls
  ``set_prompt_len(input_ids.shape[1])`` before ``generate``.
* **Gating.** With an ``end_token_id`` (``"</think>"``), a row stops being
  modified once that id appears among its *generated* ids (REFERENCE §0.1).
  Checked statelessly from ``input_ids`` at every step, so reuse is safe.
* **What was applied.** After each call ``last_values`` is a float32 tensor
  ``[batch]`` holding the δ added to each row (0 where nothing was added) and
  ``last_positions`` the positions; the backend's ``ScoreRecorder`` reads
  ``last_values`` into ``TokenEvent.schedule_value``.

Non-goals: sampling, stopping, multi-token biasing (see ``vocab.py``).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch

from reflectnb.decoding.parse import parse_schedule
from reflectnb.decoding.schedules import Constant, Cyclic, Schedule, Silver, Tip
from reflectnb.decoding.vocab import DEFAULT_WORDS, ReflectionVocab, resolve_token_id
from reflectnb.errors import OptionError

PromptLen = int | Sequence[int] | None


def _ids_of(vocab: ReflectionVocab | Iterable[int]) -> list[int]:
    ids = sorted(vocab.ids) if isinstance(vocab, ReflectionVocab) else sorted({int(i) for i in vocab})
    if not ids:
        raise OptionError("`vocab` is empty: give a ReflectionVocab or a non-empty list of token ids")
    return ids


class ReflectionProcessor:
    """Base: positions, gating and the out-of-place update; subclasses compute ``deltas``."""

    def __init__(self, vocab: ReflectionVocab | Iterable[int], *, end_token_id: int | None = None,
                 prompt_len: PromptLen = None):
        self.vocab = vocab if isinstance(vocab, ReflectionVocab) else None
        self.ids = torch.tensor(_ids_of(vocab), dtype=torch.long)
        self.end_token_id = None if end_token_id is None else int(end_token_id)
        self.last_values: torch.Tensor | None = None
        self.last_positions: torch.Tensor | None = None
        self.set_prompt_len(prompt_len)

    # -- positions -------------------------------------------------------------------------
    def set_prompt_len(self, prompt_len: PromptLen = None) -> None:
        """Fix the prompt length (int, or one per row); ``None`` returns to auto-detection."""
        if prompt_len is not None:
            values = torch.as_tensor(prompt_len, dtype=torch.long).reshape(-1)
            if values.numel() == 0 or bool((values < 0).any()):
                raise OptionError(f"`prompt_len` must be a non-negative int or one per row, got {prompt_len!r}")
            prompt_len = values
        self._fixed, self._auto, self._last_seq = prompt_len, None, None
        self.last_values = self.last_positions = None

    reset = set_prompt_len

    def prompt_len(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Prompt length per row (``LongTensor[batch]``) for this call."""
        seq = input_ids.shape[1]
        if self._fixed is None and (self._last_seq is None or seq != self._last_seq + 1):
            self._auto = seq  # a new generation starts: its first call sees only the prompt
        self._last_seq = seq
        lens = self._fixed if self._fixed is not None else torch.tensor([self._auto])
        if lens.numel() not in (1, input_ids.shape[0]):
            raise OptionError(f"`prompt_len` has {lens.numel()} values for a batch of {input_ids.shape[0]} rows")
        if bool((lens > seq).any()):
            raise OptionError(f"`prompt_len` {lens.tolist()} is longer than the sequence ({seq} ids); "
                              "call set_prompt_len() with the prompt length of this generation")
        return lens.to(input_ids.device).expand(input_ids.shape[0])

    def generated_mask(self, input_ids: torch.Tensor, prompt_len: torch.Tensor) -> torch.Tensor:
        """``BoolTensor[batch, seq]``: True on generated columns."""
        cols = torch.arange(input_ids.shape[1], device=input_ids.device)
        return cols[None, :] >= prompt_len[:, None]

    # -- gating ----------------------------------------------------------------------------
    end_token: str | None = None  # the text the end id came from, when built from a tokenizer

    @property
    def gating(self) -> str:
        """Why and when rows stop being modified (for display and docs)."""
        if self.end_token and self.end_token_id is None:
            return f"no gating: {self.end_token!r} is not a single token of this tokenizer"
        if self.end_token_id is None:
            return "no gating: no end-of-thinking token id"
        return f"rows stop being modified once token {self.end_token_id} has been generated"

    def ended(self, input_ids: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        """``BoolTensor[batch]``: the end-of-thinking id is among the row's generated ids."""
        if self.end_token_id is None:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        return ((input_ids == self.end_token_id) & generated).any(dim=1)

    # -- the step --------------------------------------------------------------------------
    def deltas(self, input_ids: torch.Tensor, positions: torch.Tensor,
               generated: torch.Tensor) -> torch.Tensor:
        """δ per row (``FloatTensor[batch]``) before gating; subclasses implement it."""
        raise NotImplementedError

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        prompt_len = self.prompt_len(input_ids)
        positions = input_ids.shape[1] - prompt_len
        generated = self.generated_mask(input_ids, prompt_len)
        delta = self.deltas(input_ids, positions, generated).to(torch.float32).to(scores.device)
        delta = torch.where(self.ended(input_ids, generated), torch.zeros_like(delta), delta)
        self.last_values, self.last_positions = delta, positions
        return self.apply(scores, delta)

    def apply(self, scores: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """A copy of ``scores`` with ``delta[row]`` added to the reflection ids of each row where δ ≠ 0."""
        ids = self.ids.to(scores.device)
        out = scores.clone()
        cols = out[:, ids]
        out[:, ids] = torch.where((delta != 0)[:, None], cols + delta.to(scores.dtype)[:, None], cols)
        return out


class ScheduleProcessor(ReflectionProcessor):
    """Adds ``schedule.value(t)`` to the reflection-token logits of each row.

    Parameters
    ----------
    vocab : ReflectionVocab or iterable of int
        The reflection ids.
    schedule : Schedule or str
        E.g. ``Cyclic(5, 1200)`` or ``"linear(start=2, end=-2, span=500)"``.
    end_token_id : int, optional
        Stop modifying a row once this id is generated (``"</think>"``).
    prompt_len : int or sequence of int, optional
        See the module docstring.

    Examples
    --------
    >>> proc = ScheduleProcessor([7, 9], "constant(2)", prompt_len=3)
    >>> proc(torch.zeros(1, 5, dtype=torch.long), torch.zeros(1, 10))[0, 7].item()
    2.0
    """

    def __init__(self, vocab: ReflectionVocab | Iterable[int], schedule: Schedule | str, *,
                 end_token_id: int | None = None, prompt_len: PromptLen = None):
        schedule = parse_schedule(schedule)
        if not isinstance(schedule, Schedule):
            raise OptionError(f"`schedule` must be a schedule, got {schedule!r}")
        if isinstance(schedule, Tip) and schedule.mode == "paper":
            raise OptionError("`schedule` tip(mode=paper) re-anchors at switch tokens: use ThoughtSwitchPenalty")
        self.schedule = schedule
        super().__init__(vocab, end_token_id=end_token_id, prompt_len=prompt_len)

    def deltas(self, input_ids, positions, generated):
        return torch.as_tensor(self.schedule.value(positions), dtype=torch.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(schedule={self.schedule!r}, ids={self.ids.tolist()}, {self.gating})"


def _vocab_and_end(source: Any, words: Sequence[str], variants: str,
                   end_token: str | None) -> tuple[ReflectionVocab, int | None]:
    vocab = source if isinstance(source, ReflectionVocab) else ReflectionVocab(source, words, variants)
    return vocab, resolve_token_id(vocab.tokenizer, end_token)


class WordScheduleProcessor(ScheduleProcessor):
    """A :class:`ScheduleProcessor` built from a tokenizer, reflection words and an end-of-thinking token.

    Examples
    --------
    >>> WordScheduleProcessor(tokenizer, Linear(2, -2, 500), words=["Wait"])   # doctest: +SKIP
    """

    def __init__(self, tokenizer: Any, schedule: Schedule | str, words: Sequence[str] = DEFAULT_WORDS,
                 variants: str = "exact", end_token: str | None = "</think>", prompt_len: PromptLen = None):
        vocab, end_id = _vocab_and_end(tokenizer, words, variants, end_token)
        self.end_token = end_token
        super().__init__(vocab, schedule, end_token_id=end_id, prompt_len=prompt_len)


class CyclicReflexProcessor(WordScheduleProcessor):
    """CyclicReflex (REFERENCE §1): the triangular wave :class:`Cyclic` on V̂, gated after ``</think>``.

    Examples
    --------
    >>> proc = CyclicReflexProcessor(tokenizer, amplitude=5.0, period=1200)   # doctest: +SKIP
    >>> proc.gating                                                          # doctest: +SKIP
    "no gating: '</think>' is not a single token of this tokenizer"
    """

    def __init__(self, tokenizer: Any, words: Sequence[str] = DEFAULT_WORDS, amplitude: float = 5.0,
                 period: float = 1200, shift: float = 0.0, windows: Any = ((0, 8192),),
                 end_token: str | None = "</think>", variants: str = "exact", *, prompt_len: PromptLen = None):
        schedule = Cyclic(amplitude=amplitude, period=period, shift=shift, windows=windows)
        super().__init__(tokenizer, schedule, words, variants, end_token, prompt_len)


class AdditiveReflectionBias(WordScheduleProcessor):
    """A fixed δ on V̂ inside ``windows`` (CyclicReflex's ``add_processor``; TIP as it ran it: δ=−3, [(0, 600)]).

    Examples
    --------
    >>> AdditiveReflectionBias(tokenizer, -3.0, windows=[(0, 600)])   # doctest: +SKIP
    """

    def __init__(self, tokenizer: Any, delta: float, windows: Any = None, words: Sequence[str] = DEFAULT_WORDS,
                 end_token: str | None = "</think>", variants: str = "exact", *, prompt_len: PromptLen = None):
        super().__init__(tokenizer, Constant(delta, windows), words, variants, end_token, prompt_len)


class SilverScheduleProcessor(WordScheduleProcessor):
    """The Silver schedule baseline (REFERENCE §1.8): δ = ρ^(ν−1) > 0 on V̂.

    Examples
    --------
    >>> SilverScheduleProcessor(tokenizer, rho=2.0, modulus=64)   # doctest: +SKIP
    """

    def __init__(self, tokenizer: Any, rho: float = 2.0, modulus: int = 64, words: Sequence[str] = DEFAULT_WORDS,
                 end_token: str | None = "</think>", variants: str = "exact", *, prompt_len: PromptLen = None):
        super().__init__(tokenizer, Silver(rho=rho, modulus=modulus), words, variants, end_token, prompt_len)
