"""Final answers out of free text, and the majority vote over them: the one answer reader.

Every place that reads an answer out of a model's reply uses :func:`extract_answer`
(debate votes, tree self-consistency and task answers, evaluation scores), so a
vote and a score never read two answers out of the same text.

Extraction
----------
:func:`extract_answer` returns the answer as a string, or ``None`` when the
text commits to nothing (it does not vote; an evaluation counts it as
*unparsed*, never drops it). The ``"auto"`` rule tries, in this order, and
takes the **last** match of the first rule that matches anywhere in the text:

1. ``tag``          ``<answer>X</answer>`` (reasoning-gym's format)
2. ``boxed``        ``\\boxed{X}`` (one level of nested braces, e.g. ``\\boxed{\\frac{1}{2}}``)
3. ``final_answer`` ``Final Answer: X`` / ``final answer is X`` (case-insensitive)
4. ``answer_is``    ``the answer is X`` / ``Answer: X`` (case-insensitive)
5. ``last_number``  the last number (``-3``, ``1,000``, ``2.5``, ``3/4``)

For rules 3 and 4, ``X`` runs to the end of its sentence (a period followed
by a space) or line, so ``"The answer is 7. Because 3+4=7"`` gives ``7`` and
``3.5`` stays whole; rule 5 keeps a fraction whole (``"x = 3/4"`` gives
``3/4``). ``last_line`` (the last non-empty line) is available by name but is
not part of ``"auto"``: with it nothing would ever be unparsed. The loops
(debate votes, tree answers) read with :data:`LOOP_RULE`,
``"auto_or_last_line"``: ``"auto"``, else the last non-empty line, so a
free-form debate or tree still shows what was said; evaluations use ``"auto"``.

An extracted answer is cleaned (:func:`clean`): surrounding spaces, ``**`` /
``*`` emphasis, backticks, ``$`` math delimiters, quotes and trailing
punctuation (``. ! , ; :``) are removed. An answer that is empty after
cleaning counts as no answer. :data:`RULES_VERSION` changes whenever a
built-in rule does, so evaluations scored the old way are not resumed.

Voting
------
:func:`normalize` makes "5", "5.0" and " 5. " vote together. :func:`majority`
counts votes; **ties go to the answer that reached the top count first in
agent order** (the first agent's answer among the tied ones), which is what
Du et al.'s ``most_frequent`` does.

Non-goals: symbolic equivalence of math expressions (a checker's job), LLM-based extraction.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Sequence

from reflectnb.errors import OptionError

Extractor = Callable[[str], "str | None"]
RULES_VERSION = 2  # 2: one reader for votes and scores; trailing "!,;:" cleaned

_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_END = r"(.+?)\s*(?:\.\s|$)"  # to the end of the sentence (". ") or of the line; "3.5" stays whole
_FINAL = re.compile(r"final\s+answer\s*(?:is\s*)?[:=]?\s*" + _END, re.I)
_ANSWER_IS = re.compile(r"(?:\bthe\s+answer\s+is\b|\banswer\s*[:=])\s*[:=]?\s*" + _END, re.I)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+)?")
_TRAILING = ".!,;:"


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
_IN_TURN = {"auto": AUTO_ORDER, "auto_or_last_line": (*AUTO_ORDER, "last_line")}  # first rule with an answer wins
LOOP_RULE = "auto_or_last_line"


def clean(answer: str) -> str:
    """Strip spaces, emphasis, backticks, ``$``, quotes and trailing punctuation.

    Examples
    --------
    >>> clean(" **$42$**. "), clean("**Paris**!"), clean("7.```")
    ('42', 'Paris', '7')
    """
    text = answer.strip()
    for _ in range(3):
        text = text.strip().strip("*").strip("$").strip("`").strip("\"'").strip()
        text = text[:-1] if text.endswith(tuple(_TRAILING)) else text
    return text.strip()


def extract_answer(text: str | None, rule: str | Extractor = "auto") -> str | None:
    """The answer ``text`` commits to under ``rule`` (``None`` if none).

    Parameters
    ----------
    text : str
        A model's reply.
    rule : str or callable
        ``"auto"`` or ``"auto_or_last_line"`` (see the module docstring), one
        of :data:`RULES`, or a function ``text -> str | None`` of your own.

    Examples
    --------
    >>> extract_answer("The answer is 7. Because 3+4=7"), extract_answer("x = 3/4")
    ('7', '3/4')
    >>> extract_answer("I think \\\\boxed{12}. Final Answer: 13")
    '12'
    >>> extract_answer("no idea") is None
    True
    """
    if text is None:
        return None
    if isinstance(rule, str) and rule in _IN_TURN:
        return _in_turn(_IN_TURN[rule], text)
    return _cleaned(resolve_rule(rule)(text))


def _in_turn(names: Sequence[str], text: str) -> str | None:
    for name in names:
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
    if rule in _IN_TURN:
        return lambda text: _in_turn(_IN_TURN[rule], text)
    if rule in RULES:
        return RULES[rule]
    raise OptionError(f"unknown answer extraction rule {rule!r}; use 'auto', 'auto_or_last_line', one of "
                      f"{sorted(RULES)}, or a function text -> answer")


def normalize(answer: str) -> str:
    """A comparison key: case-folded, spaces squeezed, numbers canonical.

    Examples
    --------
    >>> normalize(" 5.0 "), normalize("1,000"), normalize("Paris.")
    ('5', '1000', 'paris')
    """
    key = " ".join(answer.split()).strip().rstrip(".").casefold()
    number = key.replace(",", "")
    if re.fullmatch(r"-?\d+(?:\.\d+)?", number):
        value = float(number)
        return str(int(value)) if value.is_integer() else repr(value)
    return key


def majority(answers: Sequence[str | None]) -> tuple[str | None, dict[str, int]]:
    """``(winner, votes)``; ``None`` answers do not vote; ties go to the first agent's answer.

    ``votes`` maps each answer as first written to its count, in agent order.

    Examples
    --------
    >>> majority(["5", "7", "5.0"])
    ('5', {'5': 2, '7': 1})
    >>> majority(["7", "5"])[0]
    '7'
    """
    counts: Counter[str] = Counter()
    first_form: dict[str, str] = {}
    for answer in answers:
        if answer is None or not answer.strip():
            continue
        key = normalize(answer)
        first_form.setdefault(key, answer.strip())
        counts[key] += 1
    if not counts:
        return None, {}
    top = max(counts.values())
    winner = next(key for key in first_form if counts[key] == top)
    return first_form[winner], {first_form[k]: counts[k] for k in first_form}
