"""Schedules: the bias δ(t) added to reflection-token logits at generated position t.

Contract
--------
* A schedule is a frozen dataclass with a vectorised ``value(positions)``:
  positions (int, list, numpy or torch 1-D; generated tokens counted from 0)
  in, ``numpy.float64`` array out. Outside its ``windows`` (half-open
  ``[start, end)`` ranges; ``None`` = everywhere) the value is 0.
* ``repr(schedule)`` is the schedule string: ``parse_schedule(repr(s)) == s``.
* ``schedule.chart(max_position=..., realised=...)`` draws it with altair
  (imported lazily); ``realised`` reflection-token positions are overlaid.
* Arguments are validated on construction; errors (``OptionError``) name the
  argument and the value. Biases (``delta``, ``amplitude``, ``start``, ``end``,
  ``alpha``) lie in ±:data:`BIAS_LIMIT`; ``Cyclic.shift`` in [-1, 1].

Kinds (formulas and sources in ``docs/decoding.md``): :class:`Constant`,
:class:`Linear`, :class:`Cosine`, :class:`Cyclic` (CyclicReflex, REFERENCE
§1.2), :class:`Silver` (§1.8), :class:`Tip` (TIP, §1.6; its paper mode needs
the generated ids, so it is applied by ``ThoughtSwitchPenalty``).

Non-goals: applying schedules to logits (``processors.py``), parsing (``parse.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from numbers import Real
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from reflectnb.errors import OptionError

Windows = tuple[tuple[int, int], ...]
BIAS_LIMIT = 10_000.0  # a logit bias of ±10,000 already forces or forbids a token; beyond it logits overflow
BIAS = (-BIAS_LIMIT, BIAS_LIMIT)
MAX_MODULUS = 2**20  # Silver's period, in tokens


def as_positions(positions: Any) -> np.ndarray:
    """Positions as a 1-D float64 array (accepts int, list, numpy, torch)."""
    if hasattr(positions, "detach"):
        positions = positions.detach().cpu().numpy()
    return np.atleast_1d(np.asarray(positions, dtype=np.float64)).reshape(-1)


def _number(name: str, value: Any, positive: bool = False, within: tuple[float, float] | None = None) -> float:
    try:
        finite = not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
    except OverflowError:  # an int too large for a float: 10**400
        finite = False
    if not finite:
        raise OptionError(f"`{name}` must be a finite number, got {value!r:.60}")
    if positive and value <= 0:
        raise OptionError(f"`{name}` must be a positive number, got {value!r}")
    if within is not None and not within[0] <= value <= within[1]:
        raise OptionError(f"`{name}` must be in [{within[0]:g}, {within[1]:g}], got {value!r}")
    return value


def _windows(value: Any) -> Windows | None:
    if value is None:
        return None
    try:
        pairs = tuple((int(s), int(e)) for s, e in value)
        ok = pairs and all(0 <= s < e and (s, e) == tuple(w) for (s, e), w in zip(pairs, value))
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(1e999)
        ok = False
    if not ok:
        raise OptionError(f"`windows` must be a list of (start, end) integer pairs with 0 <= start < end, "
                          f"e.g. [(0, 8192)]; got {value!r}")
    return pairs


def in_windows(t: np.ndarray, windows: Windows | None) -> np.ndarray:
    """Bool mask: position inside any half-open window (all True when ``windows`` is None)."""
    if windows is None:
        return np.ones(t.shape, dtype=bool)
    return np.any([(t >= s) & (t < e) for s, e in windows], axis=0)


@dataclass(frozen=True)
class Schedule:
    """Base class: subclasses set ``kind`` and implement ``_raw(t)``."""

    kind: ClassVar[str] = ""
    default_span: ClassVar[int] = 1024

    def value(self, positions: Any) -> np.ndarray:
        """δ at each position.

        Parameters
        ----------
        positions : int, sequence, numpy or torch 1-D
            Generated-token positions, from 0.

        Returns
        -------
        numpy.ndarray of float64, shape ``[len(positions)]``.

        Examples
        --------
        >>> Cyclic(amplitude=5, period=1200).value([0, 300, 900]).tolist()
        [0.0, 5.0, -5.0]
        """
        t = as_positions(positions)
        if np.any(t < 0):
            raise OptionError(f"positions must be >= 0, got {t[t < 0][:3].tolist()}")
        out = self._raw(t).astype(np.float64)
        return np.where(in_windows(t, getattr(self, "windows", None)), out, 0.0)

    __call__ = value

    def _raw(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={_fmt(getattr(self, f.name))}" for f in fields(self)
                         if not (f.default is None and getattr(self, f.name) is None))
        return f"{self.kind}({args})"

    def chart(self, max_position: int | None = None, realised: Iterable[int] | None = None):
        """An altair chart of δ(t) for ``t`` in ``[0, max_position]``, realised positions overlaid.

        Examples
        --------
        >>> Cyclic(5, 1200).chart(max_position=2400, realised=[12, 610]).to_dict()  # doctest: +SKIP
        """
        from reflectnb.decoding.chart import schedule_chart

        return schedule_chart(self, max_position or self.default_span, realised)


def _fmt(value: Any) -> str:
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return "[" + ", ".join(f"({s}, {e})" for s, e in value) + "]"
    return repr(value) if not isinstance(value, str) else value


@dataclass(frozen=True, repr=False)
class Constant(Schedule):
    """δ(t) = delta inside ``windows``. ``constant(-3, windows=[(0, 600)])`` is CyclicReflex's TIP."""

    delta: float = 0.0
    windows: Windows | None = None
    kind: ClassVar[str] = "constant"

    def __post_init__(self) -> None:
        _number("delta", self.delta, within=BIAS)
        object.__setattr__(self, "windows", _windows(self.windows))

    def __repr__(self) -> str:
        win = "" if self.windows is None else f", windows={_fmt(self.windows)}"
        return f"constant({self.delta!r}{win})"

    def _raw(self, t: np.ndarray) -> np.ndarray:
        return np.full(t.shape, float(self.delta))


@dataclass(frozen=True, repr=False)
class Linear(Schedule):
    """δ(t) = start + (end − start)·min(t/span, 1): a ramp, then held at ``end``."""

    start: float = 0.0
    end: float = 0.0
    span: float = 1000
    windows: Windows | None = None
    kind: ClassVar[str] = "linear"

    def __post_init__(self) -> None:
        _number("start", self.start, within=BIAS)
        _number("end", self.end, within=BIAS)
        _number("span", self.span, positive=True)
        object.__setattr__(self, "windows", _windows(self.windows))

    @property
    def default_span(self) -> int:  # type: ignore[override]
        return int(self.span * 1.25)

    def _progress(self, t: np.ndarray) -> np.ndarray:
        return np.minimum(t / self.span, 1.0)

    def _raw(self, t: np.ndarray) -> np.ndarray:
        return self.start + (self.end - self.start) * self._progress(t)


@dataclass(frozen=True, repr=False)
class Cosine(Linear):
    """δ(t) = end + (start − end)·(1 + cos(π·min(t/span, 1)))/2: cosine annealing, then ``end``."""

    kind: ClassVar[str] = "cosine"

    def _raw(self, t: np.ndarray) -> np.ndarray:
        return self.end + (self.start - self.end) * (1 + np.cos(np.pi * self._progress(t))) / 2


@dataclass(frozen=True, repr=False)
class Cyclic(Schedule):
    """CyclicReflex's triangular wave (REFERENCE §1.2); ``shift`` is a fraction of the period, in [-1, 1].

    ``c = ((t + shift·period) mod period) / period``; δ rises 0 → +A on c ∈ [0, .25],
    falls +A → −A on (.25, .75], rises −A → 0 after. Zero outside ``windows``
    (default ``[(0, 8192)]``, the repo's argparse default).
    """

    amplitude: float = 5.0
    period: float = 1200
    shift: float = 0.0
    windows: Windows | None = ((0, 8192),)
    kind: ClassVar[str] = "cyclic"

    def __post_init__(self) -> None:
        _number("amplitude", self.amplitude, within=BIAS)
        _number("shift", self.shift, within=(-1.0, 1.0))  # one period either way covers every phase
        _number("period", self.period, positive=True)
        object.__setattr__(self, "windows", _windows(self.windows))

    @property
    def default_span(self) -> int:  # type: ignore[override]
        return int(2 * self.period)

    def _raw(self, t: np.ndarray) -> np.ndarray:
        a, period = float(self.amplitude), float(self.period)
        c = np.mod(t + self.shift * period, period) / period
        rise, fall, back = (c / 0.25) * a, a - ((c - 0.25) / 0.5) * 2 * a, -a + ((c - 0.75) / 0.25) * a
        return np.select([c <= 0.25, c <= 0.75], [rise, fall], back)


@dataclass(frozen=True, repr=False)
class Silver(Schedule):
    """Silver schedule (REFERENCE §1.8): t' = t mod modulus, ν = v2(t'+1) − 1, δ = ρ^(ν−1) > 0."""

    rho: float = 2.0
    modulus: int = 64
    windows: Windows | None = None
    kind: ClassVar[str] = "silver"

    def __post_init__(self) -> None:
        _number("rho", self.rho, positive=True, within=(0.0, BIAS_LIMIT))
        if isinstance(self.modulus, bool) or not isinstance(self.modulus, int) or self.modulus <= 0:
            raise OptionError(f"`modulus` must be a positive integer, got {self.modulus!r}")
        if self.modulus > MAX_MODULUS:  # positions are int64, and no context is this long anyway
            raise OptionError(f"`modulus` must be at most {MAX_MODULUS:,}, got {self.modulus!r:.40}")
        object.__setattr__(self, "windows", _windows(self.windows))

    @property
    def default_span(self) -> int:  # type: ignore[override]
        return 2 * self.modulus

    def _raw(self, t: np.ndarray) -> np.ndarray:
        x = (t.astype(np.int64) % self.modulus) + 1
        v2 = np.frexp((x & -x).astype(np.float64))[1] - 1  # exponent of the lowest set bit
        return np.power(float(self.rho), (v2 - 1) - 1.0)


TIP_MODES: tuple[str, ...] = ("paper", "cyclicreflex")


@dataclass(frozen=True, repr=False)
class Tip(Schedule):
    """TIP thought-switching penalty (REFERENCE §1.6): δ = −α for Ψ ≤ t < Ψ + β, else 0.

    ``value(t)`` assumes Ψ = 0 (no switch yet), which is exactly ``mode="cyclicreflex"``;
    ``value(t, anchors=...)`` re-anchors Ψ at the latest anchor ≤ t (``mode="paper"``).
    """

    alpha: float = 3.0
    beta: int = 600
    mode: str = "paper"
    kind: ClassVar[str] = "tip"

    def __post_init__(self) -> None:
        _number("alpha", self.alpha, within=BIAS)
        _number("beta", self.beta, positive=True)
        if self.mode not in TIP_MODES:
            raise OptionError(f"`mode` must be one of {', '.join(TIP_MODES)}; got {self.mode!r}")

    @property
    def default_span(self) -> int:  # type: ignore[override]
        return int(2 * self.beta)

    def value(self, positions: Any, anchors: Sequence[int] | None = None) -> np.ndarray:  # type: ignore[override]
        """δ at each position; in paper mode, ``anchors`` are switch-token positions (Ψ candidates)."""
        t = as_positions(positions)
        psi = np.zeros_like(t)
        if anchors is not None and self.mode == "paper" and len(anchors):
            a = np.sort(as_positions(anchors))
            idx = np.searchsorted(a, t, side="right") - 1  # index of the latest anchor <= t
            psi = np.where(idx >= 0, a[np.clip(idx, 0, None)], 0.0)
        return np.where((t >= psi) & (t < psi + self.beta), -float(self.alpha), 0.0)

    __call__ = value

    def _raw(self, t: np.ndarray) -> np.ndarray:
        return self.value(t)


KINDS: dict[str, type[Schedule]] = {k.kind: k for k in (Constant, Linear, Cosine, Cyclic, Silver, Tip)}
