"""Option parsers for the cell magics, made from each strategy's spec, plus the shared groups.

Each strategy's cell magic (``%%reflect``, ``%%debate`` …, and any strategy
registered later) gets a parser from :func:`strategy_parser`: one flag per
option of the spec, read with the option's own type and check, then the shared
groups (``--max-generations``, generation, output). A bad option raises
:class:`~reflectnb.errors.OptionError` with argparse's own message (which the
magic shows as a one-line ``UsageError``). The docs' magic reference is
generated from these same parsers (``parser.format_help()``).

Also here: :func:`fill_cell`, which pulls ``{name}`` Python variables into a
cell's text (``{{`` and ``}}`` stay literal braces), and :func:`magic_help`,
the text ``%%reflect?`` shows (the parser's own help).
"""

from __future__ import annotations

import argparse
import keyword
import math
import shlex
import string
from collections.abc import Callable, Mapping
from typing import Any

from reflectnb.errors import OptionError, ReflectnbError
from reflectnb.option_parser import OptionParser
from reflectnb.strategies import engine

MAX_TOKENS = 1_000_000  # new tokens per generation: above any model's context, so larger is a typo
SEED_LIMIT = 2**32  # numpy and torch both take seeds in [0, 2**32)


def _argparse_check(check: Callable[[str, Any], Any], value: Any) -> Any:
    """``check("value", value)`` (a rule from ``strategies.engine``), its OptionError as argparse's error.

    The rule and its wording live once, in the engine; argparse names the flag, so
    the option's name is dropped from the message.
    """
    try:
        return check("value", value)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("`value` ", "", 1)) from None


def positive_int(value: str) -> int:
    """A positive whole number (the engine's :func:`~reflectnb.strategies.engine.positive_int`)."""
    try:
        number: Any = int(value)
    except ValueError:
        number = value  # not a number: the check refuses the text as typed
    return _argparse_check(engine.positive_int, number)


def non_negative_float(value: str) -> float:
    """A finite number >= 0: ``nan`` and ``inf`` are refused (they would reach the sampler)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    number = _argparse_check(engine.finite_number, number if math.isfinite(number) else value)  # shows 'inf' as typed
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {number}")
    return number


def token_count(value: str) -> int:
    """A positive number of new tokens, at most :data:`MAX_TOKENS`."""
    number = positive_int(value)
    if number > MAX_TOKENS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TOKENS:,} (more than any model's context), "
                                         f"got {number:,}")
    return number


def seed_value(value: str) -> int:
    """A random seed in ``[0, 2**32)``, the range numpy and torch both accept."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {value!r}") from None
    if not 0 <= number < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 0 and {SEED_LIMIT - 1}, got {number}")
    return number


def schedule_text(value: str) -> str:
    """A schedule string that parses (checked now, before any model loads); kept as text."""
    from reflectnb.decoding.parse import parse_schedule

    try:
        parse_schedule(value)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def python_name(value: str) -> str:
    """A name that can be a Python variable (``-o res``), not ``1abc`` or ``for``."""
    if not value.isidentifier() or keyword.iskeyword(value):
        raise argparse.ArgumentTypeError(f"must be a Python variable name such as res, got {value!r}")
    return value


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    """Options every generating magic shares."""
    group = parser.add_argument_group("generation")
    group.add_argument("-m", "--model", help="model name, or a Python variable holding a loaded model "
                       "(default: %%config ReflectMagics.model)")
    group.add_argument("-t", "--temperature", type=non_negative_float, help="0 = greedy (default 0)")
    group.add_argument("--max-tokens", type=token_count, dest="max_tokens",
                       help="new tokens per generation (default 256)")
    group.add_argument("--seed", type=seed_value, help="random seed for sampling (0 to 2**32 - 1)")
    group.add_argument("--schedule", type=schedule_text, help='reflection-token schedule, e.g. "cyclic(amplitude=5, period=600)"')


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """Options about what the magic shows and keeps."""
    group = parser.add_argument_group("output")
    group.add_argument("-o", "--output", metavar="NAME", type=python_name,
                       help="store the result object in this variable")
    group.add_argument("--no-stream", action="store_true", dest="no_stream",
                       help="show the result at the end instead of a live view")
    group.add_argument("--no-trace", action="store_true", dest="no_trace",
                       help="do not write this run to the trace store")


def add_budget_option(parser: argparse.ArgumentParser, what: str = "this run") -> None:
    """``--max-generations``: the cap on model calls, raised on purpose for a big run."""
    from reflectnb.strategies.spec import MAX_GENERATIONS

    parser.add_argument("--max-generations", type=positive_int, dest="max_generations", default=None,
                        help=f"refuse {what} if it could make more model calls than this "
                             f"(default {MAX_GENERATIONS:,})")


def _parser(prog: str, description: str) -> OptionParser:
    parser = OptionParser(prog=prog, description=description, add_help=False,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.magic = f"%%{prog}"
    return parser


def strategy_parser(name: str) -> OptionParser:
    """The option parser of ``%%<name>``, made from the strategy's spec (one flag per option)."""
    from reflectnb.strategies.spec import get_strategy

    spec = get_strategy(name, "magic")
    parser = _parser(name, f"{spec.summary} The cell is the {spec.task_name}.")
    for f in spec.fields:
        _add_option(parser, f)
    if spec.calls is not None:
        add_budget_option(parser)
    add_generation_options(parser)
    add_output_options(parser)
    return parser


def _add_option(parser: argparse.ArgumentParser, f: Any) -> None:
    """One spec option as a flag: typed and checked by the spec's own check, ``None`` when not given."""
    flags = [f.info.short, f.flag] if f.info.short else [f.flag]
    default = "" if f.default in (None, [], False) else f" (default {f.default})"
    if f.type is bool:
        parser.add_argument(*flags, action="store_true", dest=f.name, default=None, help=f.info.help)
    elif f.info.model:
        many = "comma-separated model names or Python variables holding loaded models: "
        one = "a model name, or a Python variable holding a loaded model: "
        parser.add_argument(*flags, dest=f.name, metavar="MODELS" if f.info.many else "MODEL",
                            help=(many if f.info.many else one) + f.info.help + default)
    elif f.info.variable:
        parser.add_argument(*flags, dest=f.name, metavar="VAR", help=f"{f.info.help}, in this Python variable")
    else:
        parser.add_argument(*flags, dest=f.name, type=_reader(f), choices=f.info.choices,
                            metavar=None if f.info.choices else f.name.upper(), help=f.info.help + default)


def _reader(f: Any) -> Any:
    """``text -> value`` for argparse: the field's type, then its check; errors as argparse expects them."""
    def read(text: str) -> Any:
        try:
            try:
                value = _parse_scalar(f.type, text)
            except OptionError:
                if f.info.check is None:
                    raise
                value = text  # the option's own check says what the value must be
            return f.check(value)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace(f"`{f.name}` ", "", 1)) from None

    read.__name__ = {int: "integer", float: "number"}.get(f.type, "value")
    return read


def _parse_scalar(kind: Any, text: str) -> Any:
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise OptionError(f"must be a whole number, got {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise OptionError(f"must be a number, got {text!r}") from None
    return text


class _Parsers(Mapping):
    """``{magic name: parser factory}`` for every strategy with a cell magic, read from the registry."""

    def __getitem__(self, name: str) -> Any:
        from reflectnb.strategies.spec import strategies

        if name not in strategies("magic"):
            raise KeyError(name)
        return lambda: strategy_parser(name)

    def __iter__(self):
        from reflectnb.strategies.spec import strategies

        return iter(strategies("magic"))

    def __len__(self) -> int:
        from reflectnb.strategies.spec import strategies

        return len(strategies("magic"))


PARSERS = _Parsers()


def parse_line(magic: str, line: str) -> argparse.Namespace:
    """Parse a magic's option line (``shlex`` quoting) into a Namespace."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise OptionError(f"%%{magic}: cannot parse the options ({exc}); check the quotes") from None
    return strategy_parser(magic).parse_args(words)


def magic_help(magic: str) -> str:
    """What ``%%<magic>?`` shows: how to call it, then the option parser's own help."""
    from reflectnb.strategies.spec import get_strategy

    spec = get_strategy(magic, "magic")
    return (f"%%{magic} [options]\n<{spec.task_name}>\n\n{CELL_NOTE}\n\n"
            f"{strategy_parser(magic).format_help()}")


CELL_NOTE = "In the cell, {name} is replaced by the Python variable name; {{ and }} are literal braces."


def fill_cell(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` with Python variables; ``{{``/``}}`` give literal braces.

    ``{name.attr}``, ``{name[key]}``, ``!r`` and ``:spec`` work as in ``str.format``;
    a placeholder that fails (a missing key or attribute, a bad format spec, an
    object whose ``__format__`` raises) is one :class:`OptionError` naming it.

    Examples
    --------
    >>> fill_cell("Solve {task} and return {{x}}", {"task": "2+2"})
    'Solve 2+2 and return {x}'
    >>> fill_cell("{d[b]}", {"d": {"a": 1}})
    Traceback (most recent call last):
    ...
    reflectnb.errors.OptionError: the cell's placeholder {d[b]} failed (KeyError: 'b'); fix it, or write {{ and }} for literal braces
    """
    try:
        return _fill(text, namespace, depth=2)
    except OptionError:
        raise
    except ValueError as exc:  # from str.format's parser: a lone brace, an unclosed field
        raise OptionError(f"cannot fill the cell's {{placeholders}}: {exc}; write {{{{ and }}}} "
                          "for literal braces") from None


_FORMATTER = string.Formatter()


def _fill(text: str, namespace: Mapping[str, Any], depth: int) -> str:
    if depth < 0:
        raise OptionError("the cell's {placeholders} are nested too deeply; write {{ and }} for literal braces")
    out = []
    for literal, field, spec, conversion in _FORMATTER.parse(text):
        out.append(literal)
        if field is not None:
            out.append(_placeholder(field, spec or "", conversion, namespace, depth))
    return "".join(out)


def _placeholder(field: str, spec: str, conversion: str | None, namespace: Mapping[str, Any], depth: int) -> str:
    name = field.split(".")[0].split("[")[0]
    if not name:
        raise OptionError("the cell has an empty placeholder {}; name a Python variable, e.g. {task}, "
                          "or write {{ and }} for literal braces")
    if name not in namespace:
        raise OptionError(f"the cell uses {{{name}}} but no Python variable {name!r} exists; "
                          "define it, or write {{ and }} for literal braces")
    try:
        value = _FORMATTER.convert_field(_FORMATTER.get_field(field, (), namespace)[0], conversion)
        return _FORMATTER.format_field(value, _fill(spec, namespace, depth - 1))
    except ReflectnbError:
        raise
    except Exception as exc:  # the user's objects may raise anything from __getitem__ / __format__
        shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise OptionError(f"the cell's placeholder {shown[:80]} failed ({why[:160]}); fix it, "
                          "or write {{ and }} for literal braces") from None
