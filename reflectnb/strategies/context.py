"""The run context: everything a strategy needs from the run it belongs to, in one object.

A strategy is called as ``run(ctx, task, options)``. Before this existed every
loop took the same four keywords (``params``, ``recorder``, ``on_token``,
``on_turn``) and each caller spelled them out again; a live view's stop button
reached the loop by raising ``KeyboardInterrupt`` from inside a recorder.
Now the context carries:

``backend`` / ``models``  the model, and models for named roles (a critic, each debate agent)
``params``                generation settings (:class:`~reflectnb.backends.base.GenerationParams`)
``recorder``              where steps, nodes, scores and tokens are reported (the trace store, a view)
``on_token`` / ``on_turn`` live callbacks: each token; which agent each batch row is
``stop``                  a :class:`StopSignal`, asked after every token (the stop button sets it)
``answer``                how an answer is read from text (an evaluation passes its task set's rule)

:meth:`RunContext.token` is the one token path: recorder, then ``on_token``,
then the stop check, so a stop request raises ``KeyboardInterrupt`` at the same
place Ctrl-C would, and every loop's interruption bookkeeping applies.

Non-goals: opening runs, showing views (the API layer builds a context per run).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.errors import OptionError
from reflectnb.trace import NullRecorder, Recorder, TokenEvent


class StopSignal:
    """A request to stop a run early, set from any thread, asked between tokens.

    Sources are watched events (a live view's stop listener sets one from a
    kernel subshell) with an optional ``poll`` function called before asking
    (ipykernel 6 has to pump front-end messages for the click to arrive).

    Examples
    --------
    >>> stop = StopSignal()
    >>> stop.requested()
    False
    >>> stop.request()
    >>> stop.requested()
    True
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._watched: list[tuple[threading.Event, Callable[[], None] | None, str]] = []

    def request(self) -> None:
        """Ask the run to stop at its next token."""
        self._event.set()

    def watch(self, event: threading.Event, poll: Callable[[], None] | None = None,
              why: str = "stopped from the view") -> None:
        """Also stop when ``event`` is set (``why`` is the interrupt's message); call ``poll()`` before each check."""
        self._watched.append((event, poll, why))

    def requested(self) -> bool:
        return self._why() is not None

    def _why(self) -> str | None:
        for _, poll, _ in self._watched:
            if poll is not None:
                poll()
        if self._event.is_set():
            return "stopped"
        return next((why for event, _, why in self._watched if event.is_set()), None)

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a stop was requested (the path Ctrl-C takes)."""
        why = self._why()
        if why is not None:
            raise KeyboardInterrupt(why)


def auto_answer(text: str) -> str | None:
    """The default answer rule: the answer sentence, a boxed answer, a number, else the last line."""
    from reflectnb.strategies.voting import extract_answer

    return extract_answer(text, "auto_or_last_line")


@dataclass
class RunContext:
    """What one run hands its strategy (see the module docstring)."""

    backend: Backend
    params: GenerationParams = field(default_factory=GenerationParams)
    recorder: Recorder = field(default_factory=NullRecorder)
    on_token: Callable[[TokenEvent], None] | None = None
    on_turn: Callable[[Any], None] | None = None
    stop: StopSignal = field(default_factory=StopSignal)
    models: dict[str, Any] = field(default_factory=dict)
    answer: Callable[[str], str | None] = auto_answer

    def __post_init__(self) -> None:
        if not isinstance(self.backend, Backend):
            raise OptionError(f"the model must be a Backend (e.g. reflectnb.load_model('smollm2-135m')), "
                              f"got {type(self.backend).__name__}")
        if not isinstance(self.params, GenerationParams):
            raise OptionError(f"`params` must be a GenerationParams, got {type(self.params).__name__}")
        if self.recorder is None:
            self.recorder = NullRecorder()

    def model(self, role: str) -> Any:
        """The backend for ``role`` (``critic``, ``agents`` …), else the run's own backend."""
        value = self.models.get(role)
        return self.backend if value is None else value

    def token(self, event: TokenEvent) -> None:
        """The one token path: report it, pass it to ``on_token``, then honour a stop request."""
        self.recorder.on_token(event)
        if self.on_token is not None:
            self.on_token(event)
        self.stop.check()

    def with_(self, **changes: Any) -> "RunContext":
        """A copy with some fields replaced (the stop signal is shared)."""
        return dataclasses.replace(self, **changes)


def as_context(ctx: RunContext | Backend) -> RunContext:
    """``ctx`` itself, or a default context around a bare backend (``reflect(model, task)`` in a notebook)."""
    return ctx if isinstance(ctx, RunContext) else RunContext(ctx)
