"""Final answers out of free text, and the majority vote over them.

:func:`extract_answer` reads the answer an agent commits to: the last
``\\boxed{…}``, else the last ``Answer: …`` / ``The answer is …``, else the
last number, else the last non-empty line. :func:`normalize` makes "5", "5.0"
and " 5. " vote together. :func:`majority` counts votes; **ties go to the
answer that reached the top count first in agent order** (the first agent's
answer among the tied ones), which is what Du et al.'s ``most_frequent`` does.

Non-goals: symbolic equivalence of math expressions.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_STATED = re.compile(r"(?:final answer\s*(?:is)?|the answer is|\banswer\s*[:=])\s*[:=]?\s*(.+)", re.I)
_TRIM = re.compile(r"^[\s`*\"']+|[\s`*\"'.,;:!]+$")  # markdown and punctuation around a stated answer
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_answer(text: str) -> str | None:
    """The answer ``text`` commits to, or ``None`` for an empty text.

    Examples
    --------
    >>> extract_answer("So 3+4 = 7.\\nThe answer is \\\\boxed{7}.")
    '7'
    >>> extract_answer("The answer is **7**.```")
    '7'
    >>> extract_answer("I think it's 12, maybe 13")
    '13'
    """
    if (boxed := _BOXED.findall(text)):
        return boxed[-1].strip()
    stated = [m.group(1) for line in text.splitlines() if (m := _STATED.search(line))]
    if stated:
        return _TRIM.sub("", stated[-1])
    if (numbers := _NUMBER.findall(text)):
        return numbers[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


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
