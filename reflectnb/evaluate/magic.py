"""``%reflect_eval``: the line magic's options and what it runs (``ReflectMagics.reflect_eval`` calls it).

Usage::

    %reflect_eval rg:basic_arithmetic --methods "baseline, self_consistency, reflect(rounds=2)" -n 20
    %reflect_eval my_df --checker numeric:0.01 -o result          # a DataFrame / list / TaskSet variable
    %reflect_eval problems.jsonl --checker my_check --batch-size 4  # a function variable as checker

The first word is the task source: a variable in the notebook (DataFrame,
list of dicts, TaskSet), ``rg:<reasoning-gym dataset>``, or a JSONL path.
``--schedule`` adds that decoding schedule to every method that has none.
``-m``, ``-t`` and ``--max-tokens`` default to ``%config ReflectMagics.model``,
``.temperature`` and ``.max_tokens`` (then the embedded model, 0, 256).
The magic calls :func:`reflectnb.evaluate.compare` and returns its
:class:`~reflectnb.evaluate.result.EvalResult` (``-o NAME`` also stores it).

Non-goals: display (the magics class shows the returned result).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from reflectnb.errors import OptionError
from reflectnb.evaluate.methods import METHODS, Method, parse_methods
from reflectnb.evaluate.result import EvalResult
from reflectnb.magic_options import (non_negative_float, OptionParser, positive_int, add_generation_options,
                                     add_output_options)


DEFAULTS: dict[str, Any] = {"model": None, "temperature": 0.0, "max_tokens": 256}


def reflect_eval_parser() -> OptionParser:
    """The option parser of ``%reflect_eval`` (its ``format_help()`` is the magic's help)."""
    parser = OptionParser(prog="reflect_eval", add_help=False, formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Compare methods on a task set with a verifier: accuracy (Wilson CI), "
                                 "paired tests, tokens/time per item, reflection outcomes.")
    parser.add_argument("tasks", help="a variable (DataFrame, list of dicts, TaskSet), rg:<dataset> or a JSONL path")
    parser.add_argument("--methods", default="baseline,reflect",
                        help=f"comma-separated, from {', '.join(METHODS)}; options as reflect(rounds=2), "
                             "schedules as baseline@cyclic(amplitude=5,period=60) (default baseline,reflect)")
    parser.add_argument("-n", "--items", type=positive_int, dest="n", help="number of items (reasoning-gym default 10)")
    parser.add_argument("--batch-size", type=positive_int, dest="batch_size", default=8,
                        help="items run together (default 8; 1 = one by one)")
    parser.add_argument("--checker", default="exact",
                        help="exact, numeric, numeric:TOL, regex, or a function variable (predicted, gold) -> bool")
    parser.add_argument("--extract", default="auto",
                        help="auto, tag, boxed, final_answer, answer_is, last_number, last_line, or a function variable")
    parser.add_argument("--eval-id", dest="eval_id", help="name of the evaluation in the trace store (resumes it)")
    parser.add_argument("--fresh", action="store_true", help="do not resume: start a new eval id")
    parser.add_argument("--confidence", type=non_negative_float, default=0.95, help="interval level (default 0.95)")
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
    given = {"model": model_from_namespace(opts.model, user_ns), "temperature": opts.temperature,
             "max_tokens": opts.max_tokens}
    settings = {**DEFAULTS, **{k: v for k, v in (defaults or {}).items() if v not in (None, "")},
                **{k: v for k, v in given.items() if v is not None}}
    from reflectnb.evaluate.compare import compare

    result = compare(_lookup(opts.tasks, user_ns, "tasks"), methods, model=settings["model"], n=opts.n,
                     seed=opts.seed if opts.seed is not None else 0, batch_size=opts.batch_size,
                     temperature=settings["temperature"], max_tokens=settings["max_tokens"],
                     checker=_lookup(opts.checker, user_ns, "checker"), extract=_lookup(opts.extract, user_ns, "extract"),
                     eval_id=opts.eval_id, resume=not opts.fresh, trace=not opts.no_trace,
                     progress=not opts.no_stream, confidence=opts.confidence)
    if opts.output:
        user_ns[opts.output] = result
    return result


def _with_schedule(methods: list[Method], schedule: str | None) -> list[Method]:
    if not schedule:
        return methods
    return [m if m.schedule else Method(m.name, m.options, schedule) for m in methods]


def _lookup(value: str, user_ns: dict[str, Any], what: str) -> Any:
    """A notebook variable of that name, else the text itself (a name like ``exact`` or a path)."""
    if value.isidentifier() and value in user_ns:
        found = user_ns[value]
        if what != "tasks" and not callable(found) and not isinstance(found, str):
            raise OptionError(f"--{what} {value}: the variable {value!r} is a {type(found).__name__}, not a function")
        return found
    return value


def model_from_namespace(name: str | None, user_ns: dict[str, Any]) -> Any:
    """``--model NAME``: a Backend held in the Python variable NAME, else the model name itself."""
    from reflectnb.backends.base import Backend

    if name and name.isidentifier() and isinstance(user_ns.get(name), Backend):
        return user_ns[name]
    return name
