"""Step-level critique and revision (actor–critic).

After Xi et al., "Enhancing LLM Reasoning via Critique Models with Test-Time
and Training-Time Supervision" (AutoMathCritique / MathCritique, 2024). The
actor answers one step per line; the critic judges each step ("Step 2:
incorrect — …") and the final answer; the critique is parsed into
:class:`~reflectnb.strategies.critique_parse.StepVerdict` values; the actor
revises in a multi-turn chat (question, its answer, the critique). With
``rounds > 1`` the next critique judges the latest revision (the paper's
sequential mode).

``refine_policy="always"`` revises after every critique (the paper's realistic
setting); ``"if_wrong"`` revises only when the critic found an error, and stops
with ``stop_reason="critic_approved"`` otherwise. Other stop reasons:
``max_rounds``, ``interrupted``.

``feedback`` replaces the critic with a tool, a checker or the oracle
(:mod:`~reflectnb.strategies.feedback`): its message is the critique, its verdict the
final verdict, and the calculator also judges each step.

Non-goals: training critics; checking answers itself (``feedback="checker"`` brings
your verifier).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from reflectnb.backends.base import Backend
from reflectnb.errors import OptionError
from reflectnb.strategies.critique_parse import Critique, StepVerdict, parse_critique, split_steps
from reflectnb.strategies.context import RunContext, as_context
from reflectnb.strategies.engine import Call, Engine, check_backend, choice, positive_int, run_loop
from reflectnb.strategies.feedback import (FeedbackFn, make_feedback, run_source, source_label, source_name,
                                           step_verdicts)
from reflectnb.strategies.results import LoopResult
from reflectnb.strategies.templates import TemplateSpec, render, resolve_templates
from reflectnb.trace import Message

TEMPLATES: dict[str, TemplateSpec] = {
    "system": TemplateSpec("", optional=("task",)),
    "answer": TemplateSpec(
        "{task}\n\nSolve this step by step. Write one step per line and end with a line "
        "'The answer is ...'.", required=("task",)),
    "critic": TemplateSpec(
        "Check this solution one step at a time.\n\nQuestion:\n{task}\n\nSolution:\n{steps}\n\n"
        "For every step write one line 'Step N: correct' or 'Step N: incorrect', then ' - ' and a short "
        "reason. End with one line 'Final answer: correct' or 'Final answer: incorrect', then ' - ' and "
        "a short reason.", required=("task", "steps"), optional=("solution", "round")),
    "revise": TemplateSpec(
        "I made a step-by-step critique of your solution:\n\n{critique}\n\nRead it, then write a corrected "
        "solution, one step per line, ending with a line 'The answer is ...'.",
        required=("critique",), optional=("task", "solution", "first_wrong_step", "round")),
}

STOP_REASONS = ("critic_approved", "max_rounds", "interrupted")


@dataclass
class CritiqueResult(LoopResult):
    """Critique-and-revise result: ``answers[k]`` after round ``k`` (0 = first answer)."""

    answers: list[str] = field(default_factory=list)
    critiques: list[Critique] = field(default_factory=list)
    refine_policy: str = "always"
    feedback: str = "self"

    @property
    def verdicts(self) -> list[StepVerdict]:
        """The step verdicts of the last critique."""
        return self.critiques[-1].steps if self.critiques else []

    @property
    def first_wrong_step(self) -> int | None:
        """Index (from 0) of the first wrong step in the last critique."""
        return self.critiques[-1].first_wrong_step if self.critiques else None

    def summary(self) -> list[tuple[str, str]]:
        marks = " ".join({True: "✓", False: "✗", None: "?"}[v.correct] for v in self.verdicts)
        source = [("feedback", source_label(self.feedback))] if self.feedback != "self" else []
        return super().summary() + [("last critique", marks or "-")] + source


def critique(ctx: RunContext | Backend, task: str, *, critic: Backend | None = None, rounds: int = 1,
             refine_policy: str = "always", templates: Mapping[str, Any] | None = None,
             feedback: str | FeedbackFn = "self", checker: Callable[[str], Any] | None = None,
             reference: Any = None) -> CritiqueResult:
    """Answer step by step, critique each step, revise; ``rounds`` times.

    Parameters
    ----------
    ctx : RunContext or Backend
        The run context (its ``backend`` is the actor, which writes and revises the
        solution; its params, recorder and callbacks apply), or a bare model.
    task : str
    critic : Backend, optional
        Judges the steps (default: ``ctx.model("critic")``, which is the actor
        unless the context names a critic).
    rounds : int
        Critique→revise rounds; each judges the latest answer.
    refine_policy : "always" or "if_wrong"
    templates : dict, optional
        Replacements for :data:`TEMPLATES` (``answer``, ``critic``, ``revise``, ``system``).
    feedback : str or callable
        Where each round's critique comes from: ``"self"`` (the model), ``"tool:calc"``,
        ``"tool:python"``, ``"checker"``, ``"oracle"`` (an upper bound, needs ``reference``) or
        your own ``(task, answer) -> Feedback``; see :mod:`reflectnb.strategies.feedback`.
        Another source than ``"self"`` replaces the critic; its message is
        what the model revises from.
    checker : callable, optional
        The verifier for ``feedback="checker"``: ``answer -> bool | score | (bool, message)``.
    reference : optional
        The right answer, for ``feedback="oracle"``.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> model = ScriptedBackend(["2+2=5\\nThe answer is 5", "Step 1: incorrect - 2+2=4\\nStep 2: incorrect",
    ...                          "2+2=4\\nThe answer is 4"])
    >>> result = critique(model, "What is 2+2?")
    >>> result.answer, result.critiques[0].first_wrong_step, len(model.calls)
    ('2+2=4\\nThe answer is 4', 0, 3)
    """
    ctx = as_context(ctx)
    source = make_feedback(feedback, checker=checker, reference=reference, answer=ctx.answer)
    if source is not None and critic is not None:
        raise OptionError(f"`critic` is not asked when feedback={source_name(feedback)!r}; leave it out")
    critic = check_backend("critic", ctx.model("critic") if critic is None else critic)
    positive_int("rounds", rounds)
    choice("refine_policy", refine_policy, ("always", "if_wrong"))
    t = resolve_templates("critique", TEMPLATES, templates)
    result = CritiqueResult(strategy="critique", task=task, refine_policy=refine_policy,
                            feedback=source_name(feedback))
    engine = Engine(result, ctx)
    return run_loop(result, _Loop(engine, ctx.backend, critic, task, t, rounds, refine_policy, source).run)


class _Loop:
    def __init__(self, engine: Engine, actor: Backend, critic: Backend, task: str, t: dict[str, Any],
                 rounds: int, policy: str, source: FeedbackFn | None = None):
        self.e, self.actor, self.critic, self.task, self.t = engine, actor, critic, task, t
        self.source = source
        self.rounds, self.policy = rounds, policy
        self.r: CritiqueResult = engine.result

    def run(self) -> None:
        index = self._act(Call("answer", 0, agent="actor"), self._opening())
        for k in range(1, self.rounds + 1):
            self.r.rounds = k
            crit_index, parsed, failed = self._critique(k, index)
            if self.policy == "if_wrong" and not parsed.found_error and not failed:
                self.r.stop_reason = "critic_approved"
                return
            index = self._act(Call("revise", k, agent="actor", parent=crit_index), self._revision(parsed, k))
        self.r.stop_reason = "max_rounds"

    def _opening(self) -> list[Message]:
        system = render(self.t["system"], task=self.task)
        return ([Message("system", system)] if system else []) + \
            [Message("user", render(self.t["answer"], task=self.task))]

    def _revision(self, parsed: Critique, k: int) -> list[Message]:
        ask = render(self.t["revise"], critique=parsed.text, task=self.task, solution=self.r.answer,
                     first_wrong_step=_number(parsed.first_wrong_step), round=k)
        return self._opening() + [Message("assistant", self.r.answer), Message("user", ask)]

    def _act(self, call: Call, messages: list[Message]) -> int:
        gen = self.e.ask(self.actor, messages, call)
        self.r.answers.append(gen.text)
        self.r.answer = gen.text
        return self.e.record(call, gen)

    def _critique(self, k: int, answer_index: int) -> tuple[int, Critique, bool]:
        """The critique of the latest answer, its step index, and whether its source failed."""
        if self.source is not None:
            return self._outside_critique(k, answer_index)
        steps = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(split_steps(self.r.answer)))
        prompt = render(self.t["critic"], task=self.task, steps=steps, solution=self.r.answer, round=k)
        call = Call("critique", k, agent="critic", parent=answer_index)
        gen = self.e.ask(self.critic, [Message("user", prompt)], call)
        parsed = parse_critique(gen.text, self.r.answer)
        self.r.critiques.append(parsed)
        index = self.e.record(call, gen, verdicts=[v.to_dict() for v in parsed.steps],
                              final_correct=parsed.final_correct, first_wrong_step=parsed.first_wrong_step,
                              feedback_source="self")
        self._scores(parsed, index)
        return index, parsed, False

    def _outside_critique(self, k: int, answer_index: int) -> tuple[int, Critique, bool]:
        """A critique from a tool, a checker or the oracle; the calculator also judges each step."""
        fb = run_source(self.source, self.task, self.r.answer)
        steps = split_steps(self.r.answer)
        judged = step_verdicts(steps) if fb.source == "tool:calc" else []
        verdicts = [StepVerdict(i, s, ok, why) for i, (s, (ok, why)) in enumerate(zip(steps, judged))]
        parsed = Critique(fb.message, verdicts, final_correct={"right": True, "wrong": False}.get(fb.verdict or ""),
                          final_explanation=fb.message)
        self.r.critiques.append(parsed)
        call = Call("critique", k, agent=fb.source, parent=answer_index)
        index = self.e.record(call, None, text=fb.message, verdicts=[v.to_dict() for v in parsed.steps],
                              final_correct=parsed.final_correct, first_wrong_step=parsed.first_wrong_step,
                              **fb.attributes())
        self._scores(parsed, index)
        return index, parsed, fb.failed

    def _scores(self, parsed: Critique, index: int) -> None:
        for v in parsed.steps:
            label = {True: "correct", False: "incorrect", None: "no verdict"}[v.correct]
            value = None if v.correct is None else float(v.correct)
            self.e.score("step_correct", value, index, label=f"step {v.number}: {label}", explanation=v.explanation)
        final = None if parsed.final_correct is None else float(parsed.final_correct)
        self.e.score("final_correct", final, index, explanation=parsed.final_explanation)


def _number(index: int | None) -> str:
    return "none" if index is None else str(index + 1)
