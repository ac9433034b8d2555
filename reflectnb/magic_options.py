"""Option parsers for the cell magics: one parser per magic, built from shared groups.

Each magic line is parsed into a plain ``argparse.Namespace`` by a parser made
here; a bad option raises :class:`~reflectnb.errors.OptionError` with argparse's
own message (which the magic shows as a one-line ``UsageError``). The docs'
magic reference is generated from these same parsers (``parser.format_help()``).

Also here: :func:`fill_cell`, which pulls ``{name}`` Python variables into a
cell's text (``{{`` and ``}}`` stay literal braces).
"""

from __future__ import annotations

import argparse
import shlex
import string
from typing import Any, Mapping

from reflectnb.errors import OptionError


class OptionParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing and exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise OptionError(f"%{self.prog}: {message}  (see `%{self.prog}?` for the options)")

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        raise OptionError(message or f"%{self.prog}: bad options")


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {number}")
    return number


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {number}")
    return number


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    """Options every generating magic shares."""
    group = parser.add_argument_group("generation")
    group.add_argument("-m", "--model", help="model name, or a Python variable holding a loaded model "
                       "(default: %%config ReflectMagics.model)")
    group.add_argument("-t", "--temperature", type=non_negative_float, help="0 = greedy (default 0)")
    group.add_argument("--max-tokens", type=positive_int, dest="max_tokens",
                       help="new tokens per generation (default 256)")
    group.add_argument("--seed", type=int, help="random seed for sampling")
    group.add_argument("--schedule", help='reflection-token schedule, e.g. "cyclic(amplitude=5, period=600)"')


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """Options about what the magic shows and keeps."""
    group = parser.add_argument_group("output")
    group.add_argument("-o", "--output", metavar="NAME", help="store the result object in this variable")
    group.add_argument("--no-stream", action="store_true", dest="no_stream",
                       help="show the result at the end instead of a live view")
    group.add_argument("--no-trace", action="store_true", dest="no_trace",
                       help="do not write this run to the trace store")


def _parser(prog: str, description: str) -> OptionParser:
    return OptionParser(prog=prog, description=description, add_help=False,
                   formatter_class=argparse.RawDescriptionHelpFormatter)


def reflect_parser() -> OptionParser:
    parser = _parser("reflect", "Draft -> self-feedback -> refine (Self-Refine). The cell is the task.")
    parser.add_argument("-r", "--rounds", type=positive_int, default=None, help="max feedback rounds (default 3)")
    parser.add_argument("--history", choices=["full", "last"], help="what the refiner sees (default full)")
    parser.add_argument("--tone", help="feedback tone variant, e.g. encouraging or strict")
    parser.add_argument("--templates", metavar="VAR", help="a dict of prompt templates in this variable")
    add_generation_options(parser)
    add_output_options(parser)
    return parser


def critique_parser() -> OptionParser:
    parser = _parser("critique", "An actor answers step by step; a critic judges each step; the actor revises.")
    parser.add_argument("-r", "--rounds", type=positive_int, default=None, help="critique rounds (default 1)")
    parser.add_argument("--critic", help="critic model (default: the actor's model)")
    parser.add_argument("--refine-policy", choices=["always", "if_wrong"], dest="refine_policy",
                        help="when the actor revises (default always)")
    parser.add_argument("--templates", metavar="VAR", help="a dict of prompt templates in this variable")
    add_generation_options(parser)
    add_output_options(parser)
    return parser


def debate_parser() -> OptionParser:
    parser = _parser("debate", "Multi-agent debate: MAD (affirmative/negative/moderator) or Du et al. (N agents).")
    parser.add_argument("--method", choices=["du", "mad"], default="du", help="debate protocol (default du)")
    parser.add_argument("-r", "--rounds", type=positive_int, default=None, help="debate rounds (default 2; MAD 3)")
    parser.add_argument("-a", "--agents", type=positive_int, default=None, help="number of agents (du; default 3)")
    parser.add_argument("--models", help="comma-separated models, one per agent (du) or per role (mad)")
    parser.add_argument("--aggregator", choices=["majority", "judge"], help="how du picks the answer")
    parser.add_argument("--templates", metavar="VAR", help="a dict of prompt templates in this variable")
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
        raise OptionError(f"%{magic}: cannot parse the options ({exc}); check the quotes") from None
    return PARSERS[magic]().parse_args(words)


def fill_cell(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` with Python variables; ``{{``/``}}`` give literal braces.

    Examples
    --------
    >>> fill_cell("Solve {task} and return {{x}}", {"task": "2+2"})
    'Solve 2+2 and return {x}'
    """
    try:
        return string.Formatter().vformat(text, (), _Names(namespace))
    except (ValueError, IndexError) as exc:
        raise OptionError(f"cannot fill the cell's {{placeholders}}: {exc}; write {{{{ and }}}} "
                          "for literal braces") from None


class _Names(dict):
    def __init__(self, namespace: Mapping[str, Any]):
        super().__init__()
        self.namespace = namespace

    def __missing__(self, key: str) -> Any:
        if key in self.namespace:
            return self.namespace[key]
        raise OptionError(f"the cell uses {{{key}}} but no Python variable {key!r} exists; "
                          "define it, or write {{ and }} for literal braces")
