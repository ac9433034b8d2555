"""A small KV-cached decode loop that generation controllers drive token by token.

Contract
--------
* :class:`Decoder` holds one sequence (batch 1): the prompt ids, the ids added
  so far (sampled *and* forced), the KV cache, and the raw next-token logits.
  It runs the base model (``model.get_decoder()``) and ``lm_head`` separately,
  so ``last_hidden`` is the final hidden state after the final norm, before
  ``lm_head`` (what SRGen corrects).
* Sampling mirrors ``model.generate``: the user's logits processors (called
  ``(input_ids[1, seq], scores[1, vocab])`` with prompt + generated ids), then
  transformers' temperature, top-k, top-p warpers. Greedy output equals
  ``LocalBackend`` greedy output; both loops stop on the same ids (``local.stop_ids``).
* Every added token becomes a :class:`~reflectnb.trace.TokenEvent`; forced
  tokens carry ``intervention`` (e.g. ``"forced:Wait"``) and no logprob.
  Events reach ``on_token`` when *published*: at once when ``live`` (default),
  or when the controller calls :meth:`publish` (PSR publishes committed chunks
  only, so discarded tokens never reach the trace as output).
* :meth:`mark` / :meth:`restore` crop the KV cache back to an earlier point.

Non-goals: batching, beam search, stop strings outside controllers.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from reflectnb.backends.local import stop_ids
from reflectnb.backends.base import GenerationParams
from reflectnb.controllers.sampling import sample_warpers
from reflectnb.trace import TokenEvent


@dataclass
class Choice:
    """A sampled next token with its logprob and entropy (nats) under the final distribution."""

    token_id: int
    logprob: float
    entropy: float
    top: list[tuple[str, float]] | None = None


@dataclass
class Mark:
    """A point to come back to: number of added ids, the logits and hidden state there."""

    length: int
    logits: torch.Tensor
    last_hidden: torch.Tensor


class Decoder:
    """One sequence being decoded with a KV cache; see the module docstring."""

    def __init__(self, model: Any, tokenizer: Any, prompt_text: str, params: GenerationParams,
                 on_token: Callable[[TokenEvent], None] | None = None,
                 reflection_ids: frozenset[int] = frozenset(), keep_hidden: bool = False):
        self.model, self.tokenizer, self.params = model, tokenizer, params
        self.warpers = sample_warpers(params)
        self.body = model.get_decoder()
        self.head = model.get_output_embeddings()
        self.device = next(model.parameters()).device
        self.on_token, self.reflection_ids, self.keep_hidden = on_token, reflection_ids, keep_hidden
        self.prompt_ids: list[int] = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        self.ids: list[int] = []
        self.events: list[TokenEvent] = []
        self._ends: list[int] = []  # text offset where each event's piece ends
        self.interventions: list[dict[str, Any]] = []
        self.text, self.published, self.live = "", 0, True
        self.bias: dict[int, float] = {}  # token id -> logit bias, added after the user's processors
        self.stop_ids = stop_ids(model, tokenizer)
        self.generator = torch.Generator(device="cpu")
        if params.seed is not None:
            self.generator.manual_seed(params.seed)
        self._hidden: list[torch.Tensor] = []
        self.past, self._cache_arg = _new_cache(model), _cache_keyword(self.body)
        for processor in params.logits_processors:
            if hasattr(processor, "set_prompt_len"):
                processor.set_prompt_len(len(self.prompt_ids))
        self._feed(self.prompt_ids)

    # -- model ---------------------------------------------------------------
    def _feed(self, ids: Sequence[int]) -> None:
        """Run the model on ``ids`` after the cache; update logits and hidden state."""
        with torch.no_grad():
            out = self.body(input_ids=torch.tensor([list(ids)], device=self.device),
                            use_cache=True, **{self._cache_arg: self.past})  # the cache grows in place
            hidden = out.last_hidden_state[0]
            self.last_hidden = hidden[-1]
            self.logits = self.head(hidden[-1]).float()
        if self.keep_hidden:
            self._hidden.append(hidden)

    def hidden_states(self) -> torch.Tensor:
        """Final hidden states of every position so far, ``[prompt + added, d]`` (needs ``keep_hidden``)."""
        return torch.cat(self._hidden, dim=0)[: len(self.prompt_ids) + len(self.ids)]

    @property
    def all_ids(self) -> list[int]:
        return self.prompt_ids + self.ids

    @property
    def room(self) -> int:
        """How many more tokens ``params.max_new_tokens`` allows."""
        return self.params.max_new_tokens - len(self.ids)

    # -- sampling ------------------------------------------------------------
    def choose(self, logits: torch.Tensor | None = None, ban: Sequence[int] = ()) -> Choice:
        """Sample the next token from ``logits`` (default: the model's) without adding it."""
        scores = (self.logits if logits is None else logits)[None, :]
        processors = self.params.logits_processors
        input_ids = torch.tensor([self.all_ids], device=scores.device) if processors or self.warpers else None
        for processor in processors:
            scores = processor(input_ids, scores)
        if ban or self.bias:
            scores = scores.clone()
            for token_id, value in self.bias.items():
                scores[0, token_id] += value
            scores[0, list(ban)] = float("-inf")
        scores = scores.float()
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        logp = torch.log_softmax(scores, dim=-1)[0]
        if self.params.temperature == 0:
            token = int(torch.argmax(logp))
        else:
            token = int(torch.multinomial(logp.exp().cpu(), 1, generator=self.generator))
        p = logp.exp()
        entropy = float(-(p * torch.nan_to_num(logp, neginf=0.0)).sum())
        return Choice(token, float(logp[token]), entropy, self._top(logp))

    def _top(self, logp: torch.Tensor) -> list[tuple[str, float]] | None:
        k = self.params.top_logprobs
        if not k:
            return None
        values, ids = torch.topk(logp, k)
        return [(self.tokenizer.decode([i]), float(v)) for v, i in zip(values.tolist(), ids.tolist())]

    # -- adding tokens ---------------------------------------------------------
    def accept(self, choice: Choice, intervention: str | None = None) -> None:
        """Add a sampled token: event, cache, logits."""
        self._add(choice.token_id, choice.logprob, choice.entropy, intervention, choice.top)
        self._feed([choice.token_id])

    def force(self, text: str, intervention: str) -> list[int]:
        """Append ``text`` as the model's own tokens (one forward pass); returns the ids."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        for token_id in ids:
            self._add(token_id, None, None, intervention, None)
        if ids:
            self._feed(ids)
        return ids

    def _add(self, token_id: int, logprob, entropy, intervention, top) -> None:
        self.ids.append(int(token_id))
        full = self.tokenizer.decode(self.ids, skip_special_tokens=False)
        piece, self.text = full[len(self.text):], full
        self._ends.append(len(full))
        self.events.append(TokenEvent(row=0, position=len(self.ids) - 1, token_id=int(token_id), text=piece,
                                      logprob=logprob, entropy=entropy, intervention=intervention,
                                      is_reflection=int(token_id) in self.reflection_ids, top=top))
        if self.live:
            self.publish()

    def publish(self, upto_offset: int | None = None) -> None:
        """Send the events not yet sent to ``on_token`` (those ending by ``upto_offset`` in the text)."""
        while self.published < len(self.events):
            if upto_offset is not None and self._ends[self.published] > upto_offset:
                return
            if self.on_token is not None:
                self.on_token(self.events[self.published])
            self.published += 1

    def note(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Record one intervention (kept in ``Generation.params["interventions"]``)."""
        record = {"kind": kind, "position": len(self.ids), **fields}
        self.interventions.append(record)
        return record

    # -- going back ------------------------------------------------------------
    def mark(self) -> Mark:
        return Mark(len(self.ids), self.logits, self.last_hidden)

    def restore(self, mark: Mark) -> None:
        """Drop everything added after ``mark`` (events already published cannot be dropped)."""
        if mark.length < self.published:
            raise RuntimeError("cannot go back past tokens already published to on_token")
        self._crop_cache(len(self.prompt_ids) + mark.length)
        del self.ids[mark.length:], self.events[mark.length:], self._ends[mark.length:]
        self.text = self.tokenizer.decode(self.ids, skip_special_tokens=False)
        self.logits, self.last_hidden = mark.logits, mark.last_hidden
        if self.keep_hidden:
            self._hidden = [self.hidden_states()[: len(self.prompt_ids) + mark.length]]

    def _crop_cache(self, length: int) -> None:
        """Keep the first ``length`` positions of the KV cache (transformers 5 crops by a negative count)."""
        extra = self.past.get_seq_length() - length
        if extra > 0:
            self.past.crop(-extra)

    # -- a plain run -----------------------------------------------------------
    def generate(self, limit: int, stop_ids: Sequence[int] | None = None, stop_strings: Sequence[str] = (),
                 min_tokens: int = 0, until: Callable[["Decoder"], bool] | None = None) -> str:
        """Sample up to ``limit`` tokens (capped by :attr:`room`).

        Returns ``"stop"`` (a stop id was sampled and *not* added, or a stop
        string appeared and was cut off), ``"until"`` (the hook said stop) or
        ``"length"``. Stop ids are banned for the first ``min_tokens`` tokens.
        """
        live, self.live = self.live, self.live and not stop_strings  # hold back a possible stop string
        try:
            return self._generate(limit, set(self.stop_ids if stop_ids is None else stop_ids),
                                  tuple(stop_strings), min_tokens, until, live)
        finally:
            self.live = live
            if live:
                self.publish()

    def _generate(self, limit, stops, stop_strings, min_tokens, until, live) -> str:
        start, start_text = len(self.ids), len(self.text)
        hold = max((len(s) for s in stop_strings), default=1) - 1
        for step in range(min(limit, self.room)):
            choice = self.choose(ban=sorted(stops) if step < min_tokens else ())
            if choice.token_id in stops:
                return "stop"
            self.accept(choice)
            if stop_strings and self._cut_stop_string(stop_strings, start, start_text):
                return "stop"
            if live and stop_strings:
                self.publish(len(self.text) - hold)
            if until is not None and until(self):
                return "until"
        return "length"

    def _cut_stop_string(self, stops: Sequence[str], start: int, start_text: int) -> bool:
        found = [i for i in (self.text.find(s, start_text) for s in stops) if i >= 0]
        if not found:
            return False
        at, keep = min(found), start
        while keep < len(self.ids) and len(self.tokenizer.decode(self.ids[: keep + 1])) <= at:
            keep += 1
        self.restore(Mark(keep, *self._state_after(keep)))
        return True

    def _state_after(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and hidden state after the first ``length`` added ids (one re-run of the last id)."""
        self._crop_cache(len(self.prompt_ids) + length - 1)
        last = self.all_ids[len(self.prompt_ids) + length - 1]
        keep_hidden, self.keep_hidden = self.keep_hidden, False
        self._feed([last])
        self.keep_hidden = keep_hidden
        return self.logits, self.last_hidden


def _new_cache(model: Any):
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def _cache_keyword(body: Any) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache``; use whichever the model takes."""
    return "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"
