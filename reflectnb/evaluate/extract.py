"""Answer extraction: the short answer a model's free text commits to.

Contract
--------
:func:`extract` returns the answer as a string, or ``None`` when the text
commits to nothing (an *unparsed* item: counted and shown by the evaluation,
never dropped). The ``"auto"`` rule tries, in this order, and takes the **last**
match of the first rule that matches anywhere in the text:

1. ``tag``          ``<answer>X</answer>`` (reasoning-gym's format)
2. ``boxed``        ``\\boxed{X}`` (one level of nested braces, e.g. ``\\boxed{\\frac{1}{2}}``)
3. ``final_answer`` ``Final Answer: X`` / ``final answer is X`` (case-insensitive)
4. ``answer_is``    ``the answer is X`` / ``Answer: X`` (case-insensitive)
5. ``last_number``  the last number (``-3``, ``1,000``, ``2.5``, ``3/4``)

For rules 3 and 4, ``X`` runs to the end of its sentence (a period followed
by a space) or line, so ``"The answer is 7. Because …"`` gives ``7`` and
``3.5`` stays whole. ``last_line`` (the last non-empty line) is available by name but is not part
of ``"auto"``: with it nothing would ever be unparsed.

An extracted answer is cleaned: surrounding spaces, ``**`` / ``*`` emphasis,
``$`` math delimiters, quotes and one trailing period are removed. An answer
that is empty after cleaning counts as no answer.

Non-goals: symbolic equivalence (the checker's job), LLM-based extraction.
"""

from __future__ import annotations

import re
from typing import Callable

from reflectnb.errors import OptionError

Extractor = Callable[[str], "str | None"]

_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_END = r"(.+?)\s*(?:\.\s|$)"  # to the end of the sentence (". ") or of the line; "3.5" stays whole
_FINAL = re.compile(r"final\s+answer\s*(?:is\s*)?[:=]?\s*" + _END, re.I)
_ANSWER_IS = re.compile(r"(?:\bthe\s+answer\s+is\b|\banswer\s*[:=])\s*[:=]?\s*" + _END, re.I)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+)?")


def _last(pattern: re.Pattern[str], text: str, per_line: bool = False) -> str | None:
    if per_line:
        found = [m.group(1) for line in text.splitlines() if (m := pattern.search(line))]
    else:
        found = pattern.findall(text)
    return found[-1] if found else None


def _last_line(text: str) -> str | None:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


RULES: dict[str, Extractor] = {
    "tag": lambda text: _last(_TAG, text),
    "boxed": lambda text: _last(_BOXED, text),
    "final_answer": lambda text: _last(_FINAL, text, per_line=True),
    "answer_is": lambda text: _last(_ANSWER_IS, text, per_line=True),
    "last_number": lambda text: _last(_NUMBER, text),
    "last_line": _last_line,
}
AUTO_ORDER = ("tag", "boxed", "final_answer", "answer_is", "last_number")


def clean(answer: str) -> str:
    """Strip spaces, emphasis, ``$``, quotes and one trailing period.

    Examples
    --------
    >>> clean(" **$42$**. ")
    '42'
    """
    text = answer.strip()
    for _ in range(3):
        text = text.strip().strip("*").strip("$").strip("`").strip("\"'").strip()
        text = text[:-1] if text.endswith(".") else text
    return text.strip()


def extract(text: str | None, rule: str | Extractor = "auto") -> str | None:
    """The answer ``text`` commits to under ``rule`` (``None`` if none).

    Parameters
    ----------
    text : str
        A model's reply.
    rule : str or callable
        ``"auto"`` (see the module docstring), one of :data:`RULES`, or a
        function ``text -> str | None`` of your own.

    Examples
    --------
    >>> extract("3 + 4 = 7, so the answer is 7.")
    '7'
    >>> extract("I think \\\\boxed{12}. Final Answer: 13")
    '12'
    >>> extract("no idea") is None
    True
    """
    if text is None:
        return None
    function = resolve_rule(rule)
    if rule == "auto":
        return _auto(text)
    found = function(text)
    return _cleaned(found)


def _auto(text: str) -> str | None:
    for name in AUTO_ORDER:
        found = _cleaned(RULES[name](text))
        if found is not None:
            return found
    return None


def _cleaned(found: str | None) -> str | None:
    if found is None:
        return None
    cleaned = clean(str(found))
    return cleaned or None


def resolve_rule(rule: str | Extractor) -> Extractor:
    """The extraction function for ``rule``; an OptionError lists the known names."""
    if callable(rule):
        return rule
    if rule == "auto":
        return _auto
    if rule in RULES:
        return RULES[rule]
    raise OptionError(f"unknown answer extraction rule {rule!r}; use 'auto', one of {sorted(RULES)}, "
                      "or a function text -> answer")
