"""What one streamed OpenAI-compatible reply has produced so far, as reflectnb tokens.

:class:`StreamRun` folds the server's SSE chunks (chat ``delta`` or legacy
``text`` pieces, with or without per-token logprobs) into :class:`TokenEvent`s
and, at the end, one :class:`Generation`. Split from ``openai_http`` so the
protocol bookkeeping reads apart from requests, retries and errors.

Entropy is estimated only when the returned alternatives cover at least
``ENTROPY_MASS`` of the probability, else ``None`` rather than a guess. Usage
(prompt, completion and cached prompt tokens) comes from the last chunk when the
server sends ``usage`` (``stream_options.include_usage``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from reflectnb.backends.base import Prompt
from reflectnb.trace import Generation, TokenEvent

ENTROPY_MASS = 0.999  # estimate entropy only when the top alternatives cover this much probability


@dataclass
class StreamRun:
    """What one prompt's stream has produced so far."""

    row: int
    prompt: Prompt
    endpoint: str = "chat"
    start: float = field(default_factory=time.perf_counter)
    opened: bool = False  # the server has started answering (errors from now on are mid-stream)
    pieces: list[str] = field(default_factory=list)
    tokens: list[TokenEvent] = field(default_factory=list)
    finish: str | None = None
    usage: Any = None
    stopped: bool = False  # a stop string arrived: the text is cut there and the rest is ignored

    def add(self, chunk: Any) -> list[TokenEvent]:
        """Fold one streamed chunk in; returns its new token events."""
        self.usage = getattr(chunk, "usage", None) or self.usage
        made: list[TokenEvent] = []
        for choice in getattr(chunk, "choices", None) or []:
            piece = _choice_text(choice)
            if piece:
                made += self._events(piece, _entries(choice))
            self.finish = getattr(choice, "finish_reason", None) or self.finish
        self.tokens += made
        return made

    def cut_at_stop(self, stops: Sequence[str]) -> bool:
        """Cut the text before the first stop string, if one has arrived (servers that ignore ``stop``).

        Like the local backend, the tokens keep the one that completed the stop string.
        """
        text = "".join(self.pieces)
        hits = [text.find(s) for s in stops if s and s in text]
        if not hits:
            return False
        self.pieces, self.finish, self.stopped = [text[:min(hits)]], "stop", True
        return True

    def _events(self, piece: str, entries: list[tuple[str, float | None, list]]) -> list[TokenEvent]:
        self.pieces.append(piece)
        if entries and "".join(e[0] for e in entries) == piece:
            return [self._event(i, text, lp, top) for i, (text, lp, top) in enumerate(entries)]
        lps = [e[1] for e in entries]
        joint = sum(lps) if lps and None not in lps else None  # type: ignore[arg-type]
        return [self._event(0, piece, joint, [])]

    def _event(self, offset: int, text: str, logprob: float | None, top: list) -> TokenEvent:
        return TokenEvent(row=self.row, position=len(self.tokens) + offset, token_id=-1, text=text,
                          logprob=logprob, entropy=entropy_from_top(top), top=top or None)

    def generation(self, model: str, reason: str, params: dict[str, Any]) -> Generation:
        used = self.usage
        completion = getattr(used, "completion_tokens", None)
        return Generation(text="".join(self.pieces), model=model, prompt=self.prompt,
                          tokens=list(self.tokens), prompt_tokens=getattr(used, "prompt_tokens", 0) or 0,
                          completion_tokens=len(self.tokens) if completion is None else completion,
                          finish_reason=reason, seconds=time.perf_counter() - self.start, params=params,
                          cached_tokens=cached_tokens(used))


def cached_tokens(usage: Any) -> int | None:
    """``usage.prompt_tokens_details.cached_tokens`` (vLLM, SGLang, OpenAI), else ``None``.

    ``None`` means the server did not say, not that nothing was cached.
    """
    details = getattr(usage, "prompt_tokens_details", None)
    if isinstance(details, dict):  # a server field the client's model does not declare
        value = details.get("cached_tokens")
    else:
        value = getattr(details, "cached_tokens", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def entropy_from_top(top: list[tuple[str, float]]) -> float | None:
    """Entropy (nats) from the top alternatives, or ``None`` if they miss > 0.1 % of the mass.

    The unseen tail adds at most ``r * log(V / r)`` nats (``r`` the missing mass, ``V``
    the vocabulary size): under 0.02 nats for ``r = 0.001`` and a 150k vocabulary.

    >>> round(entropy_from_top([("a", math.log(0.5)), ("b", math.log(0.5))]), 4)
    0.6931
    >>> entropy_from_top([("a", math.log(0.9))]) is None
    True
    """
    probs = [math.exp(lp) for _, lp in top if lp is not None and lp > -math.inf]
    if not probs or sum(probs) < ENTROPY_MASS:
        return None
    return -sum(p * math.log(p) for p in probs if p > 0)


def _choice_text(choice: Any) -> str:
    delta = getattr(choice, "delta", None)
    if delta is not None:
        return getattr(delta, "content", None) or ""
    return getattr(choice, "text", None) or ""


def _entries(choice: Any) -> list[tuple[str, float | None, list]]:
    """``(token text, logprob, top alternatives)`` per token, from chat or completions logprobs."""
    lp = getattr(choice, "logprobs", None)
    if lp is None:
        return []
    content = getattr(lp, "content", None)
    if content is not None:
        return [(c.token, c.logprob, [(t.token, t.logprob) for t in (c.top_logprobs or [])])
                for c in content]
    tokens, lps = getattr(lp, "tokens", None) or [], getattr(lp, "token_logprobs", None) or []
    tops = getattr(lp, "top_logprobs", None) or [{}] * len(tokens)
    return [(t, v, list((top or {}).items())) for t, v, top in zip(tokens, lps, tops)]
