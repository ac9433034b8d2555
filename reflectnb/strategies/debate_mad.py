"""MAD: an affirmative and a negative debater, a moderator, and a judge if needed.

After Liang et al., "Encouraging Divergent Thinking in Large Language Models
through Multi-Agent Debate" (EMNLP 2024; repo ``Skytliang/Multi-Agents-Debate``).
Each role is a chat agent with its own memory. Round 1: the affirmative answers
the topic, the negative disagrees with it, the moderator returns JSON
(``{"Whether there is a preference", "Supported Side", "Reason",
"debate_answer"}``). Later rounds: each debater answers the other's latest
argument. *Adaptive break*: the debate ends as soon as the moderator has a
preference or a non-empty ``debate_answer`` (``stop_reason="moderator_decided"``).
After ``max_rounds`` without a decision a fresh judge lists the candidates and
then picks one as JSON (``stop_reason="judge"``). The repo gives the judge the
moderator's system prompt; here it has its own (``judge_system``, same idea,
naming the role so scripts and traces can tell them apart). The repo shows the judge the
debaters' *first-round* arguments; ``judge_sees="first"`` reproduces that, the
default ``"last"`` shows the latest ones.

Moderator/judge JSON is repaired when possible (step attribute
``json_repaired``) or read as "no preference" (``json_error``); see
:mod:`~reflectnb.strategies.moderator_json`.

Non-goals: the machine-translation variant's prompts (replace the templates).
"""

from __future__ import annotations

from typing import Any, Mapping

from reflectnb.backends.base import Backend
from reflectnb.errors import OptionError
from reflectnb.strategies.context import RunContext, as_context
from reflectnb.strategies.engine import Call, Engine, check_backend, choice, positive_int, run_loop
from reflectnb.strategies.moderator_json import Verdict, parse_verdict
from reflectnb.strategies.results import DebateResult
from reflectnb.strategies.templates import TemplateSpec, render, resolve_templates
from reflectnb.trace import Message

ROLES = ("affirmative", "negative", "moderator", "judge")
_JSON_FORMAT = ('{{"Whether there is a preference": "Yes or No", "Supported Side": "Affirmative or Negative", '
                '"Reason": "...", "debate_answer": "..."}}')
TEMPLATES: dict[str, TemplateSpec] = {
    "debater_system": TemplateSpec(
        "You are a debater. Welcome to the debate. You do not have to agree with the other side, because "
        "our goal is to find the correct answer.\nThe debate topic is:\n{topic}", required=("topic",)),
    "moderator_system": TemplateSpec(
        "You are a moderator. Two debaters will argue about this topic:\n{topic}\nAt the end of each round "
        "you evaluate both sides' answers and decide which is correct.", required=("topic",)),
    "judge_system": TemplateSpec(
        "You are a judge. Two debaters argued about this topic:\n{topic}\nYou read both sides and decide "
        "the final answer.", required=("topic",)),
    "affirmative_opening": TemplateSpec("{topic}", required=("topic",)),
    "negative_opening": TemplateSpec(
        "{affirmative}\n\nYou disagree with my answer. Give your own answer and your reasons.",
        required=("affirmative",), optional=("topic",)),
    "rebuttal": TemplateSpec(
        "{opponent}\n\nDo you agree with my perspective? Give your reasons and your answer.",
        required=("opponent",), optional=("topic", "round", "ordinal")),
    "moderator_round": TemplateSpec(
        "Now the {ordinal} round of the debate has ended.\n\nAffirmative side:\n{affirmative}\n\n"
        "Negative side:\n{negative}\n\nAs the moderator, decide whether one side is clearly right. If so, "
        "give your reason and the final answer, and the debate ends. If not, the debate continues. Reply "
        "in JSON only, in this format: " + _JSON_FORMAT,
        required=("affirmative", "negative"), optional=("topic", "ordinal", "round")),
    "judge_candidates": TemplateSpec(
        "Affirmative side:\n{affirmative}\n\nNegative side:\n{negative}\n\nWhat answer candidates do we "
        "have? List them without reasons.", required=("affirmative", "negative"), optional=("topic",)),
    "judge_final": TemplateSpec(
        "Therefore, for the topic: {topic}\nGive your reason and the final answer you think is correct. "
        'Reply in JSON only, in this format: {{"Reason": "...", "debate_answer": "..."}}',
        required=("topic",)),
}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
STOP_REASONS = ("moderator_decided", "judge", "interrupted")


def debate_mad(ctx: RunContext | Backend, topic: str, *, roles: Backend | Mapping[str, Backend] | None = None,
               max_rounds: int = 3, judge_sees: str = "last",
               templates: Mapping[str, Any] | None = None) -> DebateResult:
    """Run a MAD debate on ``topic``.

    Parameters
    ----------
    ctx : RunContext or Backend
        The run context (params, recorder, live callbacks), or a bare model.
    topic : str
    roles : Backend or dict, optional
        One backend for every role, or ``{"affirmative": …, "negative": …,
        "moderator": …, "judge": …}`` (``judge`` defaults to the moderator's).
        Default: the context's backend for every role.
    max_rounds : int
        Most debate rounds before the judge is called (MAD default 3).
    judge_sees : "last" or "first"
        Which round's arguments the judge reads ("first" is the repo's behaviour).
    templates : dict, optional
        Replacements for :data:`TEMPLATES`.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> model = ScriptedBackend({"moderator": '{"Whether there is a preference": "Yes", "debate_answer": "4"}',
    ...                          "": ["It is 4.", "It is 5."]})
    >>> result = debate_mad(model, "What is 2+2?")
    >>> result.answer, result.stop_reason, len(model.calls)
    ('4', 'moderator_decided', 3)
    """
    ctx = as_context(ctx)
    roles = _roles(ctx.backend if roles is None else roles)
    positive_int("max_rounds", max_rounds)
    choice("judge_sees", judge_sees, ("last", "first"))
    t = resolve_templates("debate_mad", TEMPLATES, templates)
    result = DebateResult(strategy="debate", method="mad", task=topic, agents=list(ROLES[:3]))
    engine = Engine(result, ctx)
    return run_loop(result, _Loop(engine, roles, topic, t, max_rounds, judge_sees).run)


def _roles(given: Backend | Mapping[str, Backend]) -> dict[str, Backend]:
    if not isinstance(given, Mapping):
        backend = check_backend("roles", given)
        return {role: backend for role in ROLES}
    unknown = sorted(set(given) - set(ROLES))
    if unknown:
        raise OptionError(f"unknown MAD role {unknown[0]!r}; roles are {list(ROLES)}")
    missing = [r for r in ROLES[:3] if r not in given]
    if missing:
        raise OptionError(f"MAD needs a backend for the role {missing[0]!r} (roles: {list(ROLES)}; "
                          "'judge' defaults to the moderator's)")
    roles = {r: check_backend(f"roles[{r!r}]", b) for r, b in given.items()}
    roles.setdefault("judge", roles["moderator"])
    return roles


class _Loop:
    def __init__(self, engine: Engine, roles: dict[str, Backend], topic: str, t: dict[str, Any],
                 max_rounds: int, judge_sees: str):
        self.e, self.roles, self.topic, self.t = engine, roles, topic, t
        self.max_rounds, self.judge_sees = max_rounds, judge_sees
        self.r: DebateResult = engine.result
        debater = Message("system", render(t["debater_system"], topic=topic))
        self.memory = {"affirmative": [debater], "negative": [debater],
                       "moderator": [Message("system", render(t["moderator_system"], topic=topic))]}
        self.said: dict[str, list[tuple[str, int]]] = {"affirmative": [], "negative": []}

    def run(self) -> None:
        for k in range(self.max_rounds):
            self.r.rounds = k + 1
            self._debate_round(k)
            verdict = self._moderate(k)
            if verdict.decided:
                side = verdict.supported_side.lower()
                fallback = self.said[side][-1][0] if side in self.said and self.said[side] else ""
                self.r.answer = verdict.answer or fallback
                self.r.stop_reason = "moderator_decided"
                return
        self._judge()

    def _debate_round(self, k: int) -> None:
        if k == 0:
            aff_prompt = render(self.t["affirmative_opening"], topic=self.topic)
        else:
            aff_prompt = self._rebuttal(self.said["negative"][-1][0], k)
        aff_text, aff_index = self._speak("affirmative", aff_prompt, k, self._last_index("negative"))
        if k == 0:
            neg_prompt = render(self.t["negative_opening"], affirmative=aff_text, topic=self.topic)
        else:
            neg_prompt = self._rebuttal(aff_text, k)
        self._speak("negative", neg_prompt, k, aff_index)

    def _rebuttal(self, opponent: str, k: int) -> str:
        return render(self.t["rebuttal"], opponent=opponent, topic=self.topic, round=k + 1, ordinal=_ordinal(k))

    def _last_index(self, role: str) -> int | None:
        return self.said[role][-1][1] if self.said[role] else None

    def _speak(self, role: str, prompt: str, k: int, parent: int | None) -> tuple[str, int]:
        self.memory[role].append(Message("user", prompt))
        call = Call("argument", k, agent=role, parent=parent)
        gen = self.e.ask(self.roles[role], list(self.memory[role]), call)
        self.memory[role].append(Message("assistant", gen.text, name=role))
        index = self.e.record(call, gen)
        self.said[role].append((gen.text, index))
        return gen.text, index

    def _moderate(self, k: int) -> Verdict:
        prompt = render(self.t["moderator_round"], ordinal=_ordinal(k), round=k + 1, topic=self.topic,
                        affirmative=self.said["affirmative"][-1][0], negative=self.said["negative"][-1][0])
        self.memory["moderator"].append(Message("user", prompt))
        call = Call("moderator", k, agent="moderator", parent=self._last_index("negative"))
        gen = self.e.ask(self.roles["moderator"], list(self.memory["moderator"]), call)
        self.memory["moderator"].append(Message("assistant", gen.text, name="moderator"))
        verdict = parse_verdict(gen.text)
        self.r.verdicts.append(verdict.to_dict())
        self.e.record(call, gen, verdict=verdict.to_dict(), **verdict.attributes)
        return verdict

    def _judge(self) -> None:
        pick = 0 if self.judge_sees == "first" else -1
        aff, neg = self.said["affirmative"][pick][0], self.said["negative"][pick][0]
        memory = [Message("system", render(self.t["judge_system"], topic=self.topic)),
                  Message("user", render(self.t["judge_candidates"], affirmative=aff, negative=neg, topic=self.topic))]
        k = self.max_rounds
        first = Call("judge", k, agent="judge", parent=self._last_index("negative"), attributes={"turn": "candidates"})
        gen = self.e.ask(self.roles["judge"], memory, first)
        index = self.e.record(first, gen)
        memory += [Message("assistant", gen.text, name="judge"),
                   Message("user", render(self.t["judge_final"], topic=self.topic))]
        final = Call("judge", k, agent="judge", parent=index, attributes={"turn": "final"})
        gen = self.e.ask(self.roles["judge"], memory, final)
        verdict = parse_verdict(gen.text)
        self.r.judge = {"Reason": verdict.reason, "debate_answer": verdict.answer}
        self.e.record(final, gen, verdict=self.r.judge, **verdict.attributes)
        self.r.answer = verdict.answer or gen.text.strip()
        self.r.stop_reason = "judge"


def _ordinal(k: int) -> str:
    return ORDINALS[k] if k < len(ORDINALS) else f"{k + 1}th"
