"""Option parsers for the cell magics: one parser per magic, built from shared groups.

Each magic line is parsed into a plain ``argparse.Namespace`` by a parser made
here; a bad option raises :class:`~reflectnb.errors.OptionError` with argparse's
own message (which the magic shows as a one-line ``UsageError``). The docs'
magic reference is generated from these same parsers (``parser.format_help()``).

Also here: :func:`fill_cell`, which pulls ``{name}`` Python variables into a
cell's text (``{{`` and ``}}`` stay literal braces); :func:`magic_help`, the
text ``%%reflect?`` shows (the parser's own help); and
:func:`generation_estimate`, how many model calls a loop's options ask for, so
``--rounds 1000000000`` is refused in a millisecond with the estimate (the same
check tree search makes with its node estimate).
"""

from __future__ import annotations

import argparse
import keyword
import math
import shlex
import string
from typing import Any, Mapping

from reflectnb.errors import OptionError, ReflectnbError

MAX_GENERATIONS = 10_000  # model calls one loop magic may make before it refuses (--max-generations raises it)
MAX_TOKENS = 1_000_000  # new tokens per generation: above any model's context, so larger is a typo
SEED_LIMIT = 2**32  # numpy and torch both take seeds in [0, 2**32)


class OptionParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing and exiting.

    ``magic`` is how the user typed the magic (``%%reflect`` for a cell magic,
    ``%reflect_eval`` for a line magic), so the error line points at a help that
    IPython can find: ``%%reflect?``.
    """

    magic = ""

    def error(self, message: str):  # type: ignore[override]
        magic = self.magic or f"%{self.prog}"
        raise OptionError(f"{magic}: {message}  (see `{magic}?` for the options)")

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        raise OptionError(message or f"{self.magic or self.prog}: bad options")


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {number}")
    return number


def non_negative_float(value: str) -> float:
    """A finite number >= 0: ``nan`` and ``inf`` are refused (they would reach the sampler)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value!r}")
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
    parser.add_argument("--max-generations", type=positive_int, dest="max_generations", default=None,
                        help=f"refuse {what} if it could make more model calls than this "
                             f"(default {MAX_GENERATIONS:,})")


def _parser(prog: str, description: str) -> OptionParser:
    parser = OptionParser(prog=prog, description=description, add_help=False,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.magic = f"%%{prog}"
    return parser


def reflect_parser() -> OptionParser:
    parser = _parser("reflect", "Draft -> self-feedback -> refine (Self-Refine). The cell is the task.")
    parser.add_argument("-r", "--rounds", type=positive_int, default=None, help="max feedback rounds (default 3)")
    parser.add_argument("--history", choices=["full", "last"], help="what the refiner sees (default full)")
    parser.add_argument("--tone", help="feedback tone variant, e.g. encouraging or strict")
    parser.add_argument("--templates", metavar="VAR", help="a dict of prompt templates in this variable")
    add_budget_option(parser)
    add_generation_options(parser)
    add_output_options(parser)
    return parser


def critique_parser() -> OptionParser:
    parser = _parser("critique", "An actor answers step by step; a critic judges each step; the actor revises.")
    parser.add_argument("-r", "--rounds", type=positive_int, default=None, help="critique rounds (default 1)")
    parser.add_argument("--critic", help="critic model name, or a Python variable holding a loaded model "
                        "(default: the actor's model)")
    parser.add_argument("--refine-policy", choices=["always", "if_wrong"], dest="refine_policy",
                        help="when the actor revises (default always)")
    parser.add_argument("--templates", metavar="VAR", help="a dict of prompt templates in this variable")
    add_budget_option(parser)
    add_generation_options(parser)
    add_output_options(parser)
    return parser


def debate_parser() -> OptionParser:
    parser = _parser("debate", "Multi-agent debate: MAD (affirmative/negative/moderator) or Du et al. (N agents).")
    parser.add_argument("--method", choices=["du", "mad"], default="du", help="debate protocol (default du)")
    parser.add_argument("-r", "--rounds", type=positive_int, default=None, help="debate rounds (default 2; MAD 3)")
    parser.add_argument("-a", "--agents", type=positive_int, default=None,
                        help="number of agents (du only; default 3)")
    parser.add_argument("--models", help="comma-separated model names or Python variables holding loaded "
                        "models: one per agent (du), or 3 for affirmative,negative,moderator (mad); "
                        "instead of -m")
    parser.add_argument("--aggregator", choices=["majority", "judge"], help="how du picks the answer (du only)")
    parser.add_argument("--templates", metavar="VAR", help="a dict of prompt templates in this variable")
    add_budget_option(parser)
    add_generation_options(parser)
    add_output_options(parser)
    return parser


def tree_parser() -> OptionParser:
    parser = _parser("tree", "Tree search over reasoning steps (Tree of Thoughts, ReST-MCTS*). The cell is the task.")
    parser.add_argument("--method", choices=["bfs", "dfs", "mcts", "best_of_n", "self_consistency"],
                        default="bfs", help="search method (default bfs)")
    parser.add_argument("--iterations", type=positive_int, help="MCTS iterations (default 100)")
    parser.add_argument("-b", "--branch", type=positive_int, help="children per expansion")
    parser.add_argument("-d", "--depth", type=positive_int, help="maximum depth (steps)")
    parser.add_argument("-n", type=positive_int, dest="n", help="samples for best_of_n / self_consistency")
    parser.add_argument("--verifier", metavar="VAR", help="a function (state text) -> bool | float in this variable")
    parser.add_argument("--game24", action="store_true", help="treat the cell as four numbers for the game of 24")
    add_generation_options(parser)
    add_output_options(parser)
    return parser


PARSERS = {"reflect": reflect_parser, "critique": critique_parser, "debate": debate_parser, "tree": tree_parser}


def parse_line(magic: str, line: str) -> argparse.Namespace:
    """Parse a magic's option line (``shlex`` quoting) into a Namespace."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise OptionError(f"%%{magic}: cannot parse the options ({exc}); check the quotes") from None
    return PARSERS[magic]().parse_args(words)


def magic_help(magic: str, summary: str) -> str:
    """The docstring of a magic: ``summary`` then the option parser's own help (what ``%%reflect?`` shows)."""
    return f"{summary}\n\n{PARSERS[magic]().format_help()}"


LOOP_CALLS = {  # model calls per loop, from its options: (formula shown to the user, function)
    "reflect": ("1 draft + 2 calls per round", lambda rounds, agents: 1 + 2 * rounds),
    "critique": ("1 answer + 2 calls per round", lambda rounds, agents: 1 + 2 * rounds),
    "du": ("agents x rounds, + 1 judge", lambda rounds, agents: agents * rounds + 1),
    "mad": ("3 roles x rounds, + 1 judge", lambda rounds, agents: 3 * rounds + 1),
}
DEFAULT_ROUNDS = {"reflect": 3, "critique": 1, "du": 2, "mad": 3}


def generation_estimate(loop: str, rounds: int | None, agents: int | None = None) -> tuple[int, str]:
    """At most how many model calls a loop makes, and how that was counted.

    ``loop`` is ``reflect``, ``critique``, ``du`` or ``mad`` (the debate methods).

    Examples
    --------
    >>> generation_estimate("reflect", 1_000_000_000)
    (2000000001, 'rounds 1,000,000,000: 1 draft + 2 calls per round')
    """
    rounds = rounds or DEFAULT_ROUNDS[loop]
    agents = agents or 3
    formula, count = LOOP_CALLS[loop]
    detail = f"rounds {rounds:,}" + (f", agents {agents:,}" if loop == "du" else "")
    return count(rounds, agents), f"{detail}: {formula}"


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
