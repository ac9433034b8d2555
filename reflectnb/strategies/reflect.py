"""Self-Refine: draft, then feedback and refinement until a stop rule fires.

After Madaan et al., "Self-Refine: Iterative Refinement with Self-Feedback"
(NeurIPS 2023). One model plays three roles: it drafts an answer (round 0),
then each round ``k = 1..rounds`` it gives feedback on the current answer and
rewrites it from that feedback. Stop reasons:

``feedback_stop``   the feedback contains the template setting ``stop_marker``
                    (default ``"STOP"``, matched as a whole word, case-sensitive;
                    ``""`` switches it off), or a feedback source other than the
                    model said ``right``. The current answer is kept.
``verifier``        ``stop_fn(answer)`` returned ``True`` (checked on the draft
                    and after every refinement).
``score_threshold`` ``stop_fn(answer)`` returned a number >= ``score_threshold``.
``max_rounds``      ``rounds`` rounds ran.
``interrupted``     Ctrl-C (the partial result is on the exception).

``tone`` colours the feedback (after HEART, Pinto et al. 2025, which varies the
emotional tone of feedback across iterations): a built-in name from
:data:`TONES`, a sentence of your own, or a list of either, cycled per round.

``feedback`` picks where feedback comes from (:mod:`~reflectnb.strategies.feedback`): the
model itself (``"self"``), a calculator, the answer's Python code run in a sandbox, a
checker, or the oracle's right/wrong bit (an upper bound). With another source than
``"self"`` no model call is made for feedback: the source's message is the feedback.

Non-goals: few-shot prompt libraries per task (replace the templates instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from reflectnb.backends.base import Backend
from reflectnb.errors import OptionError
from reflectnb.strategies.diff import DiffOp, diff_html, diff_ops
from reflectnb.strategies.context import RunContext, as_context
from reflectnb.strategies.engine import Call, Engine, choice, positive_int, run_loop
from reflectnb.strategies.feedback import FeedbackFn, make_feedback, run_source, source_label, source_name
from reflectnb.strategies.results import LoopResult
from reflectnb.strategies.templates import TemplateSpec, render, resolve_templates
from reflectnb.trace import Message

TEMPLATES: dict[str, TemplateSpec] = {
    "system": TemplateSpec("", optional=("task",)),
    "draft": TemplateSpec("{task}", required=("task",)),
    "feedback": TemplateSpec(
        "Task:\n{task}\n\nAnswer:\n{draft}\n\nGive short, specific feedback on how to improve this answer. "
        "{tone}If the answer is already good and needs no change, reply with only the word {stop_marker}.",
        required=("draft",), optional=("task", "tone", "stop_marker", "history", "round")),
    "refine": TemplateSpec(
        "Task:\n{task}\n\n{history}Current answer:\n{draft}\n\nFeedback:\n{feedback}\n\n"
        "Rewrite the answer following the feedback. Reply with the improved answer only.",
        required=("draft", "feedback"), optional=("task", "history", "round")),
    "history_item": TemplateSpec("Earlier answer {number}:\n{draft}\nFeedback on it:\n{feedback}\n\n",
                                 required=("draft", "feedback"), optional=("number",)),
}
SETTINGS: dict[str, Any] = {"stop_marker": "STOP"}

TONES: dict[str, str] = {
    "neutral": "",
    "encouraging": "Be warm and encouraging: say what already works, then what to improve. ",
    "strict": "Be strict and demanding: point out every flaw, however small. ",
    "urgent": "This matters a great deal, so be thorough and precise. ",
    "curious": "Ask yourself what could be wrong here, and explore a different approach. ",
}

STOP_REASONS = ("feedback_stop", "verifier", "score_threshold", "max_rounds", "interrupted")


@dataclass
class ReflectResult(LoopResult):
    """Self-Refine result: ``answers[k]`` is the answer after round ``k`` (0 = draft)."""

    answers: list[str] = field(default_factory=list)
    feedbacks: list[str] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    history: str = "full"
    feedback: str = "self"

    @property
    def best_answer(self) -> str:
        """The answer with the highest score (first on ties), else the final answer."""
        scored = [(s, i) for i, s in enumerate(self.scores) if s is not None]
        return self.answers[max(scored, key=lambda si: (si[0], -si[1]))[1]] if scored else self.answer

    def diff(self, k: int | None = None) -> list[DiffOp]:
        """Word operations from ``answers[k-1]`` to ``answers[k]`` (default: the last change)."""
        a, b = self._pair(k)
        return diff_ops(a, b)

    def diff_html(self, k: int | None = None) -> str:
        """:meth:`diff` as escaped HTML (``<del>``/``<ins>``)."""
        a, b = self._pair(k)
        return diff_html(a, b)

    def _pair(self, k: int | None) -> tuple[str, str]:
        k = len(self.answers) - 1 if k is None else k
        if not 1 <= k < len(self.answers):
            raise OptionError(f"no refinement {k!r} to diff: this run has answers 0..{len(self.answers) - 1}")
        return self.answers[k - 1], self.answers[k]

    def summary(self) -> list[tuple[str, str]]:
        source = [("feedback", source_label(self.feedback))] if self.feedback != "self" else []
        return super().summary() + [("answers", str(len(self.answers)))] + source


def reflect(ctx: RunContext | Backend, task: str, *, rounds: int = 3, history: str = "full",
            stop_fn: Callable[[str], bool | float] | None = None, score_threshold: float | None = None,
            templates: Mapping[str, Any] | None = None, tone: str | Sequence[str] | None = None,
            feedback: str | FeedbackFn = "self", checker: Callable[[str], Any] | None = None,
            reference: Any = None) -> ReflectResult:
    """Run Self-Refine on ``task``.

    Parameters
    ----------
    ctx : RunContext or Backend
        The run context (its ``backend`` drafts, gives feedback and refines; its
        params, recorder and callbacks apply), or a bare model.
    task : str
    rounds : int
        Most feedback→refine rounds (each costs two generations).
    history : "full" or "last"
        Whether the refine prompt sees all earlier (answer, feedback) pairs.
    stop_fn : callable, optional
        ``answer -> bool`` (a verifier) or ``answer -> float`` (a score, stopping
        at ``score_threshold``); scores are reported and kept in ``scores``.
    templates : dict, optional
        Replacements for :data:`TEMPLATES` and :data:`SETTINGS` (``stop_marker``).
    tone : str or list of str, optional
        Feedback tone: a name in :data:`TONES` or a sentence; a list is cycled.
    feedback : str or callable
        Where each round's feedback comes from: ``"self"`` (the model), ``"tool:calc"``,
        ``"tool:python"``, ``"checker"``, ``"oracle"`` (an upper bound, needs ``reference``) or
        your own ``(task, answer) -> Feedback``; see :mod:`reflectnb.strategies.feedback`.
        Another source than ``"self"`` replaces the model's feedback call; its message is
        what the model revises from.
    checker : callable, optional
        The verifier for ``feedback="checker"``: ``answer -> bool | score | (bool, message)``.
    reference : optional
        The right answer, for ``feedback="oracle"``.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> model = ScriptedBackend(["Roses are red.", "Add a rhyme.", "Roses are red, violets blue.", "STOP"])
    >>> result = reflect(model, "Write a couplet", rounds=3)
    >>> result.answer, result.stop_reason, len(result.steps)
    ('Roses are red, violets blue.', 'feedback_stop', 4)
    """
    ctx = as_context(ctx)
    positive_int("rounds", rounds)
    choice("history", history, ("full", "last"))
    t = resolve_templates("reflect", TEMPLATES, templates, SETTINGS)
    _check_template_use(t, history, tone)
    if score_threshold is not None and stop_fn is None:
        raise OptionError(f"`score_threshold={score_threshold!r}` needs a `stop_fn` that returns a score")
    tones = _tone_phrases(tone)
    source = make_feedback(feedback, checker=checker, reference=reference, answer=ctx.answer)
    if source is not None and tone:
        raise OptionError(f"tone={tone!r} colours the model's own feedback; it has no effect with "
                          f"feedback={source_name(feedback)!r}")
    result = ReflectResult(strategy="reflect", task=task, history=history, feedback=source_name(feedback))
    engine = Engine(result, ctx)
    loop = _Loop(engine, ctx.backend, task, t, rounds, history, stop_fn, score_threshold, tones, source)
    return run_loop(result, loop.run)


def _check_template_use(t: dict[str, Any], history: str, tone: Any) -> None:
    if history == "full" and "{history}" not in t["refine"]:
        raise OptionError("history='full' needs the placeholder {history} in the 'refine' template; "
                          "add it or use history='last'")
    if tone and "{tone}" not in t["feedback"]:
        raise OptionError(f"tone={tone!r} needs the placeholder {{tone}} in the 'feedback' template")
    if not isinstance(t["stop_marker"], str):
        raise OptionError(f"the 'stop_marker' setting must be a str ('' switches it off), got {t['stop_marker']!r}")


def _tone_phrases(tone: str | Sequence[str] | None) -> list[str]:
    names = [] if tone is None else [tone] if isinstance(tone, str) else list(tone)
    phrases = []
    for name in names:
        if name in TONES:
            phrases.append(TONES[name])
        elif isinstance(name, str) and " " in name.strip():
            phrases.append(name.strip() + " ")
        else:
            raise OptionError(f"unknown tone {name!r}; use one of {sorted(TONES)} or a sentence of your own")
    return phrases or [""]


def feedback_says_stop(feedback: str, marker: str) -> bool:
    """Whether ``marker`` occurs in ``feedback`` as a whole word (case-sensitive)."""
    return bool(marker) and re.search(rf"(?<!\w){re.escape(marker)}(?!\w)", feedback) is not None


class _Loop:
    """The Self-Refine loop over one engine (state lives on ``engine.result``)."""

    def __init__(self, engine: Engine, backend: Backend, task: str, t: dict[str, Any], rounds: int,
                 history: str, stop_fn: Any, threshold: float | None, tones: list[str],
                 source: FeedbackFn | None = None):
        self.e, self.backend, self.task, self.t, self.source = engine, backend, task, t, source
        self.rounds, self.history, self.stop_fn, self.threshold, self.tones = rounds, history, stop_fn, threshold, tones
        self.r: ReflectResult = engine.result

    def run(self) -> None:
        index = self._answer(Call("draft", 0), render(self.t["draft"], task=self.task))
        if self._verified(index):
            return
        for k in range(1, self.rounds + 1):
            self.r.rounds = k
            fb_index = self._feedback(k, index)
            if self.r.stop_reason:
                return
            index = self._answer(Call("refine", k, parent=fb_index), self._refine_prompt(k))
            if self._verified(index):
                return
        self.r.stop_reason = "max_rounds"

    def _messages(self, text: str) -> list[Message]:
        system = render(self.t["system"], task=self.task)
        return ([Message("system", system)] if system else []) + [Message("user", text)]

    def _answer(self, call: Call, prompt: str) -> int:
        gen = self.e.ask(self.backend, self._messages(prompt), call)
        self.r.answers.append(gen.text)
        self.r.answer = gen.text
        return self.e.record(call, gen)

    def _feedback(self, k: int, answer_index: int) -> int:
        if self.source is not None:
            return self._outside_feedback(k, answer_index)
        tone = self.tones[(k - 1) % len(self.tones)]
        prompt = render(self.t["feedback"], task=self.task, draft=self.r.answer, tone=tone, round=k,
                        stop_marker=self.t["stop_marker"], history=self._history_text(k))
        call = Call("feedback", k, parent=answer_index, attributes={"tone": tone.strip()} if tone else {})
        gen = self.e.ask(self.backend, self._messages(prompt), call)
        self.r.feedbacks.append(gen.text)
        stop = feedback_says_stop(gen.text, self.t["stop_marker"])
        if stop:
            self.r.stop_reason = "feedback_stop"
        return self.e.record(call, gen, feedback_source="self", **({"stop_signal": True} if stop else {}))

    def _outside_feedback(self, k: int, answer_index: int) -> int:
        """Feedback from a tool, a checker or the oracle: its message is the feedback; no model call."""
        fb = run_source(self.source, self.task, self.r.answer)
        self.r.feedbacks.append(fb.message)
        stop = fb.verdict == "right"
        if stop:
            self.r.stop_reason = "feedback_stop"
        call = Call("feedback", k, agent=fb.source, parent=answer_index)
        return self.e.record(call, None, text=fb.message, **fb.attributes(), **({"stop_signal": True} if stop else {}))

    def _refine_prompt(self, k: int) -> str:
        return render(self.t["refine"], task=self.task, draft=self.r.answer, feedback=self.r.feedbacks[-1],
                      history=self._history_text(k), round=k)

    def _history_text(self, k: int) -> str:
        if self.history == "last":
            return ""
        pairs = zip(self.r.answers[: k - 1], self.r.feedbacks[: k - 1])
        return "".join(render(self.t["history_item"], draft=a, feedback=f, number=i)
                       for i, (a, f) in enumerate(pairs))

    def _verified(self, index: int) -> bool:
        if self.stop_fn is None:
            return False
        value = self.stop_fn(self.r.answer)
        if isinstance(value, bool):
            self.e.score("verifier", float(value), index, label="pass" if value else "fail")
            self.r.scores.append(None)
            self.r.stop_reason = "verifier" if value else ""
            return value
        if not isinstance(value, (int, float)):
            raise OptionError(f"`stop_fn` must return a bool (verifier) or a number (score), got {value!r}")
        self.e.score("score", float(value), index)
        self.r.scores.append(float(value))
        hit = self.threshold is not None and value >= self.threshold
        self.r.stop_reason = "score_threshold" if hit else ""
        return hit
