"""The methods an evaluation compares, and how each answers one item.

Contract
--------
A method is written ``NAME``, ``NAME(option=value, ...)`` and optionally
``@SCHEDULE`` (a decoding schedule, see docs/decoding.md), e.g.
``"reflect(rounds=2)"`` or ``"baseline@cyclic(amplitude=5, period=60)"``;
:func:`parse_methods` reads a list of them (or one comma-separated string)
into :class:`Method` values. The label (the text as given, spaces removed)
names the method in results and in the trace store (run kind ``eval:<label>``).

Known names (:data:`METHODS`) and their options:

``baseline``          one answer.
``self_consistency``  ``samples`` (5) answers at ``temperature`` (0.7, > 0); the majority answer wins
                      (:func:`reflectnb.strategies.tree.self_consistency` on the item's prompt).
``reflect``           Self-Refine (:func:`reflectnb.strategies.reflect`), ``rounds`` (2), ``history``, ``tone``.
``critique``          step-level critique and revision, ``rounds`` (1), ``refine_policy``.
``debate``            Du et al. debate, ``agents`` (3), ``rounds`` (2).

Each runs one item with :func:`run_item` and returns an :class:`Outcome`: the
answer after each round (round 0 = the first answer; the last = the final
answer), how many reflection rounds ran, tokens and generation seconds. A loop
that stopped early (feedback said STOP, the critic approved) keeps its answer
for the rounds it did run.

Non-goals: the batching across items (``batching.py``) and the trace store (``runner.py``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.errors import OptionError
from reflectnb.evaluate.tasks import Item, TaskSet
from reflectnb.strategies.voting import extract_answer, majority
from reflectnb.strategies.tree.tasks import Task
from reflectnb.trace import Generation, Message, Recorder, Step

DEFAULTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "self_consistency": {"samples": 5, "temperature": 0.7},
    "reflect": {"rounds": 2, "history": "full", "tone": None},
    "critique": {"rounds": 1, "refine_policy": "always"},
    "debate": {"agents": 3, "rounds": 2},
}
METHODS = tuple(DEFAULTS)


@dataclass(frozen=True)
class Method:
    """One method to evaluate: a known ``name``, its ``options`` and an optional decoding ``schedule``."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.name not in DEFAULTS:
            raise OptionError(f"unknown method {self.name!r}; known methods: {', '.join(METHODS)} "
                              "(add options as reflect(rounds=2) and a schedule as baseline@cyclic(...))")
        unknown = sorted(set(self.options) - set(DEFAULTS[self.name]))
        if unknown:
            raise OptionError(f"method {self.name!r} has no option(s) {unknown}; its options: "
                              f"{sorted(DEFAULTS[self.name]) or 'none'}")
        if not self.label:
            object.__setattr__(self, "label", _label(self.name, self.options, self.schedule))
        for key in ("samples", "rounds", "agents"):  # fail now, not after an hour of generation
            if key in DEFAULTS[self.name]:
                _positive(self, key)
        if "temperature" in DEFAULTS[self.name]:
            _sampling_temperature(self)
        if self.schedule is not None:
            from reflectnb.decoding.parse import parse_schedule

            parse_schedule(self.schedule)

    def option(self, key: str) -> Any:
        """The option's value, or its default."""
        return self.options.get(key, DEFAULTS[self.name][key])


def _label(name: str, options: dict[str, Any], schedule: str | None) -> str:
    args = ",".join(f"{k}={v!r}" for k, v in sorted(options.items()))
    return name + (f"({args})" if args else "") + (f"@{''.join(schedule.split())}" if schedule else "")


def parse_method(text: str | Method) -> Method:
    """A :class:`Method` from ``"name"``, ``"name(k=v, ...)"`` and/or ``"...@schedule"``.

    Examples
    --------
    >>> m = parse_method("reflect(rounds=1)@constant(2)")
    >>> m.name, m.options, m.schedule, m.label
    ('reflect', {'rounds': 1}, 'constant(2)', 'reflect(rounds=1)@constant(2)')
    """
    if isinstance(text, Method):
        return text
    if not isinstance(text, str) or not text.strip():
        raise OptionError(f"a method must be a non-empty string such as 'baseline' or 'reflect(rounds=2)', got {text!r}")
    head, _, schedule = text.strip().partition("@")
    name, options = _call(head.strip())
    return Method(name, options, schedule.strip() or None)


def _call(text: str) -> tuple[str, dict[str, Any]]:
    from reflectnb.decoding.parse import read_call  # the schedules' reader: one grammar for name(k=v)

    def error(why: str) -> OptionError:
        return OptionError(f"cannot read method {text!r}: {why}; write name or name(option=value, ...), "
                           "options as literals or bare words, e.g. reflect(rounds=2, history=last)")

    name, values, options = read_call(text, error)
    if values:
        raise error("options must be given by name")
    return name, options


def parse_methods(methods: str | Method | list[str | Method] | tuple[str | Method, ...]) -> list[Method]:
    """Methods from a list, or from one string split at top-level commas; labels must be unique."""
    items = split_top_level(methods) if isinstance(methods, str) else \
        [methods] if isinstance(methods, Method) else list(methods)
    parsed = [parse_method(m) for m in items]
    if not parsed:
        raise OptionError(f"no methods given; known methods: {', '.join(METHODS)}")
    labels = [m.label for m in parsed]
    if len(set(labels)) != len(labels):
        raise OptionError(f"methods {labels} name the same method twice; give each once")
    return parsed


def split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets: ``"a, b(x=1, y=2)"`` → ``["a", "b(x=1, y=2)"]``."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [p for p in parts + [current.strip()] if p]


@dataclass
class Outcome:
    """What one method produced for one item."""

    round_answers: list[str | None]
    final_text: str
    rounds: int
    tokens: int
    gen_seconds: float
    stop_reason: str = ""
    extract_error: str | None = None


Runner = Callable[[Method, Backend, TaskSet, Item, GenerationParams, Recorder], Outcome]


def run_item(method: Method, backend: Backend, tasks: TaskSet, item: Item, params: GenerationParams,
             recorder: Recorder) -> Outcome:
    """Answer ``item`` with ``method``, reporting steps to ``recorder``.

    A user extraction function that raises reads as no answer, and the first
    error is kept in ``Outcome.extract_error`` (scored as ``checker_error``).
    """
    if not callable(tasks.extract):
        return _RUNNERS[method.name](method, backend, tasks, item, params, recorder)
    guarded = copy.copy(tasks)  # a shallow copy: the same items, without re-validating them
    guarded.extract = guard = _GuardedRule(tasks.extract)
    outcome = _RUNNERS[method.name](method, backend, guarded, item, params, recorder)
    outcome.extract_error = guard.error
    return outcome


class _GuardedRule:
    """A user's extraction function that returns ``None`` instead of raising, keeping the first error."""

    def __init__(self, rule: Callable[[str], Any]):
        self.rule, self.error = rule, None

    def __call__(self, text: str) -> Any:
        try:
            return self.rule(text)
        except Exception as exc:  # a user's function: keep the evaluation going, record why
            name = getattr(self.rule, "__name__", "the extraction function")
            self.error = self.error or f"extract {name} raised {type(exc).__name__}: {exc}"
            return None


def _baseline(m: Method, backend: Backend, tasks: TaskSet, item: Item, params: GenerationParams,
              recorder: Recorder) -> Outcome:
    gen = backend.generate([_chat(tasks, item)], params)[0]
    recorder.on_step(Step(kind="answer", text=gen.text, generation=gen))
    return Outcome([extract_answer(gen.text, tasks.extract)], gen.text, 0, gen.completion_tokens, gen.seconds,
                   gen.finish_reason)


def _chat(tasks: TaskSet, item: Item) -> list[Message]:
    """The question as one user message (chat models answer raw text poorly)."""
    return [Message("user", tasks.prompt(item))]


def _self_consistency(m: Method, backend: Backend, tasks: TaskSet, item: Item, params: GenerationParams,
                      recorder: Recorder) -> Outcome:
    """The tree search's :func:`~reflectnb.strategies.tree.self_consistency` on the item's prompt."""
    from reflectnb.strategies.tree import self_consistency

    samples, kept = _positive(m, "samples"), _Keeping(backend)
    result = self_consistency(kept, _ItemTask(item.question, prompt=_chat(tasks, item), rule=tasks.extract),
                              n=samples, params=params.with_(temperature=_sampling_temperature(m)),
                              seed=params.seed)
    for i, (gen, node) in enumerate(zip(kept.generations, result.nodes[1:])):
        recorder.on_step(Step(kind="sample", text=gen.text, agent=f"sample {i + 1}", generation=gen,
                              attributes={"parsed_answer": node.attributes["extracted_answer"]}))
    winner, votes = result.answer or None, result.nodes[0].attributes["votes"]
    return Outcome([winner], f"majority of {samples}: {winner!r} (votes {votes})", 0,
                   sum(g.completion_tokens for g in kept.generations), max(g.seconds for g in kept.generations),
                   "majority")


@dataclass
class _ItemTask(Task):
    """An item as a tree task: the evaluation's prompt, answers read with the task set's rule."""

    prompt: list[Message] = field(default_factory=list)
    rule: Any = "auto"

    def solve_prompt(self) -> list[Message]:
        return self.prompt

    def answer(self, state: str) -> str:
        return extract_answer(state.rstrip("\n"), self.rule) or ""


class _Keeping(Backend):
    """``backend``, keeping the generations it returns (their tokens and seconds are the item's)."""

    def __init__(self, backend: Backend):
        self.inner, self.generations, self.name = backend, [], backend.name
        self.can_stream, self.can_batch = backend.can_stream, backend.can_batch
        self.can_process_logits, self.has_logprobs = backend.can_process_logits, backend.has_logprobs

    def check_params(self, params: GenerationParams) -> None:
        self.inner.check_params(params)

    def generate(self, prompts: Any, params: GenerationParams | None = None, on_token: Any = None) -> list[Generation]:
        gens = self.inner.generate(prompts, params, on_token=on_token)
        self.generations += gens
        return gens


def _reflect(m: Method, backend: Backend, tasks: TaskSet, item: Item, params: GenerationParams,
             recorder: Recorder) -> Outcome:
    from reflectnb.strategies import reflect

    result = reflect(backend, tasks.prompt(item), rounds=_positive(m, "rounds"), history=m.option("history"),
                     tone=m.option("tone"), params=params, recorder=recorder)
    return _loop_outcome(result, tasks)


def _critique(m: Method, backend: Backend, tasks: TaskSet, item: Item, params: GenerationParams,
              recorder: Recorder) -> Outcome:
    from reflectnb.strategies import critique

    result = critique(backend, item.question, rounds=_positive(m, "rounds"),
                      refine_policy=m.option("refine_policy"), params=params, recorder=recorder)
    return _loop_outcome(result, tasks)


def _loop_outcome(result: Any, tasks: TaskSet) -> Outcome:
    answers = [extract_answer(text, tasks.extract) for text in result.answers]
    answers += [answers[-1]] * (result.rounds + 1 - len(answers))  # an early stop keeps the answer
    return Outcome(answers, result.answer, result.rounds, result.tokens, result.seconds, result.stop_reason)


def _debate(m: Method, backend: Backend, tasks: TaskSet, item: Item, params: GenerationParams,
            recorder: Recorder) -> Outcome:
    from reflectnb.strategies import debate_du

    result = debate_du(backend, item.question, n_agents=_positive(m, "agents"), rounds=_positive(m, "rounds"),
                       answer_fn=lambda text: extract_answer(text, tasks.extract), params=params, recorder=recorder)
    per_round = [majority([s.attributes.get("parsed_answer") for s in result.steps
                           if s.round == k and s.kind in ("answer", "update")])[0] for k in range(result.rounds)]
    per_round[-1] = result.answer or None
    return Outcome(per_round, result.answer, result.rounds - 1, result.tokens, result.seconds, result.stop_reason)


def _sampling_temperature(m: Method) -> float:
    value = m.option("temperature")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise OptionError(f"method {m.label!r}: `temperature` must be a number > 0 (samples at temperature 0 "
                          f"are all the same), got {value!r}")
    return float(value)


def _positive(m: Method, key: str) -> int:
    value = m.option(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise OptionError(f"method {m.label!r}: `{key}` must be a positive integer, got {value!r}")
    return value


_RUNNERS: dict[str, Runner] = {"baseline": _baseline, "self_consistency": _self_consistency,
                               "reflect": _reflect, "critique": _critique, "debate": _debate}
