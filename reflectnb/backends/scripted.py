"""A backend that replays scripted replies: for tests, teaching and dry runs.

:class:`ScriptedBackend` answers every prompt from a script instead of a model,
so a loop's behaviour (who saw what, how many calls, when it stopped) can be
shown and tested without waiting for a model. A script is one of

* a **list** of replies, consumed in order, one per prompt;
* a **callable** ``(prompt_text, call_index) -> str``, ``call_index`` counting
  prompts from 0 across all calls;
* a **dict** keyed by a substring of the prompt (role-aware scripts): the first
  key found in the prompt's *first message* (usually the system prompt naming
  the role) wins, else the first key found anywhere in the prompt. A value is a
  reply or a list of replies consumed in order. The key ``""`` matches every
  prompt, so put it last as a fallback.

A reply may also be an exception instance (raised when reached) or
:meth:`ScriptedBackend.interrupt` (streams a partial text, then raises
:class:`GenerationInterrupted` as a user pressing Stop would).

Tokens are whitespace-separated words (leading whitespace stays with its word,
so the tokens' texts join back to the reply). ``max_new_tokens`` counts them;
``stop`` strings cut the reply before the first one. Every call is kept in
:attr:`ScriptedBackend.calls` as ``(prompts, params)``.

Non-goals: imitating a tokenizer, logprobs, logits processors.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Sequence, Union

from reflectnb.backends.base import (Backend, GenerationInterrupted, GenerationParams, Prompt,
                                     TokenCallback, as_messages)
from reflectnb.errors import BackendError, OptionError
from reflectnb.trace import Generation, TokenEvent

Reply = Union[str, BaseException, "ScriptedInterrupt"]
Script = Union[Sequence[Reply], Callable[[str, int], Reply], Mapping[str, Union[Reply, Sequence[Reply]]]]


@dataclass(frozen=True)
class ScriptedInterrupt:
    """A scripted Ctrl-C: stream ``partial`` for this prompt, then interrupt."""

    partial: str = ""


class ScriptedCall(NamedTuple):
    """One ``generate`` call: the prompts of the batch and the params used."""

    prompts: list[Prompt]
    params: GenerationParams


def prompt_text(prompt: Prompt) -> str:
    """A prompt as plain text (message contents joined by blank lines)."""
    messages = as_messages(prompt)
    return prompt if messages is None else "\n\n".join(m.content for m in messages)


def split_tokens(text: str) -> list[str]:
    """Whitespace tokens whose concatenation is ``text`` (leading space kept)."""
    pieces = re.findall(r"\s*\S+", text)
    rest = text[len("".join(pieces)):]
    if rest:
        pieces = pieces[:-1] + [pieces[-1] + rest] if pieces else [rest]
    return pieces


class ScriptedBackend(Backend):
    """Replays scripted replies deterministically and records every call.

    Parameters
    ----------
    responses : list, callable or dict
        The script (see the module docstring).
    name : str
        Name shown in traces (``Generation.model``).
    token_delay : float
        Seconds to wait per streamed token (to demonstrate live views).

    Examples
    --------
    >>> model = ScriptedBackend(["A first draft.", "Looks good. STOP"])
    >>> model.generate_one("Write a haiku").text
    'A first draft.'
    >>> len(model.calls), model.remaining
    (1, 1)
    """

    can_stream = True
    can_batch = True

    def __init__(self, responses: Script, *, name: str = "scripted", token_delay: float = 0.0):
        if not (callable(responses) or isinstance(responses, (Mapping, list, tuple))):
            raise OptionError("ScriptedBackend needs a list of replies, a dict {prompt substring: reply} "
                              f"or a callable (prompt, call_index) -> str, got {type(responses).__name__}")
        self.name = name
        self.token_delay = float(token_delay)
        self.calls: list[ScriptedCall] = []
        self._script = responses
        self._served = 0
        self._per_key: dict[str, int] = {}
        self._vocab: dict[str, int] = {}

    @staticmethod
    def interrupt(partial: str = "") -> ScriptedInterrupt:
        """A reply that streams ``partial`` and then raises ``GenerationInterrupted``."""
        return ScriptedInterrupt(partial)

    @property
    def remaining(self) -> int | None:
        """Replies left in a list script (``None`` for callables and dicts)."""
        if isinstance(self._script, (list, tuple)):
            return len(self._script) - self._served
        return None

    @property
    def prompts(self) -> list[Prompt]:
        """Every prompt received, in order, across all calls."""
        return [p for call in self.calls for p in call.prompts]

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None,
                 on_token: TokenCallback | None = None) -> list[Generation]:
        params = params or GenerationParams()
        self.check_params(params)
        prompts = list(prompts)
        self.calls.append(ScriptedCall(prompts, params))
        replies = [self._next_reply(p) for p in prompts]
        return self._play(prompts, replies, params, on_token)

    # -- the script -----------------------------------------------------------------------------------------

    def _next_reply(self, prompt: Prompt) -> Reply:
        index, self._served = self._served, self._served + 1
        script = self._script
        if isinstance(script, Mapping):
            return self._keyed_reply(script, prompt)
        if callable(script):
            return script(prompt_text(prompt), index)
        if index >= len(script):
            raise BackendError(f"ScriptedBackend {self.name!r} ran out of responses: {len(script)} were "
                               f"given and prompt #{index + 1} needs another ({_head(prompt)}); "
                               "add more responses to the script")
        return script[index]

    def _keyed_reply(self, script: Mapping[str, Any], prompt: Prompt) -> Reply:
        messages = as_messages(prompt)
        first = prompt_text(prompt) if messages is None else messages[0].content
        key = next((k for k in script if k in first), None)
        if key is None:
            key = next((k for k in script if k in prompt_text(prompt)), None)
        if key is None:
            raise BackendError(f"ScriptedBackend {self.name!r} has no reply for this prompt "
                               f"({_head(prompt)}); its keys are {list(script)}; add a key that "
                               "occurs in the prompt, or \"\" as a fallback")
        value = script[key]
        if isinstance(value, (str, BaseException, ScriptedInterrupt)):
            return value
        used = self._per_key.get(key, 0)
        if used >= len(value):
            raise BackendError(f"ScriptedBackend {self.name!r} ran out of responses for key {key!r}: "
                               f"{len(value)} were given and another is needed ({_head(prompt)})")
        self._per_key[key] = used + 1
        return value[used]

    # -- playing replies as a streamed batch ----------------------------------------------------------------

    def _play(self, prompts: list[Prompt], replies: list[Reply], params: GenerationParams,
              on_token: TokenCallback | None) -> list[Generation]:
        cut = next((i for i, r in enumerate(replies) if not isinstance(r, str)), len(replies))
        start = time.perf_counter()
        texts = [self._shape(r if isinstance(r, str) else getattr(r, "partial", ""), params)
                 for r in replies[: cut + 1] if isinstance(r, (str, ScriptedInterrupt))]
        token_lists = [split_tokens(text) for text, _ in texts]
        self._stream(token_lists, on_token)
        seconds = time.perf_counter() - start
        gens = [self._generation(row, p, t, reason, toks, params, seconds)
                for row, (p, (t, reason), toks) in enumerate(zip(prompts, texts, token_lists))]
        if cut < len(replies):
            self._raise(replies[cut], gens)
        return gens

    def _raise(self, reply: Reply, gens: list[Generation]) -> None:
        if isinstance(reply, GenerationInterrupted):
            raise reply
        if isinstance(reply, (ScriptedInterrupt, KeyboardInterrupt)):
            for gen in gens:
                gen.finish_reason = "interrupted"
            raise GenerationInterrupted(gens)
        if isinstance(reply, BaseException):
            raise reply
        raise BackendError(f"ScriptedBackend {self.name!r}: a reply must be a str, got "
                           f"{type(reply).__name__} ({reply!r:.60})")

    def _shape(self, text: str, params: GenerationParams) -> tuple[str, str]:
        reason = "stop"
        hits = [text.find(s) for s in params.stop if s and s in text]
        if hits:
            text = text[: min(hits)]
        tokens = split_tokens(text)
        if len(tokens) > params.max_new_tokens:
            text, reason = "".join(tokens[: params.max_new_tokens]), "length"
        return text, reason

    def _stream(self, token_lists: list[list[str]], on_token: TokenCallback | None) -> None:
        if on_token is None:
            return
        for position in range(max((len(t) for t in token_lists), default=0)):
            for row, tokens in enumerate(token_lists):
                if position < len(tokens):
                    on_token(self._event(row, position, tokens[position]))
            if self.token_delay:
                time.sleep(self.token_delay)

    def _event(self, row: int, position: int, text: str) -> TokenEvent:
        token_id = self._vocab.setdefault(text.strip(), len(self._vocab))
        return TokenEvent(row=row, position=position, token_id=token_id, text=text)

    def _generation(self, row: int, prompt: Prompt, text: str, reason: str, tokens: list[str],
                    params: GenerationParams, seconds: float) -> Generation:
        events = [self._event(row, i, t) for i, t in enumerate(tokens)]
        return Generation(text=text, model=self.name, prompt=prompt, tokens=events,
                          prompt_tokens=len(split_tokens(prompt_text(prompt))),
                          completion_tokens=len(tokens), finish_reason=reason,
                          seconds=seconds, params=params.to_dict())


def _head(prompt: Prompt, width: int = 60) -> str:
    text = " ".join(prompt_text(prompt).split())
    return f"prompt starts {text[:width]!r}" + ("…" if len(text) > width else "")


def from_name(name: str) -> ScriptedBackend:
    """A backend from a registry name: ``scripted:["a", "b"]`` (JSON list) or ``scripted:a|b``.

    Examples
    --------
    >>> from_name("scripted:yes|no").generate_one("?").text
    'yes'
    """
    spec = name.partition(":")[2]
    if spec.lstrip().startswith("["):
        try:
            replies = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise OptionError(f"'scripted:' expects a JSON list of strings, got {spec!r} ({exc})") from None
    else:
        replies = spec.split("|") if spec else []
    if not replies or not all(isinstance(r, str) for r in replies):
        raise OptionError(f"'scripted:' needs at least one reply, e.g. 'scripted:draft|Looks good. STOP', got {name!r}")
    return ScriptedBackend(replies, name=name)
