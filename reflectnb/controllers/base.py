"""The shape every generation controller shares: ``run(backend, prompt, params, on_token) -> Generation``.

Contract
--------
* A controller is a small object whose ``__init__`` validates its settings and
  whose :meth:`Controller.run` decodes one prompt with its own
  :class:`~reflectnb.controllers.loop.Decoder`, intervening as it goes.
  Controllers keep no state between runs, so one object can serve many runs.
* ``backend`` is duck-typed: anything with ``.model`` and ``.tokenizer`` (a
  ``LocalBackend``); ``render(prompt)`` is used for chat prompts when present.
* The result is a plain :class:`~reflectnb.trace.Generation`. Its ``tokens``
  carry ``intervention`` labels where the controller added or replaced tokens;
  ``params["controller"]`` names the controller, ``params["controller_settings"]``
  holds its settings and ``params["interventions"]`` lists every intervention as
  a dict with ``kind`` and ``position`` (number of tokens added before it).

Non-goals: batches (one prompt per run), remote backends (no hidden states).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from reflectnb.controllers.loop import Decoder
from reflectnb.backends.base import GenerationParams
from reflectnb.controllers.sampling import sampling_params
from reflectnb.errors import CapabilityError, OptionError
from reflectnb.trace import Generation, TokenEvent


class Controller:
    """Base class: subclasses implement :meth:`control` and :meth:`settings`."""

    name = "controller"
    keep_hidden = False  # SRGen needs every final hidden state

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def control(self, dec: Decoder) -> tuple[str, dict[str, Any]]:
        """Drive ``dec``; return ``(finish_reason, extra params for the Generation)``."""
        raise NotImplementedError

    def sampling(self, params: GenerationParams | None) -> GenerationParams:
        """The params the decode loop samples with (a controller may override some, as SRGen does)."""
        return sampling_params(params)

    def run(self, backend: Any, prompt: Any, params: Any | None = None,
            on_token: Callable[[TokenEvent], None] | None = None) -> Generation:
        """Generate one continuation of ``prompt`` under this controller.

        Parameters
        ----------
        backend : LocalBackend (or any object with ``.model`` and ``.tokenizer``)
        prompt : str (raw text) or list of Message (chat, via ``backend.render``)
        params : GenerationParams, optional
            ``max_new_tokens`` caps every token the run adds, forced ones included.
        on_token : callable, optional
            Receives each :class:`TokenEvent` (``intervention`` set where forced).
        """
        dec = self.decoder(backend, prompt, params, on_token)
        start = time.perf_counter()
        finish, extra = self.control(dec)
        seconds = time.perf_counter() - start
        return Generation(text=dec.text, model=getattr(backend, "name", "local"), prompt=prompt,
                          tokens=dec.events, prompt_tokens=len(dec.prompt_ids), completion_tokens=len(dec.ids),
                          finish_reason=finish, seconds=seconds,
                          params={**dec.params.to_dict(), "controller": self.name, "engine": "transformers",
                                  "dtype": str(next(dec.model.parameters()).dtype).removeprefix("torch."),
                                  "controller_settings": self.settings(), **extra,
                                  "interventions": dec.interventions})

    def decoder(self, backend: Any, prompt: Any, params: Any | None, on_token) -> Decoder:
        model, tokenizer = getattr(backend, "model", None), getattr(backend, "tokenizer", None)
        if model is None or tokenizer is None:
            raise CapabilityError(f"{type(self).__name__} needs a local transformers model (it runs its own "
                                  f"decode loop); {backend!r} has none. Use e.g. load_model('smollm2-135m')")
        text = backend.render(prompt) if hasattr(backend, "render") else prompt
        if not isinstance(text, str):
            raise OptionError(f"prompt must be raw text or a message list, got {type(prompt).__name__}")
        return Decoder(model, tokenizer, text, self.sampling(params), on_token,
                       getattr(backend, "reflection_ids", frozenset()), keep_hidden=self.keep_hidden)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptionError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return value


def check_float(name: str, value: Any, low: float, high: float = float("inf")) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        bounds = f">= {low}" if high == float("inf") else f"in [{low}, {high}]"
        raise OptionError(f"`{name}` must be a number {bounds}, got {value!r}")
    return float(value)


def check_str(name: str, value: Any, allow_none: bool = False, allow_empty: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or (not value and not allow_empty):
        raise OptionError(f"`{name}` must be a non-empty string, got {value!r}")
    return value


class Plain(Controller):
    """No intervention: the controller loop as plain decoding (a baseline, and a check of the loop).

    Examples
    --------
    >>> Plain().run(backend, "2+2=", GenerationParams(max_new_tokens=5)).text   # doctest: +SKIP
    """

    name = "plain"

    def settings(self) -> dict[str, Any]:
        return {}

    def control(self, dec: Decoder) -> tuple[str, dict[str, Any]]:
        reason = dec.generate(dec.room)
        return ("stop" if reason == "stop" else "length"), {}
