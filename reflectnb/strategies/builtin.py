"""The built-in methods, each declared once as a :class:`~reflectnb.strategies.spec.Strategy`.

Each block is the whole declaration of one method: its options (types,
defaults, help, checks), how many model calls it makes, and ``run(ctx, task,
options)``, which calls the algorithm in its own module. The Python functions
(``reflectnb.reflect`` …), the cell magics, the ``%reflect_eval`` methods, the
live view layouts and the magic reference are all made from these blocks.

Non-goals: the algorithms themselves (``reflect.py``, ``critique.py``, ``debate_*.py``, ``tree/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reflectnb.errors import OptionError
from reflectnb.strategies.context import RunContext
from reflectnb.strategies.engine import above_zero, finite_number, positive_int
from reflectnb.strategies.feedback import SOURCES
from reflectnb.strategies.spec import option, register_strategy
from reflectnb.strategies.tree.tasks import Task
from reflectnb.strategies.voting import majority
from reflectnb.trace import Message

TEMPLATES_HELP = "a dict of prompt templates (replacing the method's TEMPLATES)"
FEEDBACK_HELP = ("where the feedback comes from: self (the model), tool:calc, tool:python, checker, or oracle "
                 "(the right/wrong bit: an upper bound)")
CHECKER_HELP = "a verifier answer -> bool, score or (bool, message), for feedback checker (evaluations: the task set's)"
REFERENCE_HELP = "the right answer, for feedback oracle (evaluations: each item's answer)"


# -- baseline ---------------------------------------------------------------------------------------------------

@register_strategy("baseline", summary="One answer, no reflection: the control every method is compared with.",
                   view="generate", calls=lambda o: (1, "one answer"), surfaces=("eval",))
def _baseline(ctx: RunContext, task: Any, options: Any) -> Any:
    from reflectnb.strategies.engine import Call, Engine, run_loop
    from reflectnb.strategies.results import LoopResult

    result = LoopResult(strategy="baseline", task=str(task))
    engine = Engine(result, ctx)

    def body() -> None:
        call = Call("answer")
        gen = engine.ask(ctx.backend, [Message("user", str(task))], call)
        result.answer, result.stop_reason = gen.text, gen.finish_reason or "done"
        engine.record(call, gen)

    return run_loop(result, body)


# -- reflect ----------------------------------------------------------------------------------------------------

@dataclass
class ReflectOptions:
    rounds: int = option(3, "max feedback rounds (each is one feedback and one refinement)", short="-r",
                         check=positive_int)
    history: str = option("full", "what the refiner sees: every earlier answer and feedback, or the last",
                          choices=("full", "last"))
    tone: Any = option(None, "feedback tone: encouraging, strict, urgent, curious, or a sentence; a list cycles")
    stop_fn: Any = option(None, "a function answer -> bool (a verifier) or float (a score)", variable=True)
    score_threshold: float | None = option(None, "stop once stop_fn's score reaches this")
    templates: Any = option(None, TEMPLATES_HELP, variable=True)
    feedback: str = option("self", FEEDBACK_HELP, choices=SOURCES)
    checker: Any = option(None, CHECKER_HELP, variable=True)
    reference: Any = option(None, REFERENCE_HELP)


def _loop_calls(first: str) -> Any:
    """``1 + 2 calls per round`` with the model's own feedback, ``1 + 1`` when a tool, checker or oracle gives it."""
    def calls(o: Any) -> tuple[int, str]:
        per_round = "2 calls" if o.feedback == "self" else "1 call"
        return 1 + int(per_round[0]) * o.rounds, f"rounds {o.rounds:,}: 1 {first} + {per_round} per round"

    return calls


@register_strategy("reflect", options=ReflectOptions, view="reflect",
                   summary="Draft -> self-feedback -> refine (Self-Refine, Madaan et al. 2023).",
                   calls=_loop_calls("draft"))
def _reflect(ctx: RunContext, task: str, o: ReflectOptions) -> Any:
    from reflectnb.strategies.reflect import reflect

    return reflect(ctx, task, rounds=o.rounds, history=o.history, tone=o.tone, stop_fn=o.stop_fn,
                   score_threshold=o.score_threshold, templates=o.templates, feedback=o.feedback,
                   checker=o.checker, reference=o.reference)


# -- critique ---------------------------------------------------------------------------------------------------

@dataclass
class CritiqueOptions:
    rounds: int = option(1, "critique rounds", short="-r", check=positive_int)
    critic: Any = option(None, "the critic's model (default: the actor's model)", model=True)
    refine_policy: str = option("always", "when the actor revises", choices=("always", "if_wrong"))
    templates: Any = option(None, TEMPLATES_HELP, variable=True)
    feedback: str = option("self", FEEDBACK_HELP, choices=SOURCES)
    checker: Any = option(None, CHECKER_HELP, variable=True)
    reference: Any = option(None, REFERENCE_HELP)


@register_strategy("critique", options=CritiqueOptions, view="critique", eval_task="question",
                   summary="An actor answers step by step; a critic judges each step; the actor revises "
                           "(after AutoMathCritique).",
                   calls=_loop_calls("answer"))
def _critique(ctx: RunContext, task: str, o: CritiqueOptions) -> Any:
    from reflectnb.strategies.critique import critique

    return critique(ctx, task, critic=o.critic, rounds=o.rounds, refine_policy=o.refine_policy,
                    templates=o.templates, feedback=o.feedback, checker=o.checker, reference=o.reference)


# -- debate -----------------------------------------------------------------------------------------------------

@dataclass
class DebateOptions:
    method: str = option("du", "protocol: du (N agents, R rounds, vote) or mad (affirmative, negative, "
                         "moderator)", choices=("du", "mad"))
    rounds: int | None = option(None, "debate rounds (default: du 2, mad 3)", short="-r", check=positive_int)
    agents: int | None = option(None, "number of agents (du only; default 3, or one per model)", short="-a",
                                check=positive_int)
    models: list = option([], "one model per agent (du), or 3 for affirmative, negative, moderator (mad); "
                          "instead of -m", model=True, many=True)
    aggregator: str | None = option(None, "how du picks the answer (default majority)", choices=("majority", "judge"))
    templates: Any = option(None, TEMPLATES_HELP, variable=True)

    def __post_init__(self) -> None:
        if self.method == "mad":
            for name in ("agents", "aggregator"):
                if getattr(self, name) is not None:
                    raise OptionError(f"`{name}` applies to `method` du only; MAD has three fixed roles "
                                      "(affirmative, negative, moderator): give them models with `models`")
            if len(self.models) not in (0, 1, 3):
                raise OptionError(f"`method` mad: `models` takes 1 model, or 3 (affirmative, negative, "
                                  f"moderator); got {len(self.models)}")
        elif self.agents is not None and len(self.models) > 1 and self.agents != len(self.models):
            raise OptionError(f"`agents={self.agents}` does not match the {len(self.models)} models given; "
                              "give one model per agent, or one model for all")

    @property
    def round_count(self) -> int:
        return self.rounds or (3 if self.method == "mad" else 2)

    @property
    def agent_count(self) -> int:
        return self.agents or (len(self.models) if len(self.models) > 1 else 3)


def _debate_calls(o: DebateOptions) -> tuple[int, str]:
    if o.method == "mad":
        return 3 * o.round_count + 1, f"rounds {o.round_count:,}: 3 roles x rounds, + 1 judge"
    return (o.agent_count * o.round_count + 1,
            f"rounds {o.round_count:,}, agents {o.agent_count:,}: agents x rounds, + 1 judge")


def _debate_answers(result: Any, answer: Any) -> tuple[list[Any], int]:
    """The majority answer after each round (the last is the debate's own answer)."""
    per_round = [majority([s.attributes.get("parsed_answer") for s in result.steps
                           if s.round == k and s.kind in ("answer", "update")])[0] for k in range(result.rounds)]
    per_round = per_round or [None]
    per_round[-1] = result.answer or None
    return per_round, max(result.rounds - 1, 0)


@register_strategy("debate", options=DebateOptions, view="debate", eval_task="question", task_name="question",
                   summary="Multi-agent debate: Du et al. (N agents, R rounds, vote) or MAD "
                           "(affirmative / negative / moderator).",
                   calls=_debate_calls, eval_answers=_debate_answers)
def _debate(ctx: RunContext, question: str, o: DebateOptions) -> Any:
    from reflectnb.strategies.debate_du import debate_du
    from reflectnb.strategies.debate_mad import debate_mad

    models = list(o.models) or [ctx.backend]
    if o.method == "mad":
        roles = models[0] if len(models) == 1 else dict(zip(("affirmative", "negative", "moderator"), models))
        return debate_mad(ctx, question, roles=roles, max_rounds=o.round_count, templates=o.templates)
    return debate_du(ctx, question, models=models if len(models) > 1 else models[0], n_agents=o.agents,
                     rounds=o.round_count, aggregator=o.aggregator or "majority", templates=o.templates,
                     answer_fn=ctx.answer)


# -- tree searches ----------------------------------------------------------------------------------------------

TREE_SAMPLING = {"temperature": 0.7, "max_tokens": 96}  # ToT's and ReST-MCTS*'s temperature; one step per node


@dataclass
class TreeOptions:
    method: str = option("bfs", "search method", choices=("bfs", "dfs", "mcts", "best_of_n", "self_consistency"))
    iterations: int | None = option(None, "MCTS iterations (default 100)", check=positive_int)
    branch: int | None = option(None, "children per expansion", short="-b", check=positive_int)
    depth: int | None = option(None, "maximum depth (steps)", short="-d", check=positive_int)
    beam: int | None = option(None, "nodes kept per layer (bfs; default 5)", check=positive_int)
    n: int | None = option(None, "samples for best_of_n / self_consistency (default 5)", short="-n",
                           check=positive_int)
    evaluate: str | None = option(None, "how the model values states (default value)", choices=("value", "vote"))
    verifier: Any = option(None, "a function (state text) -> bool | float", variable=True)
    prm: Any = option(None, "a process reward function (question, partial) -> float", variable=True)
    max_nodes: int | None = option(None, "refuse a search that could make more nodes than this", check=positive_int)
    generate: str | None = option(None, "how children are made: one prompt proposing several, or one sample each",
                                  choices=("propose", "sample"))
    n_evaluate: int | None = option(None, "value samples per state (default 3)", check=positive_int)
    select: str | None = option(None, "how bfs keeps its beam (default greedy)", choices=("greedy", "sample"))
    tries: int | None = option(None, "children tried per dfs node (default 3)", check=positive_int)
    max_visits: int | None = option(None, "dfs: most states visited (default 100)", check=positive_int)
    prune_below: float | None = option(None, "dfs: drop states valued below this", check=finite_number)
    solved_at: float | None = option(None, "dfs: stop at a state valued at least this", check=finite_number)
    roll_forward_steps: int | None = option(None, "mcts: steps each rollout looks ahead (default 2)",
                                            check=positive_int)
    roll_branch: int | None = option(None, "mcts: children per rollout step (default 1)", check=positive_int)
    c_uct: float | None = option(None, "mcts: exploration weight of UCT", check=finite_number)
    alpha: float | None = option(None, "mcts: weight of a rollout's best value in the update (default 0.5)",
                                 check=finite_number)
    end_gate: float | None = option(None, "mcts: value at which a state counts as solved (default 0.9)",
                                    check=finite_number)
    game24: bool = option(False, "treat the task as four numbers for the game of 24")


def _tree_task(task: Any, game24: bool) -> Any:
    if not game24:
        return task
    from reflectnb.strategies.tree import Game24Task

    return Game24Task(task)


@register_strategy("tree", options=TreeOptions, view="tree", sampling=TREE_SAMPLING, surfaces=("api", "magic"),
                   summary="Tree search over reasoning steps: Tree of Thoughts BFS / DFS, ReST-MCTS*, best-of-N, "
                           "self-consistency.")
def _tree(ctx: RunContext, task: Any, o: TreeOptions) -> Any:
    from reflectnb.strategies.tree import tree_search

    given = {k: v for k, v in vars(o).items() if v is not None and k not in ("method", "game24")}
    return tree_search(ctx, _tree_task(task, o.game24), o.method, params=ctx.params, **_seed(ctx), **given)


def _seed(ctx: RunContext) -> dict[str, Any]:
    """The run's seed, if it has one (a search without one keeps its own default, 0, so runs repeat)."""
    return {"seed": ctx.params.seed} if ctx.params.seed is not None else {}


def _one_answer(result: Any, answer: Any) -> tuple[list[Any], int]:
    return [answer(result.answer) if result.answer else None], 0


@dataclass
class SamplesOptions:
    samples: int = option(5, "answers to sample", short="-n", check=positive_int)
    sample_temperature: float = option(0.7, "temperature of the samples (> 0: at 0 every sample is the same)",
                                       check=above_zero)


@register_strategy("self_consistency", options=SamplesOptions, view="tree", sampling=TREE_SAMPLING,
                   summary="Sample n answers, keep the majority answer (Wang et al. 2023).",
                   calls=lambda o: (o.samples, f"samples {o.samples:,}: one call per sample"), eval_answers=_one_answer)
def _self_consistency(ctx: RunContext, task: Any, o: SamplesOptions) -> Any:
    from reflectnb.strategies.tree import self_consistency

    return self_consistency(ctx, prompt_task(task, ctx), n=o.samples,
                            params=ctx.params.with_(temperature=o.sample_temperature), **_seed(ctx))


@dataclass
class BestOfNOptions(SamplesOptions):
    verifier: Any = option(None, "a function (answer text) -> bool | float; default: the model values each",
                           variable=True)


@register_strategy("best_of_n", options=BestOfNOptions, view="tree", sampling=TREE_SAMPLING,
                   summary="Sample n answers, keep the one a verifier (or the model's own value) rates best.",
                   calls=lambda o: (o.samples * (1 if o.verifier else 4), f"samples {o.samples:,}: samples + 3 values each"),
                   eval_answers=_one_answer)
def _best_of_n(ctx: RunContext, task: Any, o: BestOfNOptions) -> Any:
    from reflectnb.strategies.tree import best_of_n

    return best_of_n(ctx, prompt_task(task, ctx), n=o.samples, verifier=o.verifier,
                     params=ctx.params.with_(temperature=o.sample_temperature), **_seed(ctx))


def prompt_task(task: Any, ctx: RunContext) -> Task:
    """A question string as a tree task asked verbatim, its answers read with ``ctx.answer``."""
    return task if isinstance(task, Task) else PromptTask(str(task).strip(), rule=ctx.answer)


@dataclass
class PromptTask(Task):
    """The question as one user message (chat models answer raw text poorly); answers read with ``rule``."""

    rule: Any = field(default=None, repr=False)

    def solve_prompt(self) -> list[Message]:
        return [Message("user", self.question)]

    def answer(self, state: str) -> str:
        return (self.rule(state.rstrip("\n")) if self.rule else super().answer(state)) or ""
