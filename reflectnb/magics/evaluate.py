"""``%reflect_eval``: the line magic's options and what it runs (``ReflectMagics.reflect_eval`` calls it).

Usage::

    %reflect_eval rg:basic_arithmetic --methods "baseline, self_consistency, reflect(rounds=2)" -n 20
    %reflect_eval my_df --checker numeric:0.01 -o result          # a DataFrame / list / TaskSet variable
    %reflect_eval problems.jsonl --checker my_check --batch-size 4  # a function variable as checker

The first word is the task source: a variable in the notebook (DataFrame,
list of dicts, TaskSet), ``rg:<reasoning-gym dataset>``, or a JSONL path.
``--schedule`` adds that decoding schedule to every method that has none
(and is refused when every method names its own). Before anything runs, the
number of model calls (items x calls per item, summed over the methods) is
estimated and the evaluation refused above ``--max-generations`` (default
100,000), so ``-n 1000000000`` fails at once instead of loading a billion items.
``-m``, ``-t`` and ``--max-tokens`` default to ``%config ReflectMagics.model``,
``.temperature`` and ``.max_tokens`` (then the embedded model, 0, 256).
The magic calls :func:`reflectnb.evaluate.compare` and returns its
:class:`~reflectnb.evaluate.result.EvalResult` (``-o NAME`` also stores it).

Non-goals: display (the magics class shows the returned result).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sized
from typing import Any

from reflectnb.errors import OptionError
from reflectnb.evaluate.methods import METHODS, Method, parse_methods
from reflectnb.evaluate.result import EvalResult
from reflectnb.magics.options import (non_negative_float, OptionParser, positive_int, add_generation_options,
                                     add_output_options)


DEFAULTS: dict[str, Any] = {"model": None, "temperature": 0.0, "max_tokens": 256}
MAX_EVAL_GENERATIONS = 100_000  # model calls one %reflect_eval may make before it refuses
RG_DEFAULT_ITEMS = 10  # what a reasoning-gym source gives without -n


def reflect_eval_parser() -> OptionParser:
    """The option parser of ``%reflect_eval`` (its ``format_help()`` is the magic's help)."""
    parser = OptionParser(prog="reflect_eval", add_help=False, formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Compare methods on a task set with a verifier: accuracy (Wilson CI), "
                                 "paired tests, tokens/time per item, reflection outcomes.")
    parser.magic = "%reflect_eval"
    parser.add_argument("tasks", help="a variable (DataFrame, list of dicts, TaskSet), rg:<dataset> or a JSONL path")
    parser.add_argument("--methods", default="baseline,reflect",
                        help=f"comma-separated, from {', '.join(METHODS)}; options as reflect(rounds=2), "
                             "schedules as baseline@cyclic(amplitude=5,period=60) (default baseline,reflect)")
    parser.add_argument("-n", "--items", type=positive_int, dest="n", help="number of items (reasoning-gym default 10)")
    parser.add_argument("--batch-size", type=positive_int, dest="batch_size",
                        help="items run together (default 8, or a server model's concurrency when more; "
                             "1 = one by one)")
    parser.add_argument("--checker", default="exact",
                        help="exact, numeric, numeric:TOL, regex, or a function variable (predicted, gold) -> bool")
    parser.add_argument("--extract", default="auto",
                        help="auto, tag, boxed, final_answer, answer_is, last_number, last_line, or a function variable")
    parser.add_argument("--eval-id", dest="eval_id", help="name of the evaluation in the trace store (resumes it)")
    parser.add_argument("--fresh", action="store_true", help="do not resume: start a new eval id")
    parser.add_argument("--confidence", type=non_negative_float, default=0.95, help="interval level (default 0.95)")
    parser.add_argument("--max-generations", type=positive_int, dest="max_generations",
                        default=MAX_EVAL_GENERATIONS, help="refuse the evaluation if it could make more model "
                        f"calls than this (default {MAX_EVAL_GENERATIONS:,})")
    add_generation_options(parser)
    add_output_options(parser)
    return parser


def parse_eval_line(line: str) -> argparse.Namespace:
    """The ``%reflect_eval`` line as a Namespace (OptionError on bad options)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise OptionError(f"%reflect_eval: cannot parse the options ({exc}); check the quotes") from None
    if not words:
        raise OptionError("%reflect_eval needs a task source, e.g. %reflect_eval rg:basic_arithmetic -n 10")
    return reflect_eval_parser().parse_args(words)


def reflect_eval(line: str, user_ns: dict[str, Any], defaults: dict[str, Any] | None = None) -> EvalResult:
    """Run ``%reflect_eval <line>`` with the notebook's variables ``user_ns``.

    ``defaults`` (``model``, ``temperature``, ``max_tokens``) fill the options the
    line leaves out; the magic passes ``%config ReflectMagics.<name>`` here.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> ns = {"qs": [{"question": "2+2?", "answer": "4"}], "m": ScriptedBackend(["The answer is 4"])}
    >>> int(reflect_eval("qs --methods baseline -m m --no-trace --no-stream", ns).summary()["correct"][0])
    1
    """
    opts = parse_eval_line(line)
    methods = _with_schedule(parse_methods(opts.methods), opts.schedule)
    tasks = _lookup(opts.tasks, user_ns, "tasks")
    check_budget(methods, _item_count(opts.n, tasks), opts.max_generations)
    given = {"model": model_from_namespace(opts.model, user_ns), "temperature": opts.temperature,
             "max_tokens": opts.max_tokens}
    settings = {**DEFAULTS, **{k: v for k, v in (defaults or {}).items() if v not in (None, "")},
                **{k: v for k, v in given.items() if v is not None}}
    from reflectnb.evaluate.compare import compare

    result = compare(tasks, methods, model=settings["model"], n=opts.n,
                     seed=opts.seed if opts.seed is not None else 0, batch_size=opts.batch_size,
                     temperature=settings["temperature"], max_tokens=settings["max_tokens"],
                     checker=_lookup(opts.checker, user_ns, "checker"), extract=_lookup(opts.extract, user_ns, "extract"),
                     eval_id=opts.eval_id, resume=not opts.fresh, trace=not opts.no_trace,
                     progress=not opts.no_stream, confidence=opts.confidence)
    if opts.output:
        user_ns[opts.output] = result
    return result


def calls_per_item(method: Method) -> int:
    """At most how many model calls ``method`` makes for one item (the strategy's own estimate)."""
    estimate = method.spec.estimate(method.checked)
    return estimate[0] if estimate is not None else 1


def check_budget(methods: list[Method], items: int | None, cap: int) -> None:
    """Refuse an evaluation that could make more than ``cap`` model calls, with the estimate.

    ``items`` is ``None`` when unknown before loading (a JSONL file: bounded by its size).

    Examples
    --------
    >>> check_budget([Method("baseline"), Method("reflect")], 1_000_000_000, 100_000)
    Traceback (most recent call last):
    ...
    reflectnb.errors.OptionError: %reflect_eval: this evaluation could make about 6,000,000,000 model calls (1,000,000,000 items x 6 calls per item over 2 methods); lower -n or the methods' rounds/samples/agents, or raise --max-generations
    """
    from reflectnb.strategies.engine import check_estimate

    if items is None:
        return
    per_item = sum(calls_per_item(m) for m in methods)
    check_estimate(items * per_item, cap, "--max-generations", "%reflect_eval: this evaluation could make",
                   f"model calls ({items:,} items x {per_item:,} calls per item over {len(methods)} methods)",
                   "lower -n or the methods' rounds/samples/agents, or raise --max-generations")


def _item_count(n: int | None, tasks: Any) -> int | None:
    size = len(tasks) if isinstance(tasks, Sized) and not isinstance(tasks, str) else None
    if isinstance(tasks, str) and tasks.startswith("rg:"):
        size = None
        n = n or RG_DEFAULT_ITEMS
    if n is None:
        return size
    return n if size is None else min(n, size)


def _with_schedule(methods: list[Method], schedule: str | None) -> list[Method]:
    if not schedule:
        return methods
    if all(m.schedule for m in methods):
        raise OptionError(f"%reflect_eval: --schedule {schedule!r} would be ignored: every method names its own "
                          "(@...); drop --schedule, or drop the @schedule of the methods it should reach")
    return [m if m.schedule else Method(m.name, m.options, schedule) for m in methods]


def _lookup(value: str, user_ns: dict[str, Any], what: str) -> Any:
    """A notebook variable of that name, else the text itself (a name like ``exact`` or a path)."""
    if value.isidentifier() and value in user_ns:
        found = user_ns[value]
        if what != "tasks" and not callable(found) and not isinstance(found, str):
            raise OptionError(f"--{what} {value}: the variable {value!r} is a {type(found).__name__}, not a function")
        return found
    return value


def model_from_namespace(name: str | None, user_ns: dict[str, Any], option: str = "-m") -> Any:
    """``--model NAME``: a Backend held in the Python variable NAME, else the model name itself.

    Model names are never bare Python names (``smollm2-135m``, ``hf:...``, ``openai:...``),
    so a variable of that name that holds something else is a mistake, said in one line.
    An empty name (``-m ''``) is refused rather than silently meaning the default model.
    """
    from reflectnb.backends.base import Backend

    if name is not None and not name.strip():
        raise OptionError(f"{option} is empty; give a model name (e.g. smollm2-135m) or a Python variable "
                          "holding a loaded model")
    if name and name.isidentifier() and name in user_ns:
        found = user_ns[name]
        if not isinstance(found, Backend):
            raise OptionError(f"{option} {name}: the variable {name!r} is a {type(found).__name__}, not a loaded "
                              "model; use reflectnb.load_model(...) or give a model name such as smollm2-135m")
        return found
    return name
