"""The methods an evaluation compares, and how each answers one item.

Contract
--------
A method is written ``NAME``, ``NAME(option=value, ...)`` and optionally
``@SCHEDULE`` (a decoding schedule, see docs/decoding.md), e.g.
``"reflect(rounds=2)"`` or ``"baseline@cyclic(amplitude=5, period=60)"``;
:func:`parse_methods` reads a list of them (or one comma-separated string)
into :class:`Method` values. The label (the text as given, spaces removed)
names the method in results and in the trace store (run kind ``eval:<label>``).

The methods are the registered strategies that offer the ``eval`` surface
(:mod:`reflectnb.strategies.spec`): ``baseline``, ``reflect``, ``critique``,
``debate``, ``self_consistency``, ``best_of_n`` and any method registered
with ``reflectnb.register_strategy``. Options and their defaults are the
strategy's own (the same as ``reflectnb.<name>`` and ``%%<name>``), checked by
the same code.

Each runs one item with :func:`run_item`: the strategy's ``run(ctx, task,
options)`` with a run context whose answer rule is the task set's, and returns
an :class:`Outcome`: the answer after each round (round 0 = the first answer;
the last = the final answer; read by the spec's ``answers_for_eval``), how many
reflection rounds ran, tokens and generation seconds (counted from every
generation the method asked for). A loop that stopped early (feedback said
STOP, the critic approved) keeps its answer for the rounds it did run.

Non-goals: the batching across items (``batching.py``) and the trace store (``runner.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.errors import OptionError
from reflectnb.evaluate.tasks import Item, TaskSet
from reflectnb.strategies.voting import extract_answer
from reflectnb.trace import Generation, Recorder

class _Known:
    """The names of the evaluation methods, read from the strategy registry when asked (``METHODS``)."""

    def __iter__(self):
        from reflectnb.strategies.spec import strategies

        return iter(strategies("eval"))

    def __len__(self) -> int:
        return len(tuple(iter(self)))

    def __eq__(self, other: Any) -> bool:
        return tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return repr(tuple(self))


METHODS = _Known()


@dataclass(frozen=True)
class Method:
    """One method to evaluate: a registered strategy's ``name``, its ``options`` and an optional ``schedule``."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    label: str = ""

    def __post_init__(self) -> None:
        from reflectnb.strategies.spec import get_strategy, strategies

        if self.name not in strategies("eval"):
            raise OptionError(f"unknown method {self.name!r}; known methods: {', '.join(METHODS)} "
                              "(add options as reflect(rounds=2) and a schedule as baseline@cyclic(...))")
        if not self.label:
            object.__setattr__(self, "label", _label(self.name, self.options, self.schedule))
        # fail now, not after an hour of generation
        object.__setattr__(self, "_checked", get_strategy(self.name).options_from(self.options, f"method {self.label!r}"))
        if self.schedule is not None:
            from reflectnb.decoding.parse import parse_schedule

            parse_schedule(self.schedule)

    @property
    def spec(self) -> Any:
        from reflectnb.strategies.spec import get_strategy

        return get_strategy(self.name)

    @property
    def checked(self) -> Any:
        """The strategy's options dataclass, defaults filled and every value checked."""
        return self._checked  # type: ignore[attr-defined]

    def option(self, key: str) -> Any:
        """The option's value, or its default."""
        return getattr(self.checked, key)


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


def run_item(method: Method, backend: Backend, tasks: TaskSet, item: Item, params: GenerationParams,
             recorder: Recorder) -> Outcome:
    """Answer ``item`` with ``method``, reporting to ``recorder``.

    A user extraction function that raises reads as no answer, and the first
    error is kept in ``Outcome.extract_error`` (scored as ``checker_error``).
    """
    from reflectnb.strategies.context import RunContext

    spec, rule = method.spec, _GuardedRule(tasks.extract) if callable(tasks.extract) else tasks.extract
    answer = lambda text: extract_answer(text, rule)  # noqa: E731
    counted = _Counting(backend)
    ctx = RunContext(counted, params=params, recorder=recorder, answer=answer)
    options = _item_feedback(method.checked, tasks, item, answer)
    result = spec.run(ctx, tasks.prompt(item) if spec.eval_task == "prompt" else item.question, options)
    answers, rounds = spec.answers_for_eval(result, answer)
    return Outcome(answers, str(getattr(result, "answer", "") or ""), rounds, counted.tokens, counted.seconds,
                   str(getattr(result, "stop_reason", "") or ""),
                   rule.error if isinstance(rule, _GuardedRule) else None)


def _item_feedback(options: Any, tasks: TaskSet, item: Item, answer: Callable[[str], Any]) -> Any:
    """Options named ``checker`` / ``reference`` left unset get the item's checker and answer (feedback sources)."""
    from reflectnb.strategies.feedback import item_checker

    names = {f.name for f in dataclasses.fields(options)}
    fill: dict[str, Any] = {}
    if "checker" in names and options.checker is None:
        fill["checker"] = item_checker(tasks.checker, item, answer)
    if "reference" in names and options.reference is None:
        fill["reference"] = item.answer
    return dataclasses.replace(options, **fill) if fill else options


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


class _Counting(Backend):
    """``backend``, counting the tokens and generation seconds of every call a method makes.

    Batched rows share their call's time, so a call counts its slowest row once.
    """

    def __init__(self, backend: Backend):
        self.inner, self.name, self.tokens, self.seconds = backend, backend.name, 0, 0.0
        self.can_stream, self.can_batch = backend.can_stream, backend.can_batch
        self.can_process_logits, self.has_logprobs = backend.can_process_logits, backend.has_logprobs

    def check_params(self, params: GenerationParams) -> None:
        self.inner.check_params(params)

    def describe(self) -> Any:
        return self.inner.describe()

    def generate(self, prompts: Any, params: GenerationParams | None = None, on_token: Any = None) -> list[Generation]:
        gens = self.inner.generate(prompts, params, on_token=on_token)
        self.tokens += sum(g.completion_tokens for g in gens)
        self.seconds += max((g.seconds for g in gens), default=0.0)
        return gens
