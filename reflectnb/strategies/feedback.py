"""Where a loop's feedback comes from: the model itself, a tool, a checker, or the answer key.

Huang et al. (2023, "Large Language Models Cannot Self-Correct Reasoning Yet")
find that a model's own feedback rarely fixes its reasoning; CRITIC (Gou et al.
2023) gets gains from feedback that comes from outside the model. A loop
(``reflect``, ``critique``) takes ``feedback=`` one of :data:`SOURCES`:

``self``         the model gives its own feedback (the loops' original behaviour).
``tool:calc``    a safe calculator (:mod:`~reflectnb.strategies.calc`) checks every ``a op b = c``
                 in the answer: "3 + 4 = 7, not 8". Wrong arithmetic → ``wrong``; all checked → ``right``.
``tool:python``  the answer's ```` ```python ```` blocks run in a child process with time, memory and
                 output limits (:mod:`~reflectnb.strategies.sandbox`); exit code and output are the
                 feedback. A traceback → ``wrong``; a clean run gives no verdict (the output is evidence).
``checker``      the task's verifier: ``checker(answer) -> bool | float | (bool, message)``
                 (a score counts as right at ``>= 1``), e.g. unit tests or a reasoning-gym scorer.
``oracle``       only the ground-truth right/wrong bit, from ``reference`` (the answer key). **An upper
                 bound, not a method**: Huang et al. show that stopping correction with an oracle
                 inflates its gains. Its steps carry ``upper_bound=True`` in the trace.

A source is a function ``(task, answer) -> Feedback``. The loops do not ask the
model for feedback when the source is not ``self``: the source's message *is*
the feedback the model revises from, the way CRITIC hands the tool's output to
the model as evidence for its correction. A source that fails (a tool that
hangs, eats memory or floods output, a checker that raises) returns
``Feedback(failed=True)`` with the reason; the loop goes on.

Non-goals: asking the model to write a critique of the tool's output (CRITIC's
verify step); running untrusted code safely (see the sandbox's docstring).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from reflectnb.errors import OptionError
from reflectnb.strategies.calc import check_text
from reflectnb.strategies.sandbox import Limits, run_python

SOURCES = ("self", "tool:calc", "tool:python", "checker", "oracle")
FeedbackFn = Callable[[str, str], "Feedback"]
AnswerRule = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Feedback:
    """One round's feedback: where it came from, its verdict, the text the model sees.

    ``verdict`` is ``"right"``, ``"wrong"`` or ``None`` (the source does not
    judge); ``failed`` means the source itself broke (a limit, an exception),
    and ``message`` says how.
    """

    source: str
    verdict: str | None
    message: str
    failed: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    def attributes(self) -> dict[str, Any]:
        """What a loop's step records: ``feedback_source``, ``verdict``, ``failed`` (+ ``upper_bound``)."""
        found = {"feedback_source": self.source, "verdict": self.verdict, "failed": self.failed}
        return {**found, "upper_bound": True} if self.source == "oracle" else found


def parse_feedback(spec: Any) -> str:
    """The source name, or an OptionError listing them.

    Examples
    --------
    >>> parse_feedback(" tool:calc ")
    'tool:calc'
    """
    name = spec.strip() if isinstance(spec, str) else spec
    if name not in SOURCES:
        raise OptionError(f"unknown feedback source {spec!r}; use one of {', '.join(SOURCES)}")
    return name


def source_name(spec: str | FeedbackFn) -> str:
    """What a result records as its feedback source: the spec, or a custom function's name."""
    return spec.strip() if isinstance(spec, str) else getattr(spec, "__name__", "custom")


def make_feedback(spec: str | FeedbackFn, *, checker: Callable[[str], Any] | None = None, reference: Any = None,
                  answer: AnswerRule | None = None, limits: Limits | None = None) -> FeedbackFn | None:
    """The feedback function for ``spec`` (``None`` for ``self``: the loop asks the model).

    Parameters
    ----------
    spec : str or callable
        One of :data:`SOURCES`, or a function ``(task, answer) -> Feedback`` of your own.
    checker : callable, optional
        ``answer -> bool | float | (bool, message)``; needed by ``"checker"``; ``"oracle"`` uses its bit.
    reference : optional
        The right answer; needed by ``"oracle"`` (compared with the answer read by ``answer``).
    answer : callable, optional
        How the final answer is read from the text (default: the loops' rule).
    limits : Limits, optional
        The ``tool:python`` limits.

    Examples
    --------
    >>> fb = make_feedback("tool:calc")
    >>> fb("What is 3 + 4?", "3 + 4 = 8").message
    'Calculator check of 1 calculation: 3 + 4 = 7, not 8.'
    """
    if callable(spec):
        return spec  # a source of your own: (task, answer) -> Feedback
    name = parse_feedback(spec)
    if name == "self":
        return None
    if name == "tool:calc":
        return calc_feedback
    if name == "tool:python":
        return lambda task, text: python_feedback(task, text, limits)
    if name == "checker":
        if checker is None or not callable(checker):
            raise OptionError("feedback='checker' needs a verifier: pass checker=fn, where fn(answer) returns "
                              "a bool, a score or (bool, message); an evaluation passes its task set's checker")
        return lambda task, text: checker_feedback(checker, text)
    return _oracle(reference, checker, answer)


def source_label(name: str) -> str:
    """How a result names its source: the oracle says it is an upper bound."""
    return f"{name} (an upper bound)" if name == "oracle" else name


def run_source(source: FeedbackFn, task: str, text: str) -> Feedback:
    """``source(task, text)``; a source that raises or returns something else is a failed feedback."""
    name = source_name(source)
    try:
        fb = source(task, text)
    except Exception as exc:  # a source of the user's own: record why, keep the loop going
        return Feedback(name, None, f"The feedback source failed ({type(exc).__name__}: {exc}).", failed=True,
                        detail={"error": f"{type(exc).__name__}: {exc}"})
    if not isinstance(fb, Feedback):
        return Feedback(name, None, f"The feedback source failed: it returned {fb!r:.80}, not a Feedback.",
                        failed=True)
    return fb


def calc_feedback(task: str, text: str) -> Feedback:
    """``tool:calc``: every calculation in ``text``, checked by the safe evaluator."""
    checks = check_text(text)
    detail = {"checked": [c.describe() for c in checks]}
    if not checks:
        return Feedback("tool:calc", None, "Calculator check: found no calculation to check (write each one "
                        "as, e.g., 3 + 4 = 7).", detail=detail)
    wrong = [c for c in checks if not c.holds]
    shown = wrong or checks
    noun = "calculation" if len(checks) == 1 else "calculations"
    message = f"Calculator check of {len(checks)} {noun}: " + "; ".join(c.describe() for c in shown) + "."
    if not wrong:
        message += " The arithmetic is right."
    return Feedback("tool:calc", "wrong" if wrong else "right", message, detail=detail)


def step_verdicts(steps: list[str]) -> list[tuple[bool | None, str]]:
    """``(correct, explanation)`` per step from the calculator: a false calculation makes a step incorrect."""
    out: list[tuple[bool | None, str]] = []
    for step in steps:
        checks = check_text(step)
        correct = None if not checks else all(c.holds for c in checks)
        out.append((correct, "; ".join(c.describe() for c in checks)))
    return out


_CODE = re.compile(r"```(?:python3?|py)[ \t]*\n(.*?)```", re.S | re.I)
_LIMIT_WORDS = {"time": "the time limit ({:g} s)", "memory": "the memory limit ({:g} MB)",
                "output": "the output limit ({:g} bytes)"}


def python_feedback(task: str, text: str, limits: Limits | None = None) -> Feedback:
    """``tool:python``: the answer's ```` ```python ```` blocks, joined, run under ``limits``."""
    blocks = _CODE.findall(text)
    if not blocks:
        return Feedback("tool:python", None, "Python check: the answer has no ```python code block to run.")
    limits = limits or Limits()
    run = run_python("\n".join(blocks), limits)
    detail = {"returncode": run.returncode, "limit": run.limit, "seconds": round(run.seconds, 3),
              "output_truncated": run.truncated}
    output = run.output.strip() or "(no output)"
    if run.limit is not None:
        bound = {"time": limits.seconds, "memory": limits.memory_bytes / 2**20, "output": limits.output_bytes}
        why = _LIMIT_WORDS[run.limit].format(bound[run.limit])
        return Feedback("tool:python", None, f"Python check failed: the code was stopped at {why}. "
                        f"Output so far:\n{output}", failed=True, detail=detail)
    verdict = None if run.returncode == 0 else "wrong"
    return Feedback("tool:python", verdict, f"Python check: the code exited with code {run.returncode}. "
                    f"Output:\n{output}", detail=detail)


def checker_feedback(checker: Callable[[str], Any], text: str) -> Feedback:
    """``checker``: the verifier's verdict and message; a verifier that raises is a failed feedback."""
    try:
        value = checker(text)
    except Exception as exc:  # a user's verifier: record why, keep the loop going
        return Feedback("checker", None, f"The checker failed ({type(exc).__name__}: {exc}).", failed=True,
                        detail={"error": f"{type(exc).__name__}: {exc}"})
    try:
        right, note = read_verdict(value)
    except TypeError as exc:
        return Feedback("checker", None, f"The checker failed ({exc}).", failed=True, detail={"error": str(exc)})
    verdict = "right" if right else "wrong"
    return Feedback("checker", verdict, f"The checker says the answer is {verdict}" + (f": {note}" if note else "."),
                    detail={"value": value if isinstance(value, (bool, int, float)) else note})


def read_verdict(value: Any) -> tuple[bool, str]:
    """``(right, message)`` from a verifier's return: a bool, a score (right at ``>= 1``) or ``(bool, message)``."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
        return value[0], str(value[1])
    if isinstance(value, bool):
        return value, ""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value >= 1, "" if value >= 1 or value <= 0 else f"partial score {value:g}"
    raise TypeError(f"it returned {value!r:.80}; a checker returns a bool, a score or (bool, message)")


def _oracle(reference: Any, checker: Callable[[str], Any] | None, answer: AnswerRule | None) -> FeedbackFn:
    if reference is None or isinstance(reference, str) and not reference.strip():
        raise OptionError("feedback='oracle' needs the answer key: pass reference=<the right answer> "
                          "(--reference in a magic; an evaluation passes each item's answer); this task has none")
    from reflectnb.strategies.voting import LOOP_RULE, extract_answer, normalize

    def oracle(task: str, text: str) -> Feedback:
        found = answer(text) if answer is not None else extract_answer(text, LOOP_RULE)
        if checker is not None:
            judged = checker_feedback(checker, text)
            if judged.failed:
                return Feedback("oracle", None, judged.message, failed=True, detail=judged.detail)
            right = judged.verdict == "right"
        else:
            right = found is not None and normalize(found) == normalize(str(reference))
        verdict = "right" if right else "wrong"
        return Feedback("oracle", verdict, f"The answer is {verdict}.", detail={"answer": found})

    return oracle


def item_checker(checker: Callable[[str, Any], Any], item: Any, answer: AnswerRule) -> Callable[[str], Any]:
    """An evaluation checker (``checker(predicted, item) -> score``) as a loop verifier on the full text.

    The answer is read with ``answer`` first; a text with no answer is wrong
    ("no final answer found"), as an evaluation counts it.
    """
    def verify(text: str) -> tuple[bool, str]:
        predicted = answer(text)
        if predicted is None:
            return False, "no final answer found (end with a line 'The answer is ...')"
        right, note = read_verdict(checker(predicted, item))
        return right, note or f"the final answer read was {predicted!r}"

    return verify
