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

Non-goals: training critics; answer checking (pass your own verifier to
``reflect`` for that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.strategies.critique_parse import Critique, StepVerdict, parse_critique, split_steps
from reflectnb.strategies.engine import Call, Engine, Turn, check_backend, choice, positive_int, run_loop
from reflectnb.strategies.results import LoopResult
from reflectnb.strategies.templates import TemplateSpec, render, resolve_templates
from reflectnb.trace import Message, Recorder, TokenEvent

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
        return super().summary() + [("last critique", marks or "-")]


def critique(actor: Backend, task: str, *, critic: Backend | None = None, rounds: int = 1,
             refine_policy: str = "always", templates: Mapping[str, Any] | None = None,
             params: GenerationParams | None = None, recorder: Recorder | None = None,
             on_token: Callable[[TokenEvent], None] | None = None,
             on_turn: Callable[[Turn], None] | None = None) -> CritiqueResult:
    """Answer step by step, critique each step, revise; ``rounds`` times.

    Parameters
    ----------
    actor : Backend
        Writes and revises the solution.
    task : str
    critic : Backend, optional
        Judges the steps (default: the actor judges itself).
    rounds : int
        Critique→revise rounds; each judges the latest answer.
    refine_policy : "always" or "if_wrong"
    templates : dict, optional
        Replacements for :data:`TEMPLATES` (``answer``, ``critic``, ``revise``, ``system``).
    params, recorder, on_token, on_turn :
        Generation settings, where steps are reported, live callbacks.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> model = ScriptedBackend(["2+2=5\\nThe answer is 5", "Step 1: incorrect - 2+2=4\\nStep 2: incorrect",
    ...                          "2+2=4\\nThe answer is 4"])
    >>> result = critique(model, "What is 2+2?")
    >>> result.answer, result.critiques[0].first_wrong_step, len(model.calls)
    ('2+2=4\\nThe answer is 4', 0, 3)
    """
    check_backend("actor", actor)
    critic = check_backend("critic", critic) if critic is not None else actor
    positive_int("rounds", rounds)
    choice("refine_policy", refine_policy, ("always", "if_wrong"))
    t = resolve_templates("critique", TEMPLATES, templates)
    result = CritiqueResult(strategy="critique", task=task, refine_policy=refine_policy)
    engine = Engine(result, recorder, params, on_token, on_turn)
    return run_loop(result, _Loop(engine, actor, critic, task, t, rounds, refine_policy).run)


class _Loop:
    def __init__(self, engine: Engine, actor: Backend, critic: Backend, task: str, t: dict[str, Any],
                 rounds: int, policy: str):
        self.e, self.actor, self.critic, self.task, self.t = engine, actor, critic, task, t
        self.rounds, self.policy = rounds, policy
        self.r: CritiqueResult = engine.result

    def run(self) -> None:
        index = self._act(Call("answer", 0, agent="actor"), self._opening())
        for k in range(1, self.rounds + 1):
            self.r.rounds = k
            crit_index, parsed = self._critique(k, index)
            if self.policy == "if_wrong" and not parsed.found_error:
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

    def _critique(self, k: int, answer_index: int) -> tuple[int, Critique]:
        steps = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(split_steps(self.r.answer)))
        prompt = render(self.t["critic"], task=self.task, steps=steps, solution=self.r.answer, round=k)
        call = Call("critique", k, agent="critic", parent=answer_index)
        gen = self.e.ask(self.critic, [Message("user", prompt)], call)
        parsed = parse_critique(gen.text, self.r.answer)
        self.r.critiques.append(parsed)
        index = self.e.record(call, gen, verdicts=[v.to_dict() for v in parsed.steps],
                              final_correct=parsed.final_correct, first_wrong_step=parsed.first_wrong_step)
        self._scores(parsed, index)
        return index, parsed

    def _scores(self, parsed: Critique, index: int) -> None:
        for v in parsed.steps:
            label = {True: "correct", False: "incorrect", None: "no verdict"}[v.correct]
            value = None if v.correct is None else float(v.correct)
            self.e.score("step_correct", value, index, label=f"step {v.number}: {label}", explanation=v.explanation)
        final = None if parsed.final_correct is None else float(parsed.final_correct)
        self.e.score("final_correct", final, index, explanation=parsed.final_explanation)


def _number(index: int | None) -> str:
    return "none" if index is None else str(index + 1)
