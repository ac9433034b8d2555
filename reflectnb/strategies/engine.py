"""What every loop shares: asking a backend, reporting steps, surviving Ctrl-C.

An :class:`Engine` belongs to one run of one loop and works from its
:class:`~reflectnb.strategies.context.RunContext`. :meth:`Engine.generate` sends a batch of
prompts to a backend (telling ``ctx.on_turn`` first which agents the rows are;
every token goes through ``ctx.token``: recorder, ``on_token``, stop check); :meth:`Engine.record`
appends a :class:`~reflectnb.trace.Step` to the result and reports it through
the recorder. ``Step.parent`` is the index of another step in
``result.steps``, which is also the order of ``recorder.on_step`` calls.

On interruption (``GenerationInterrupted`` or ``KeyboardInterrupt``) the partial
generations are recorded as steps with ``attributes={"interrupted": True}``;
:func:`run_loop` then marks the result ``stop_reason="interrupted"``, attaches
it to the exception as ``.partial`` and re-raises, so the caller (the
trace store) marks the run interrupted and the user keeps what was produced.

Non-goals: prompt wording, persistence (the recorder decides what to keep).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from reflectnb.backends.base import Backend, GenerationInterrupted, GenerationParams, Prompt
from reflectnb.errors import OptionError
from reflectnb.strategies.context import RunContext
from reflectnb.trace import Generation, Score, Step


@dataclass
class Call:
    """What one row of a generate call is for (becomes a Step once answered)."""

    kind: str
    round: int = 0
    agent: str | None = None
    parent: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """Told to ``on_turn`` before each generate call: what the batch rows are."""

    kind: str
    round: int
    agents: tuple[str | None, ...]
    model: str


class Engine:
    """Generation, step reporting and interruption bookkeeping for one run of one loop."""

    def __init__(self, result: Any, ctx: RunContext):
        self.result = result
        self.ctx = ctx
        self.recorder = ctx.recorder
        self.params = ctx.params
        result.params = self.params.to_dict()

    def generate(self, backend: Backend, prompts: Sequence[Prompt], calls: Sequence[Call],
                 params: GenerationParams | None = None) -> list[Generation]:
        """One ``backend.generate`` call (``params``: this call's settings, default the run's);
        partial rows are recorded if interrupted."""
        params = params or self.params  # the backend's generate checks them (before any model call)
        if self.ctx.on_turn is not None:
            self.ctx.on_turn(Turn(calls[0].kind, calls[0].round, tuple(c.agent for c in calls), backend.name))
        prompts = [p if isinstance(p, str) else list(p) for p in prompts]  # callers keep growing memories
        try:
            return backend.generate(prompts, params, on_token=self.ctx.token)
        except GenerationInterrupted as exc:
            for call, gen in zip(calls, exc.partial):
                if gen is not None and (gen.text or gen.tokens):
                    self.record(call, gen, interrupted=True)
            raise

    def ask(self, backend: Backend, prompt: Prompt, call: Call) -> Generation:
        """Generate one prompt (no recording)."""
        return self.generate(backend, [prompt], [call])[0]

    def record(self, call: Call, gen: Generation | None, text: str | None = None, **attributes: Any) -> int:
        """Append a step for ``call`` answered by ``gen``; return its index."""
        step = Step(kind=call.kind, text=gen.text if text is None and gen is not None else (text or ""),
                    round=call.round, agent=call.agent, parent=call.parent, generation=gen,
                    attributes={**call.attributes, **attributes})
        self.result.steps.append(step)
        self.recorder.on_step(step)
        return len(self.result.steps) - 1

    def score(self, name: str, value: float | None, target_step: int, label: str | None = None,
              explanation: str | None = None) -> None:
        """Report a verdict or score about a step."""
        self.recorder.on_score(Score(name=name, value=value, label=label, explanation=explanation,
                                     target_step=target_step))


def run_loop(result: Any, body: Callable[[], Any], on_interrupt: Callable[[], Any] | None = None) -> Any:
    """Run ``body``; return what it returns, else ``result``. The one Ctrl-C wrapper of loops and tree searches.

    On ``KeyboardInterrupt`` the partial result (``on_interrupt()`` if given, so a
    tree search can finish its tree first; else ``result``) is marked
    ``stop_reason="interrupted"`` and attached to the exception as ``.partial``
    (replacing the generations a ``GenerationInterrupted`` carried), and the
    exception is re-raised.
    """
    try:
        returned = body()
    except KeyboardInterrupt as exc:
        partial = on_interrupt() if on_interrupt is not None else result
        partial.stop_reason = "interrupted"
        exc.partial = partial  # type: ignore[attr-defined]
        raise
    return result if returned is None else returned


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is a positive int, else an OptionError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise OptionError(f"`{name}` must be a positive integer, got {value!r}")
    return value


def finite_number(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite real number (not a bool), else an OptionError naming it."""
    try:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        ok = False
    if not ok:
        raise OptionError(f"`{name}` must be a finite number, got {value!r:.60}")
    return float(value)


def above_zero(name: str, value: Any) -> float:
    """A finite number > 0 (a sampling temperature for methods that need different samples)."""
    number = finite_number(name, value)
    if number <= 0:
        raise OptionError(f"`{name}` must be a number > 0, got {value!r:.60}")
    return number


def number_in(name: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` as a float if it is a number in ``[low, high]`` (not a bool), else an OptionError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise OptionError(f"`{name}` must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def check_estimate(estimate: int, cap: int | None, cap_name: str, doing: str, unit: str, fix: str) -> None:
    """Refuse work whose estimated size is above ``cap`` (``None``: no limit), quoting the estimate.

    Tree search counts nodes, the loop magics count model calls; both refuse in
    a millisecond what would run for a day: ``f"{doing} about {estimate:,} {unit}; {fix}"``.

    Examples
    --------
    >>> check_estimate(2_000_000_001, 10_000, "--max-generations", "this run could make", "model calls", "lower it")
    Traceback (most recent call last):
    ...
    reflectnb.errors.OptionError: this run could make about 2,000,000,001 model calls; lower it
    """
    if cap is not None and estimate > positive_int(cap_name, cap):
        raise OptionError(f"{doing} about {estimate:,} {unit}; {fix}")


def choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``, else an OptionError listing them."""
    if value not in allowed:
        raise OptionError(f"`{name}` must be one of {list(allowed)}, got {value!r}")
    return value


def check_backend(name: str, value: Any) -> Backend:
    """``value`` if it is a Backend, else an OptionError saying how to get one."""
    if not isinstance(value, Backend):
        raise OptionError(f"`{name}` must be a Backend (e.g. reflectnb.load_model('smollm2-135m')), "
                          f"got {type(value).__name__}")
    return value
