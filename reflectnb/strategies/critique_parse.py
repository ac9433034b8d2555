"""Reading a critic's step-by-step verdicts out of free text, tolerantly.

The critic is asked for lines like ``Step 2: incorrect — 3 × 4 is 12, not 14``
and a last ``Final answer: incorrect — …``. Real critics (and small models)
write ``**Step 2** - Wrong.``, ``2) correct``, ``Step two: ...``, markdown,
or the MathCritique layout (the step repeated, then ``Correctness of the step:
Correct|Wrong`` and ``Explanation: …``). :func:`parse_critique` accepts all of
these; a step the critic never mentions gets ``correct=None``.

Verdict words: *incorrect, wrong, not correct, invalid, error, mistake,
flawed, false, ✗* are negative; *correct, right, valid, true, accurate, no
error, ✓* are positive; the earliest one in the step's text decides.

Non-goals: judging steps ourselves; parsing answers (see ``voting``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_NUM = r"(\d+|" + "|".join(_WORDS) + r")"
_HEADER = re.compile(rf"^(?:step|line)\s*#?\s*{_NUM}\b\s*[:.)\]\-–—]*\s*(.*)$", re.I)
_NUMBERED = re.compile(r"^[(\[]?(\d+)[.):\]]\s+(.*)$")
_FINAL = re.compile(r"^(?:the\s+)?(?:final\s+(?:answer|verdict|judg[e]?ment)|overall(?:\s+verdict)?|verdict|"
                    r"conclusion|correctness of the final answer)\s*(?:is\s*)?[:\-–—]?\s*(.*)$", re.I)
_MC_STEP = re.compile(r"^correctness of the step\s*[:\-–—]?\s*(.*)$", re.I)
_NEG = re.compile(r"\b(?:incorrect|wrong|not\s+(?:correct|right|valid)|invalid|erroneous|errors?|mistakes?|"
                  r"flawed|false)\b|[✗✘❌]", re.I)
_POS = re.compile(r"\b(?:no\s+(?:errors?|mistakes?)|correct|right|valid|true|accurate)\b|[✓✔✅]", re.I)
_LEAD = " \t.:;,-–—=>*"
_PREFIX = re.compile(r"^(?:let'?s break it down step by step:?|solution:)\s*$", re.I)


@dataclass
class StepVerdict:
    """The critic's verdict on one step; ``index`` counts from 0 (``number`` from 1)."""

    index: int
    step_text: str
    correct: bool | None
    explanation: str = ""

    @property
    def number(self) -> int:
        return self.index + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Critique:
    """A parsed critique: per-step verdicts plus the verdict on the final answer."""

    text: str
    steps: list[StepVerdict] = field(default_factory=list)
    final_correct: bool | None = None
    final_explanation: str = ""

    @property
    def first_wrong_step(self) -> int | None:
        """Index (from 0) of the first step judged incorrect, or ``None``."""
        return next((v.index for v in self.steps if v.correct is False), None)

    @property
    def found_error(self) -> bool:
        """Whether any step or the final answer was judged incorrect."""
        return self.first_wrong_step is not None or self.final_correct is False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "first_wrong_step": self.first_wrong_step}


def split_steps(solution: str) -> list[str]:
    """The actor's steps: its non-empty lines, minus a "Let's break it down" preamble."""
    lines = [line.strip() for line in solution.splitlines() if line.strip()]
    return lines[1:] if lines and _PREFIX.match(lines[0]) else lines


def verdict(text: str) -> tuple[bool | None, str]:
    """``(correct, explanation)`` from a step's text: the earliest verdict word decides.

    Examples
    --------
    >>> verdict("Incorrect — 3 x 4 is 12.")
    (False, '3 x 4 is 12.')
    >>> verdict("The step is right.")
    (True, 'The step is right.')
    >>> verdict("this looks fine")
    (None, 'this looks fine')
    """
    found = [(m.start(), m.end(), ok) for ok, rx in ((False, _NEG), (True, _POS)) if (m := rx.search(text))]
    if not found:
        return None, text.strip()
    start, end, ok = min(found)
    if text[:start].strip(_LEAD):  # the verdict sits inside a sentence: keep the sentence
        return ok, text.strip()
    return ok, text[end:].lstrip(_LEAD).rstrip()


def parse_critique(text: str, solution: str = "") -> Critique:
    """Parse a critic's output against the actor's ``solution``.

    Examples
    --------
    >>> c = parse_critique("Step 1: correct\\nStep 2: wrong - 2+2=4\\nFinal answer: incorrect", "a\\nb\\nc")
    >>> [v.correct for v in c.steps], c.first_wrong_step, c.final_correct
    ([True, False, None], 1, False)
    """
    lines = [_clean(line) for line in text.splitlines()]
    blocks, final = _blocks([line for line in lines if line])
    steps = split_steps(solution)
    critique = Critique(text=text)
    if final is not None:
        critique.final_correct, critique.final_explanation = verdict(final)
    count = max([len(steps), *(n for n in blocks)]) if blocks or steps else 0
    for i in range(count):
        body = blocks.get(i + 1)
        ok, why = verdict(body) if body is not None else (None, "")
        critique.steps.append(StepVerdict(i, steps[i] if i < len(steps) else "", ok, why))
    return critique


def _clean(line: str) -> str:
    line = re.sub(r"[*_`]+", "", line).strip()
    return re.sub(r"^(?:#+|[-•>]\s+)\s*", "", line).strip()


def _blocks(lines: list[str]) -> tuple[dict[int, str], str | None]:
    """Step number -> its text, and the final-verdict text (``None`` if absent)."""
    if any(_MC_STEP.match(line) for line in lines):
        return _mathcritique_blocks(lines)
    header = _HEADER if any(_HEADER.match(line) for line in lines) else _NUMBERED
    blocks: dict[int, list[str]] = {}
    final: list[str] | None = None
    current: list[str] | None = None
    for line in lines:
        if (m := _FINAL.match(line)) and not _HEADER.match(line):
            final = current = [m.group(1)]
        elif m := header.match(line):
            number = _number(m.group(1))
            current = blocks.setdefault(number, []) if number not in blocks else []
            current.append(m.group(2))
        elif current is not None:
            current.append(line)
    return {n: " ".join(b).strip() for n, b in blocks.items()}, None if final is None else " ".join(final)


def _mathcritique_blocks(lines: list[str]) -> tuple[dict[int, str], str | None]:
    blocks: dict[int, str] = {}
    final: str | None = None
    for i, line in enumerate(lines):
        m_final, m_step = _FINAL.match(line), _MC_STEP.match(line)
        if not (m_final or m_step):
            continue
        verdict_text = (m_final or m_step).group(1)
        follow = lines[i + 1] if i + 1 < len(lines) else ""
        if follow.lower().startswith("explanation"):
            verdict_text += " — " + follow.split(":", 1)[-1].strip()
        if m_final:
            final = verdict_text
        else:
            blocks[len(blocks) + 1] = verdict_text
    return blocks, final


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _WORDS[word.lower()]
