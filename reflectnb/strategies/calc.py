"""A safe arithmetic evaluator, and the calculations written in a model's answer.

:func:`evaluate` reads one expression with :mod:`ast` and computes it itself:
numbers, ``+ - * / // % **``, parentheses and unary ``+``/``-``; nothing else
(no names, calls, attributes, comparisons or strings), so ``eval`` is never
used and nothing can be imported or called. Limits keep a hostile or silly
expression cheap: at most :data:`MAX_LENGTH` characters, integers of at most
:data:`MAX_BITS` bits (``2 ** 10 ** 9`` is refused before it is computed),
and float overflow is an error, not ``inf``.

:func:`find_calculations` finds ``left = right`` claims in free text
("3 + 4 = 8", "12 × 3 = 36", "1,000 / 8 = 125.", a chain "2 + 3 = 5 = 10 / 2")
where at least one side has an operator. ``×·`` read as ``*``, ``÷`` as ``/``,
``−–`` as ``-``, ``^`` as ``**`` and ``x`` between two numbers as ``*``;
thousands commas and ``$`` are dropped. A side next to a letter ("2x + 3 = 7")
is algebra, not arithmetic, and is skipped; so is anything that does not
parse. :func:`check_text` evaluates each claim: a claimed number matches when
it equals the value rounded to as many decimals as the claim writes
("10 / 3 = 3.33" holds).

Non-goals: algebra, units, percentages ("20%" is skipped), words ("three plus four").
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 200
MAX_BITS = 4096

_OPS: dict[type, Any] = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                         ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
                         ast.Pow: operator.pow}
_UNARY: dict[type, Any] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class CalcError(ValueError):
    """An expression the evaluator refuses or cannot compute (the message says why)."""


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression, computed without ``eval``.

    Examples
    --------
    >>> evaluate("3 + 4 * (2 - 5) ** 2")
    39
    >>> evaluate("__import__('os')")
    Traceback (most recent call last):
    ...
    reflectnb.strategies.calc.CalcError: only numbers and + - * / // % ** are allowed, not Call
    """
    if len(expression) > MAX_LENGTH:
        raise CalcError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise CalcError(f"not an arithmetic expression: {expression.strip()!r}") from None
    return _value(tree.body)


def _value(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            return _bounded(_OPS[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalcError("division by zero") from None
        except OverflowError:
            raise CalcError("the result is too large") from None
    raise CalcError(f"only numbers and + - * / // % ** are allowed, not {type(node).__name__}")


def _check_power(base: int | float, exponent: int | float) -> None:
    """Refuse a power whose result would pass the size limit, before computing it."""
    if abs(exponent) > MAX_BITS:
        raise CalcError(f"exponent {exponent:g} is too large (at most {MAX_BITS})")
    if isinstance(base, int) and isinstance(exponent, int) and base.bit_length() * exponent > MAX_BITS:
        raise CalcError(f"the result would have more than {MAX_BITS} bits")
    if isinstance(exponent, float) and base < 0:
        raise CalcError("a negative number to a fractional power is not a real number")


def _bounded(value: Any) -> int | float:
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise CalcError(f"the result would have more than {MAX_BITS} bits")
    if isinstance(value, complex) or isinstance(value, float) and not math.isfinite(value):
        raise CalcError("the result is not a finite real number")
    return value


@dataclass(frozen=True)
class Check:
    """One claim ``left = right`` from the text, with what the evaluator found."""

    left: str
    right: str
    value: int | float
    claimed: int | float
    holds: bool
    line: int

    def describe(self) -> str:
        """``"3 + 4 = 7, not 8"`` or ``"2 * 5 = 10 (correct)"``."""
        if self.holds:
            return f"{self.left} = {self.right} (correct)"
        shown = self.left if _has_operator(self.left) else self.right
        return f"{shown} = {format_number(self.value)}, not {format_number(self.claimed)}"


def format_number(value: int | float) -> str:
    """``7``, ``3.5``, ``3.333333333`` (ten significant digits; whole floats without ``.0``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}" if isinstance(value, float) else str(value)


_RUN = re.compile(r"[0-9.,+\-*/×÷·^%()$ \t−–=]+")
_TIMES_X = re.compile(r"(?<=\d)\s*[xX]\s*(?=[\d(])")
_SEPARATOR = re.compile(r",(?!\d{3}(?!\d))|;")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBERING = re.compile(r"^\s*\d+[.)]\s+")
_OPERATOR = re.compile(r"\d\s*(?:\*\*|//|[-+*/%])\s*[-+(]*\s*[\d.]")


def _has_operator(side: str) -> bool:
    return _OPERATOR.search(side) is not None


def _normal(side: str) -> str:
    side = side.translate(str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-", "$": None}))
    side = _THOUSANDS.sub("", side.replace("^", "**"))
    return _balance(_NUMBERING.sub("", side).strip().rstrip(".,").strip())


def _continues(before: str, run: str, first: str) -> bool:
    """Whether the run's first side is the tail of something with letters in it ("x - 3 * 2")."""
    if not re.search(r"\w$", before.rstrip()):
        return False
    return not run[0].isspace() or first[:1] in "+-*/%"


def _balance(side: str) -> str:
    """Drop parentheses opened before or closed after the claim ("(3 + 4 = 7)")."""
    while side.startswith("(") and side.count("(") > side.count(")"):
        side = side[1:].strip()
    while side.endswith(")") and side.count(")") > side.count("("):
        side = side[:-1].strip()
    return side


def find_calculations(text: str) -> list[tuple[str, str, int]]:
    """``(left, right, line)`` for each ``left = right`` claim with an operator on one side (see module doc)."""
    found = []
    for number, line in enumerate(text.splitlines()):
        line = _SEPARATOR.sub(" | ", _TIMES_X.sub(" * ", line))
        for match in _RUN.finditer(line):
            sides = [_normal(s) for s in match.group().split("=")]
            if _continues(line[: match.start()], match.group(), sides[0]):  # "2x + 3 = 7" is algebra
                sides[0] = ""
            if re.match(r"\w", line[match.end():]) and not match.group()[-1].isspace():
                sides[-1] = ""
            found += [(a, b, number) for a, b in zip(sides, sides[1:])
                      if a and b and (_has_operator(a) or _has_operator(b))]
    return found


def check_text(text: str) -> list[Check]:
    """Every calculation in ``text`` that both sides of can be evaluated, checked."""
    checks = []
    for left, right, line in find_calculations(text):
        try:
            value, claimed = evaluate(left), evaluate(right)
        except CalcError:
            continue
        checks.append(Check(left, right, value, claimed, _matches(value, claimed, right), line))
    return checks


def _matches(value: int | float, claimed: int | float, right: str) -> bool:
    """Equal, or equal once rounded to the decimals the claim writes ("10 / 3 = 3.33")."""
    if math.isclose(value, claimed, rel_tol=1e-9, abs_tol=1e-12):
        return True
    decimals = re.fullmatch(r"-?\d+\.(\d+)", right.strip())
    return bool(decimals) and round(value, len(decimals.group(1))) == claimed
