"""The one interface every backend implements.

A backend turns a batch of prompts into a batch of :class:`~reflectnb.trace.Generation`.
It has one abstract method, :meth:`Backend.generate`, and declares what it can do
as class attributes (the habit of ``simonw/llm``'s ``Model``): strategies look at
``can_batch`` to decide whether to send the agents of one round together, and
decoding hooks check ``can_process_logits`` before they attach.

Non-goals: prompt templates, loops, persistence (those live in higher layers).
"""

from __future__ import annotations

import abc
import math
import numbers
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Sequence, Union

from reflectnb.errors import OptionError
from reflectnb.trace import Generation, Message, TokenEvent

Prompt = Union[str, Sequence[Message]]
TokenCallback = Callable[[TokenEvent], None]


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings shared by all backends.

    ``temperature == 0`` means greedy decoding. ``logits_processors`` are
    transformers-style callables ``(input_ids, scores) -> scores``; only
    backends with ``can_process_logits`` accept them. ``top_logprobs`` asks for
    that many alternatives per token. (Generation controllers — budget forcing,
    SRGen … — wrap a backend instead: ``reflectnb.generate(..., controller=...)``.)
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logits_processors: tuple[Any, ...] = ()
    top_logprobs: int = 0
    repetition_stop: Any = None  # None: the backend's default (on for the embedded model); see repetition.py
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens <= 0:
            raise OptionError(f"`max_new_tokens` must be a positive integer, got {self.max_new_tokens!r}")
        if (isinstance(self.temperature, bool) or not isinstance(self.temperature, numbers.Real)
                or not math.isfinite(self.temperature) or self.temperature < 0):  # nan/inf would reach the sampler
            raise OptionError(f"`temperature` must be a finite number >= 0, got {self.temperature!r}")
        if isinstance(self.top_p, bool) or not isinstance(self.top_p, numbers.Real) or not 0 < self.top_p <= 1:
            raise OptionError(f"`top_p` must be a number in (0, 1], got {self.top_p!r}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int)
                                       or self.top_k <= 0):
            raise OptionError(f"`top_k` must be a positive integer or None, got {self.top_k!r}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        if self.repetition_stop is not None:
            from reflectnb.backends.repetition import resolve

            resolve(self.repetition_stop, False)  # refuses anything but None, a bool or a RepetitionStop

    def with_(self, **changes: Any) -> "GenerationParams":
        """A copy with some fields changed (unknown names are an error)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise OptionError(f"unknown generation option(s) {unknown}; known: {sorted(known)}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly settings for the trace (processors by class name only)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["stop"] = list(self.stop)
        out["logits_processors"] = [type(p).__name__ for p in self.logits_processors]
        if hasattr(self.repetition_stop, "to_dict"):
            out["repetition_stop"] = self.repetition_stop.to_dict()
        return out


class Backend(abc.ABC):
    """A source of generations. Subclasses implement :meth:`generate`.

    Capabilities (class attributes)
    -------------------------------
    can_stream : tokens are reported through ``on_token`` while generating.
    can_batch : several prompts are generated together, faster than one by one.
    can_process_logits : ``GenerationParams.logits_processors`` are applied.
    has_logprobs : ``TokenEvent.logprob`` / ``entropy`` are filled in.
    """

    name: str = "backend"
    can_stream: bool = False
    can_batch: bool = False
    can_process_logits: bool = False
    has_logprobs: bool = False

    @abc.abstractmethod
    def generate(
        self,
        prompts: Sequence[Prompt],
        params: GenerationParams | None = None,
        on_token: TokenCallback | None = None,
    ) -> list[Generation]:
        """Generate one continuation per prompt, in the order given.

        An implementation calls :meth:`check_params` first, before any model call:
        it is the one place settings are checked (loops and searches do not repeat it).

        Parameters
        ----------
        prompts : list of str or list of list[Message]
            A plain string is used as raw text; a message list goes through the
            model's chat template (or the server's chat endpoint).
        params : GenerationParams, optional
        on_token : callable, optional
            Called with each :class:`TokenEvent` as it is produced; ``event.row``
            says which prompt it belongs to.

        Raises
        ------
        GenerationInterrupted
            On ``KeyboardInterrupt``, carrying what was produced so far.
        """

    def generate_one(self, prompt: Prompt, params: GenerationParams | None = None,
                     on_token: TokenCallback | None = None) -> Generation:
        """Convenience: one prompt in, one :class:`Generation` out."""
        return self.generate([prompt], params, on_token)[0]

    def check_params(self, params: GenerationParams) -> None:
        """Refuse settings this backend cannot honour, with a clear message."""
        from reflectnb.errors import CapabilityError

        if params.logits_processors and not self.can_process_logits:
            raise CapabilityError(
                f"the {self.name!r} backend cannot apply logits processors "
                f"({', '.join(type(p).__name__ for p in params.logits_processors)}); "
                "use a local model (e.g. 'smollm2-135m' or 'hf:<path>')"
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class GenerationInterrupted(KeyboardInterrupt):
    """A ``KeyboardInterrupt`` that carries the partial generations produced so far."""

    def __init__(self, partial: list[Generation]):
        super().__init__("generation interrupted")
        self.partial = partial


def as_messages(prompt: Prompt) -> list[Message] | None:
    """The prompt as a message list, or ``None`` when it is raw text."""
    if isinstance(prompt, str):
        return None
    return [m if isinstance(m, Message) else Message(**m) for m in prompt]
