"""Parse schedule strings such as ``"cyclic(amplitude=5, period=600)"`` (what ``--schedule`` passes).

Contract
--------
Grammar::

    schedule := "none" | KIND | KIND "(" [args] ")"
    args     := value {"," value} {"," NAME "=" value} | NAME "=" value {"," NAME "=" value}
    value    := number | -number | NAME | "string" | None | [(int, int), ...]

``KIND`` is one of :data:`KINDS` (case-insensitive). Positional values fill
the kind's parameters in order. The string is read with :mod:`ast` and only
the nodes above are accepted: nothing is evaluated, no names are looked up
(a bare ``NAME`` value is taken as a string, so ``mode=paper`` works).
``parse_schedule(repr(s)) == s`` for every schedule ``s``. :func:`read_call`,
the reader behind it, also reads evaluation methods (``reflect(rounds=2)``).

Non-goals: building processors (``processors.build_processor``).
"""

from __future__ import annotations

import ast
from dataclasses import fields
from typing import Any, Callable

from reflectnb.decoding.schedules import KINDS, Schedule
from reflectnb.errors import OptionError

GRAMMAR = ('schedule := none | KIND | KIND(value, ..., name=value, ...); values are numbers, bare words '
           '(mode=paper), quoted strings, None or window lists like [(0, 8192)]')
EXAMPLES = ('cyclic(amplitude=5, period=600)', 'constant(2)', 'linear(start=2, end=-2, span=500)',
            'cosine(start=2, end=0, span=1000)', 'silver(rho=2, modulus=64)',
            'tip(alpha=3, beta=600, mode=paper)', 'none')
_NONE = ("none", "off", "")
MAX_LENGTH = 400


def _error(text: str, why: str) -> OptionError:
    return OptionError(f"cannot read schedule {text!r}: {why}. Grammar: {GRAMMAR}. "
                       f"Kinds: {', '.join(['none', *KINDS])}. Examples: {'; '.join(EXAMPLES)}")


def parse_schedule(text: str | Schedule | None) -> Schedule | None:
    """A :class:`Schedule` from its string (``None`` for ``"none"``); schedules pass through.

    Examples
    --------
    >>> parse_schedule("cyclic(amplitude=5, period=600)")
    cyclic(amplitude=5, period=600, shift=0.0, windows=[(0, 8192)])
    >>> parse_schedule("none") is None
    True
    """
    if text is None or isinstance(text, Schedule):
        return text
    if not isinstance(text, str):
        raise _error(repr(text), f"expected a string, got {type(text).__name__}")
    if text.strip().lower() in _NONE:
        return None
    if len(text) > MAX_LENGTH:
        raise _error(text[:40] + "...", f"longer than {MAX_LENGTH} characters")
    kind, args, kwargs = read_call(text)
    cls = KINDS.get(kind.lower())
    if cls is None:
        raise _error(text, f"unknown kind {kind!r}")
    bound = _bind(text, cls, args, kwargs)
    try:
        return cls(**bound)
    except OptionError as exc:  # a bad value: name it together with the string it came from
        raise OptionError(f"schedule {text!r}: {exc}") from None


def read_call(text: str, error: Callable[[str], Exception] | None = None) -> tuple[str, list[Any], dict[str, Any]]:
    """``(name, values, {key: value})`` from ``NAME`` or ``NAME(value, ..., key=value, ...)``.

    The one reader of ``name(k=v)`` strings: schedules here, evaluation methods
    (``reflectnb.evaluate.methods``). It reads with :mod:`ast` and evaluates
    nothing; values are literals or bare words (taken as strings). ``error(why)``
    makes the exception to raise (default: the schedule error with the grammar).

    Examples
    --------
    >>> read_call("tip(3, mode=paper)")
    ('tip', [3], {'mode': 'paper'})
    """
    fail = error or (lambda why: _error(text, why))
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise fail(f"syntax error ({exc.msg})") from None
    if isinstance(node, ast.Name):
        return node.id, [], {}
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise fail("expected NAME or NAME(...)" if error else "expected KIND or KIND(...)")
    if any(k.arg is None for k in node.keywords):
        raise fail("'**' is not allowed")
    args = [_literal(fail, a) for a in node.args]
    return node.func.id, args, {k.arg: _literal(fail, k.value) for k in node.keywords if k.arg}


def _literal(fail: Callable[[str], Exception], node: ast.AST) -> Any:
    if isinstance(node, ast.Name):
        return node.id  # bare words are strings: mode=paper
    if isinstance(node, ast.Starred):
        raise fail("'*' is not allowed")
    try:
        return ast.literal_eval(node)  # literals only: numbers, strings, None, lists, tuples
    except ValueError:
        raise fail(f"{ast.unparse(node)!r} is not a literal value") from None


def _bind(text: str, cls: type[Schedule], args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = [f.name for f in fields(cls)]
    if len(args) > len(names):
        raise _error(text, f"{cls.kind} takes at most {len(names)} values ({', '.join(names)}), got {len(args)}")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            raise _error(text, f"{cls.kind} has no argument {key!r} (it takes {', '.join(names)})")
        if key in bound:
            raise _error(text, f"{key!r} given twice")
        bound[key] = value
    return bound
