"""Per-token capture for ``model.generate``: logprob, entropy, alternatives, streaming.

Two small objects cooperate inside one ``model.generate`` call:

* :class:`ScoreRecorder` is the *last* logits processor. It does not change the
  scores; it keeps the log-softmax of the final distribution of this step (after
  the user's processors and the temperature / top-k / top-p warpers, so it is
  the distribution the token is sampled from) and the schedule values the
  user's processors report through their ``last_values`` attribute.
* :class:`TokenStreamer` has transformers' streamer shape (``put``/``end``).
  ``generate`` calls ``put`` with the prompt first, then with the ids sampled at
  each step; the streamer pairs them with the recorder's distribution and emits
  one :class:`~reflectnb.trace.TokenEvent` per live row.

Entropy is ``H = -sum p ln p`` in nats over that same distribution (filtered
tokens have p = 0 and contribute nothing).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from reflectnb.trace import TokenEvent


class ScoreRecorder:
    """A pass-through logits processor that remembers the step's distribution."""

    def __init__(self, processors: Sequence[object] = (), top_logprobs: int = 0):
        self.processors = list(processors)
        self.top_logprobs = top_logprobs
        self.logprobs: torch.Tensor | None = None
        self.entropy: torch.Tensor | None = None
        self.schedule: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logp = torch.log_softmax(scores.float(), dim=-1)
        p = logp.exp()
        self.entropy = -(p * torch.nan_to_num(logp, neginf=0.0)).sum(-1)
        self.logprobs = logp
        self.schedule = self._schedule_values(scores.shape[0])
        return scores

    def _schedule_values(self, batch: int) -> torch.Tensor | None:
        values = [getattr(p, "last_values", None) for p in self.processors]
        values = [torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in values if v is not None]
        if not values:
            return None
        total = torch.zeros(batch)
        for v in values:
            total += v.cpu().expand(batch) if v.numel() == 1 else v.cpu()
        return total


class TokenStreamer:
    """Turns each generation step into TokenEvents, one per row still generating."""

    def __init__(self, tokenizer, recorder: ScoreRecorder, batch: int, stop_ids: set[int],
                 on_token: Callable[[TokenEvent], None] | None = None,
                 reflection_ids: frozenset[int] = frozenset()):
        self.tokenizer = tokenizer
        self.recorder = recorder
        self.stop_ids = stop_ids
        self.on_token = on_token
        self.reflection_ids = reflection_ids
        self.ids: list[list[int]] = [[] for _ in range(batch)]
        self.events: list[list[TokenEvent]] = [[] for _ in range(batch)]
        self.texts: list[str] = ["" for _ in range(batch)]
        self.done = [False] * batch
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # the first call carries the prompt
            self._prompt_seen = True
            return
        for row, token_id in enumerate(value.reshape(-1).tolist()):
            if not self.done[row]:
                self._emit(row, token_id)

    def end(self) -> None:
        pass

    def _emit(self, row: int, token_id: int) -> None:
        if token_id in self.stop_ids:
            self.done[row] = True
            return
        self.ids[row].append(token_id)
        full = self.tokenizer.decode(self.ids[row], skip_special_tokens=True)
        piece, self.texts[row] = full[len(self.texts[row]):], full
        event = self._event(row, token_id, piece)
        self.events[row].append(event)
        if self.on_token is not None:
            self.on_token(event)

    def _event(self, row: int, token_id: int, piece: str) -> TokenEvent:
        rec = self.recorder
        logprob = float(rec.logprobs[row, token_id]) if rec.logprobs is not None else None
        entropy = float(rec.entropy[row]) if rec.entropy is not None else None
        schedule = float(rec.schedule[row]) if rec.schedule is not None else None
        return TokenEvent(row=row, position=len(self.ids[row]) - 1, token_id=token_id, text=piece,
                          logprob=logprob, entropy=entropy, schedule_value=schedule,
                          is_reflection=token_id in self.reflection_ids, top=self._top(row))

    def _top(self, row: int) -> list[tuple[str, float]] | None:
        k = self.recorder.top_logprobs
        if not k or self.recorder.logprobs is None:
            return None
        values, ids = torch.topk(self.recorder.logprobs[row], k)
        return [(self.tokenizer.decode([i]), float(v)) for v, i in zip(values.tolist(), ids.tolist())]


class RowStops:
    """Per-row stops beyond end-of-sequence: stop strings and the repetition stop.

    The fast engine asks ``stops(row)`` after each token; ``model.generate``
    gets the same check as a stopping criterion (:meth:`criteria`; it runs before
    the streamer sees the step's token, so it stops one token later there).
    Rows stopped for repetition are kept in ``repeated`` (row -> what repeated).
    """

    def __init__(self, streamer: TokenStreamer, stop_strings: Sequence[str] = (), repetition=None):
        self.streamer = streamer
        self.stop_strings = tuple(stop_strings)
        self.repetition = repetition
        self.repeated: dict[int, str] = {}

    def __call__(self, row: int) -> bool:
        text = self.streamer.texts[row]
        if any(stop in text for stop in self.stop_strings):
            return True
        return self.repeats(row)

    def repeats(self, row: int) -> bool:
        if self.repetition is None:
            return row in self.repeated
        if row not in self.repeated:
            found = self.repetition.check(self.streamer.texts[row])
            if found is None:
                return False
            self.repeated[row] = found
        return True

    def criteria(self) -> list:
        """For ``model.generate(stopping_criteria=...)``: the repetition stop (stop strings are its own)."""
        if self.repetition is None:
            return []
        from transformers import StoppingCriteria

        stops = self

        class _Repetition(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                rows = range(input_ids.shape[0])
                return torch.tensor([stops.repeats(r) for r in rows], device=input_ids.device)

        return [_Repetition()]
