"""Multiagent debate after Du et al., "Improving Factuality and Reasoning in
Language Models through Multiagent Debate" (ICML 2024; repo
``composable-models/llm_multiagent_debate``).

N agents answer the question independently (round 0). In each later round,
every agent reads the *other* agents' answers from the previous round ("One
agent solution: ```…```") and gives an updated answer; updates are synchronous,
so an agent never sees a same-round answer. ``rounds`` counts all rounds,
the first answer included, so every agent's chat history has ``2 * rounds``
messages. With one agent the update prompt becomes a self-check.

The agents of one round that share a backend are generated **as one batch**
(one ``generate`` call) when the backend ``can_batch``. The final answer is the
majority vote over each agent's last answer (``answer_fn``, default the run
context's ``answer`` rule, :func:`~reflectnb.strategies.voting.extract_answer` with ``LOOP_RULE``
unless the caller set another; ties go to the first agent's answer), or a judge's pick (``aggregator="judge"``).

Non-goals: summarising answers when there are many agents (the paper mentions
it; the repo does not do it).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from reflectnb.backends.base import Backend
from reflectnb.errors import OptionError
from reflectnb.strategies.context import RunContext, as_context
from reflectnb.strategies.engine import Call, Engine, check_backend, choice, positive_int, run_loop
from reflectnb.strategies.results import DebateResult
from reflectnb.strategies.templates import TemplateSpec, render, resolve_templates
from reflectnb.strategies.voting import majority, normalize
from reflectnb.trace import Message

_END = "End with a line 'The answer is ...'."
TEMPLATES: dict[str, TemplateSpec] = {
    "question": TemplateSpec("{question}\n\nExplain your reasoning briefly. " + _END, required=("question",)),
    "other_answer": TemplateSpec("One agent solution: ```{answer}```", required=("answer",), optional=("agent",)),
    "debate": TemplateSpec(
        "These are the solutions to the problem from other agents:\n\n{others}\n\nUsing the reasoning from "
        "other agents as additional advice, can you give an updated answer? Examine your solution and the "
        "other agents' solutions step by step. The original problem is:\n{question}\n" + _END,
        required=("others",), optional=("question", "round")),
    "self_reflect": TemplateSpec(
        "Can you double check that your answer is correct? The original problem is:\n{question}\n" + _END,
        optional=("question", "round")),
    "judge": TemplateSpec(
        "Question:\n{question}\n\nSeveral agents debated it. Their final answers:\n\n{answers}\n\n"
        "Which answer is correct? " + _END, required=("answers",), optional=("question",)),
}
STOP_REASONS = ("max_rounds", "interrupted")


def debate_du(ctx: RunContext | Backend, question: str, *,
              models: Backend | Sequence[Backend] | Mapping[str, Backend] | None = None,
              n_agents: int | None = None, rounds: int = 2, aggregator: str = "majority",
              answer_fn: Callable[[str], str | None] | None = None, judge: Backend | None = None,
              templates: Mapping[str, Any] | None = None) -> DebateResult:
    """Run a Du et al. debate: ``n_agents`` agents, ``rounds`` rounds, then aggregate.

    Parameters
    ----------
    ctx : RunContext or Backend
        The run context (params, recorder, live callbacks, answer rule), or a bare model.
    question : str
    models : Backend, list of Backend, or dict name -> Backend, optional
        One backend for all agents, one per agent, or named agents (default:
        ``ctx.model("agents")``, i.e. the context's backend for every agent).
    n_agents : int, optional
        Default 3 for a single backend, else one agent per backend given.
    rounds : int
        All rounds including the first answer (Du default 2).
    aggregator : "majority" or "judge"
    answer_fn : callable, optional
        ``text -> answer or None``: what an agent's reply commits to (default
        ``ctx.answer``: the answer sentence, a boxed answer, a number, else the last line).
    judge : Backend, optional
        The judge for ``aggregator="judge"`` (default: the first agent's backend).
    templates : dict, optional
        Replacements for :data:`TEMPLATES`.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> model = ScriptedBackend(["The answer is 4", "The answer is 5", "The answer is 4"] * 2)
    >>> result = debate_du(model, "2+2?", n_agents=3, rounds=2)
    >>> result.answer, result.votes, [len(c.prompts) for c in model.calls]
    ('4', {'4': 2, '5': 1}, [3, 3])
    """
    ctx = as_context(ctx)
    agents = _agents(ctx.model("agents") if models is None else models, n_agents)
    positive_int("rounds", rounds)
    choice("aggregator", aggregator, ("majority", "judge"))
    judge = check_backend("judge", judge) if judge is not None else next(iter(agents.values()))
    t = resolve_templates("debate_du", TEMPLATES, templates)
    result = DebateResult(strategy="debate", method="du", task=question, agents=list(agents),
                          aggregator=aggregator)
    engine = Engine(result, ctx)
    loop = _Loop(engine, agents, question, t, rounds, aggregator, answer_fn or ctx.answer, judge)
    return run_loop(result, loop.run)


def _agents(backends: Any, n_agents: int | None) -> dict[str, Backend]:
    if n_agents is not None:
        positive_int("n_agents", n_agents)
    if isinstance(backends, Mapping):
        pool, names = list(backends.values()), [str(k) for k in backends]
    elif isinstance(backends, Backend):
        pool, names = [backends] * (n_agents or 3), None
    else:
        pool, names = list(backends), None
        if len(pool) == 1:
            pool = pool * (n_agents or 3)
    if not pool:
        raise OptionError("debate_du needs at least one backend")
    if n_agents is not None and n_agents != len(pool):
        raise OptionError(f"`n_agents={n_agents}` does not match the {len(pool)} backends given; "
                          "give one backend per agent, or one backend for all")
    names = names or [f"agent {i + 1}" for i in range(len(pool))]
    return {name: check_backend(f"backend of {name!r}", b) for name, b in zip(names, pool)}


class _Loop:
    def __init__(self, engine: Engine, agents: dict[str, Backend], question: str, t: dict[str, Any],
                 rounds: int, aggregator: str, answer_fn: Callable[[str], str | None], judge: Backend):
        self.e, self.agents, self.question, self.t = engine, agents, question, t
        self.rounds, self.aggregator, self.answer_fn, self.judge = rounds, aggregator, answer_fn, judge
        self.r: DebateResult = engine.result
        self.history = {name: [Message("user", render(t["question"], question=question))] for name in agents}
        self.last: dict[str, tuple[str, int]] = {}

    def run(self) -> None:
        for k in range(self.rounds):
            self.r.rounds = k + 1
            if k > 0:
                for name in self.agents:
                    self.history[name].append(Message("user", self._update_prompt(name, k)))
            self._round(k)
        self._aggregate()
        self.r.stop_reason = "max_rounds"

    def _update_prompt(self, name: str, k: int) -> str:
        others = [(other, text) for other, (text, _) in self.last.items() if other != name]
        if not others:
            return render(self.t["self_reflect"], question=self.question, round=k)
        joined = "\n\n".join(render(self.t["other_answer"], answer=text, agent=o) for o, text in others)
        return render(self.t["debate"], others=joined, question=self.question, round=k)

    def _round(self, k: int) -> None:
        answered: dict[str, tuple[str, int]] = {}
        for backend, names in _by_backend(self.agents).items():
            batches = [names] if backend.can_batch else [[n] for n in names]
            for batch in batches:
                answered.update(self._generate(backend, batch, k))
        self.last = {name: answered[name] for name in self.agents}

    def _generate(self, backend: Backend, names: list[str], k: int) -> dict[str, tuple[str, int]]:
        calls = [self._call(name, k) for name in names]
        gens = self.e.generate(backend, [list(self.history[n]) for n in names], calls)
        out = {}
        for name, call, gen in zip(names, calls, gens):
            self.history[name].append(Message("assistant", gen.text, name=name))
            out[name] = (gen.text, self.e.record(call, gen, parsed_answer=self.answer_fn(gen.text)))
        return out

    def _call(self, name: str, k: int) -> Call:
        if k == 0:
            return Call("answer", 0, agent=name)
        saw = [index for other, (_, index) in self.last.items() if other != name]
        return Call("update", k, agent=name, parent=self.last[name][1], attributes={"saw": saw})

    def _aggregate(self) -> None:
        answers = {name: self.answer_fn(text) for name, (text, _) in self.last.items()}
        self.r.agent_answers = answers
        winner, self.r.votes = majority(list(answers.values()))
        for name, (_, index) in self.last.items():
            agrees = None if answers[name] is None or winner is None else \
                float(normalize(answers[name]) == normalize(winner))
            self.e.score("agrees_with_majority", agrees, index, label=answers[name])
        if self.aggregator == "majority":
            self.r.answer = winner or ""
            return
        listing = "\n".join(f"{name}: {answers[name] or text}" for name, (text, _) in self.last.items())
        prompt = render(self.t["judge"], answers=listing, question=self.question)
        call = Call("judge", self.rounds, agent="judge")
        gen = self.e.ask(self.judge, [Message("user", prompt)], call)
        picked = self.answer_fn(gen.text)
        self.e.record(call, gen, parsed_answer=picked)
        self.r.answer = picked or gen.text.strip()


def _by_backend(agents: dict[str, Backend]) -> dict[Backend, list[str]]:
    groups: dict[int, tuple[Backend, list[str]]] = {}
    for name, backend in agents.items():
        groups.setdefault(id(backend), (backend, []))[1].append(name)
    return {backend: names for backend, names in groups.values()}
