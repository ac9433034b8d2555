"""Checkers: is an extracted answer right?

Contract
--------
A checker is called as ``checker(predicted, item) -> float`` with the
extracted answer (a non-empty ``str``) and the :class:`~reflectnb.evaluate.tasks.Item`;
it returns a score in ``[0, 1]`` and an answer is **correct when the score is
1** (reasoning-gym gives partial credit below 1 for some tasks; the score is
kept in the trace). :func:`make_checker` builds one from a spec:

``"exact"``            equal after :func:`~reflectnb.strategies.voting.normalize`
                       (case, spaces, a trailing period, ``5.0 == 5``, ``1,000 == 1000``)
``"numeric"``          numbers within ``abs_tol`` (default ``1e-6``) + ``rel_tol`` × |gold|;
                       ``"numeric:0.01"`` sets ``abs_tol``; fractions ``3/4``, ``%`` and ``$`` are read
``"regex"``            the item's answer is a regular expression the prediction must fully match
                       (case-insensitive)
a function             ``fn(predicted, gold) -> bool | float`` (``True`` or a number ``>= 1`` is correct)

Non-goals: symbolic math equivalence; calling an LLM as judge.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from reflectnb.errors import OptionError
from reflectnb.strategies.voting import normalize

if TYPE_CHECKING:
    from reflectnb.evaluate.tasks import Item

CHECKERS = ("exact", "numeric", "regex")


class ItemChecker:
    """Base of the built-in checkers: ``checker(predicted, item) -> score in [0, 1]``."""

    name = "checker"

    def __call__(self, predicted: str, item: "Item") -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


Checker = ItemChecker


class Exact(ItemChecker):
    """1.0 when the normalised strings are equal."""

    name = "exact"

    def __call__(self, predicted: str, item: "Item") -> float:
        return float(normalize(predicted) == normalize(str(item.answer)))


def to_number(text: str) -> float | None:
    """A float from ``"1,000"``, ``"$3.50"``, ``"75%"`` (75.0), ``"3/4"``; else ``None``.

    Examples
    --------
    >>> to_number("1,000"), to_number("3/4"), to_number("x")
    (1000.0, 0.75, None)
    """
    s = text.strip().replace(",", "").replace("$", "").rstrip("%").strip()
    if (m := re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*/\s*(-?\d+(?:\.\d+)?)", s)):
        denominator = float(m.group(2))
        return float(m.group(1)) / denominator if denominator else None
    try:
        value = float(s)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True, repr=False)
class Numeric(ItemChecker):
    """Numbers within ``abs_tol + rel_tol * |gold|`` of the gold answer."""

    abs_tol: float = 1e-6
    rel_tol: float = 0.0

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"numeric:{self.abs_tol:g}"

    def __call__(self, predicted: str, item: "Item") -> float:
        gold = to_number(str(item.answer))
        if gold is None:
            raise OptionError(f"the numeric checker needs a number as the gold answer of item {item.id!r}, "
                              f"got {item.answer!r}; use checker='exact' for text answers")
        value = to_number(predicted)
        return float(value is not None and abs(value - gold) <= self.abs_tol + self.rel_tol * abs(gold))


class Regex(ItemChecker):
    """1.0 when ``predicted`` fully matches the item's answer as a pattern."""

    name = "regex"

    def __call__(self, predicted: str, item: "Item") -> float:
        return float(re.fullmatch(str(item.answer), predicted.strip(), re.I) is not None)


@dataclass(frozen=True, repr=False)
class UserFunction(ItemChecker):
    """Wraps ``fn(predicted, gold) -> bool | float`` as a checker."""

    fn: Callable[[str, Any], Any]

    @property
    def name(self) -> str:  # type: ignore[override]
        return getattr(self.fn, "__name__", "function")

    def __call__(self, predicted: str, item: "Item") -> float:
        value = self.fn(predicted, item.answer)
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return min(max(float(value), 0.0), 1.0)
        raise TypeError(f"checker {getattr(self.fn, '__name__', self.fn)!r} returned {value!r}; "
                        "a checker must return a bool or a number in [0, 1]")


def make_checker(spec: str | ItemChecker | Callable[[str, Any], Any]) -> ItemChecker:
    """A checker from a name (``"exact"``, ``"numeric"``, ``"numeric:0.01"``, ``"regex"``) or a function.

    Examples
    --------
    >>> from reflectnb.evaluate.tasks import Item
    >>> make_checker("numeric:0.01")("3.141", Item("pi", "pi?", "3.14159"))
    1.0
    """
    if isinstance(spec, ItemChecker):
        return spec
    if callable(spec):
        return UserFunction(spec)
    if not isinstance(spec, str):
        raise OptionError(f"`checker` must be one of {list(CHECKERS)} or a function, got {spec!r}")
    name, _, arg = spec.partition(":")
    if name == "exact" and not arg:
        return Exact()
    if name == "regex" and not arg:
        return Regex()
    if name == "numeric":
        return Numeric(abs_tol=_tolerance(spec, arg)) if arg else Numeric()
    raise OptionError(f"unknown checker {spec!r}; use one of {list(CHECKERS)} ('numeric:0.01' sets the "
                      "tolerance) or a function (predicted, gold) -> bool")


def _tolerance(spec: str, arg: str) -> float:
    try:
        value = float(arg)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise OptionError(f"checker {spec!r}: the tolerance must be a number >= 0, got {arg!r}")
    return value
