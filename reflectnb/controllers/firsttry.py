"""First-Try early stopping (Kang et al. 2025, "First Try Matters", arXiv 2510.08308; REFERENCE §7).

Sourced: candidate answers are found per thinking *line* (split on ``\\n``,
numbered, numbering stops at ``</think>``); reflection is everything after the
first candidate; transitions between consecutive candidates are confirmatory
(T→T, F→F same answer) or corrective (F→T); early stopping cuts generation
after the k-th candidate (k = 1 for questions where reflection has low value,
e.g. k = 3 otherwise) and forces the end of thinking plus the answer.

**Reconstructed.** The paper's candidate detector (CAD) is a trained model and
its question classifier (QRC) is not public; here :func:`find_candidate` is a
regular-expression detector (``\\boxed{X}``, ``Final Answer: X``, ``answer
is X``, a line ending in ``= <number>``), and k is a parameter. The regex
counts intermediate ``= 12`` lines too, which the LLM extractor would skip.

Non-goals: the QRC classifier; grading against gold beyond exact string match.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from reflectnb.controllers.base import Controller, check_int, check_str
from reflectnb.controllers.loop import Decoder

_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?"
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("boxed", re.compile(r"\\boxed\{([^{}]+)\}")),
    ("final_answer", re.compile(r"final answer\s*(?:is)?\s*[:=]?\s*\**\s*([^\s*]+)", re.I)),
    ("answer_is", re.compile(r"\banswer\s+is\s*:?\s*\**\s*\$?([^\s$*]+)", re.I)),
    ("equals", re.compile(r"=\s*(" + _NUMBER + r")\s*\$*\s*[.!]?\s*$")),
)


def find_candidate(line: str) -> tuple[str, str] | None:
    """The candidate answer a line states, as ``(pattern name, answer)``, or None.

    Examples
    --------
    >>> find_candidate("So the answer is 42.")
    ('answer_is', '42')
    >>> find_candidate("Thus 6 * 7 = 42")
    ('equals', '42')
    >>> find_candidate("Let x be the number of sheep.") is None
    True
    """
    for name, pattern in PATTERNS:
        match = pattern.search(line)
        if match:
            return name, match.group(1).rstrip(".,;:!").replace("$", "") or match.group(1)
    return None


def number_lines(text: str, end_think: str | None = "</think>") -> list[tuple[int, str]]:
    """Thinking lines numbered from 1: the text before ``end_think`` split on ``\\n``.

    Examples
    --------
    >>> number_lines("a\\nb</think>answer")
    [(1, 'a'), (2, 'b')]
    """
    if end_think and end_think in text:
        text = text[: text.index(end_think)]
    return list(enumerate(text.split("\n"), start=1))


def label_candidates(candidates: Sequence[tuple[int, str]], gold: str) -> dict[str, Any]:
    """Label candidates T/F against ``gold`` and name the transitions between consecutive ones.

    Examples
    --------
    >>> out = label_candidates([(12, "15"), (27, "15"), (40, "16")], "16")
    >>> out["labels"], [t["kind"] for t in out["transitions"]]
    (['F', 'F', 'T'], ['confirmatory', 'corrective'])
    """
    labels = ["T" if answer.strip() == gold.strip() else "F" for _, answer in candidates]
    transitions = [_transition(a, b, la, lb) for a, b, la, lb in
                   zip(candidates, candidates[1:], labels, labels[1:])]
    return {"labels": labels, "transitions": transitions,
            "first_correct": bool(labels) and labels[0] == "T", "final_correct": bool(labels) and labels[-1] == "T",
            "reflection_after_line": candidates[0][0] if candidates else None}


def _transition(a, b, la: str, lb: str) -> dict[str, Any]:
    if la == "F" and lb == "F":
        pattern = "F→F(same)" if a[1].strip() == b[1].strip() else "F→F(different)"
    else:
        pattern = f"{la}→{lb}"
    kinds = {"T→T": "confirmatory", "F→F(same)": "confirmatory", "F→T": "corrective"}
    return {"from_line": a[0], "to_line": b[0], "pattern": pattern, "kind": kinds.get(pattern, pattern)}


class FirstTryEarlyStop(Controller):
    """Stop generating at the end of the line holding the k-th candidate answer.

    Parameters
    ----------
    k : int  candidates to allow (1: stop at the first answer).
    end_think : str or None
        Ends thinking: lines after it are not checked, and it is forced after an
        early stop (R1-style models: ``"</think>\\n\\n"``); None for models with no thinking tokens.
    answer_prefix : str  forced after ``end_think`` on an early stop (e.g. ``"Final Answer:"``).
    max_answer : int  tokens allowed after the forced end (0: stop right at the cut).
    detector : callable ``line -> (name, answer) | None`` (default :func:`find_candidate`).

    Examples
    --------
    >>> gen = FirstTryEarlyStop(k=1).run(backend, "What is 6*7?")        # doctest: +SKIP
    >>> gen.params["early_stop"]["candidates"]                            # doctest: +SKIP
    [[1, 'answer_is', '42']]
    """

    name = "first_try"

    def __init__(self, k: int = 1, end_think: str | None = None, answer_prefix: str = "", max_answer: int = 0,
                 detector: Callable[[str], tuple[str, str] | None] = find_candidate):
        self.k = check_int("k", k, 1)
        self.end_think = check_str("end_think", end_think, allow_none=True)
        self.answer_prefix = check_str("answer_prefix", answer_prefix, allow_empty=True)
        self.max_answer = check_int("max_answer", max_answer, 0)
        self.detector = detector

    def settings(self) -> dict[str, Any]:
        return {"k": self.k, "end_think": self.end_think, "answer_prefix": self.answer_prefix,
                "max_answer": self.max_answer, "detector": getattr(self.detector, "__name__", "detector")}

    def control(self, dec: Decoder) -> tuple[str, dict[str, Any]]:
        state = _LineWatch(self.detector, self.k, self.end_think)
        reason = dec.generate(dec.room, until=state.check)
        state.finish(dec.text)
        stopped = reason == "until"
        info = {"stopped": stopped, "candidates": state.candidates, "lines_checked": state.line}
        if stopped:
            dec.note("early_stop", line=state.line, candidates=len(state.candidates))
            info["position"] = len(dec.ids)
            if self.end_think or self.answer_prefix:
                dec.force((self.end_think or "") + self.answer_prefix, "forced:end_think")
            reason = dec.generate(self.max_answer) if self.max_answer else "stop"
        return ("stop" if reason in ("stop", "until") else "length"), {"early_stop": info}


class _LineWatch:
    """Checks each completed line of the growing text; says stop at the k-th candidate."""

    def __init__(self, detector, k: int, end_think: str | None):
        self.detector, self.k, self.end_think = detector, k, end_think
        self.line, self.offset, self.closed = 0, 0, False
        self.candidates: list[list[Any]] = []

    def check(self, dec: Decoder) -> bool:
        if self.closed:
            return False
        text = dec.text
        end = text.find(self.end_think, self.offset) if self.end_think else -1
        while "\n" in text[self.offset: end if end >= 0 else len(text)]:
            newline = text.index("\n", self.offset)
            self._line(text[self.offset:newline])
            self.offset = newline + 1
            if len(self.candidates) >= self.k:
                return True
        if end >= 0:  # thinking is over: later lines are the answer, not candidates
            self._close(text[self.offset:end])
        return False

    def finish(self, text: str) -> None:
        """Check the last, unterminated line (the run ended without a newline)."""
        if not self.closed and len(self.candidates) < self.k and text[self.offset:].strip():
            self._close(text[self.offset:])

    def _close(self, rest: str) -> None:
        self._line(rest)
        self.closed = True

    def _line(self, line: str) -> None:
        self.line += 1
        found = self.detector(line)
        if found:
            self.candidates.append([self.line, found[0], found[1]])
