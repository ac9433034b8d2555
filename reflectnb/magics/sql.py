"""``%reflect_sql`` / ``%%reflect_sql``: options, variable binding and the call to the store.

Usage::

    %reflect_sql SELECT * FROM run_summary
    %reflect_sql -o usage SELECT * FROM reflection_usage WHERE model = $model
    %%reflect_sql --chart bar:kind,n
    SELECT kind, count(*) AS n FROM runs GROUP BY kind

Contract
--------
* Options come first, SQL after them (line magic) or in the cell (cell
  magic): ``--write`` allows changes (read-only otherwise), ``-o/--output NAME``
  stores the DataFrame in the user namespace, ``--chart MARK[:X,Y[,COLOR]]``
  also displays an altair chart, ``--path FILE`` queries another trace file.
* ``$name`` and ``{name}`` take the value of the Python variable ``name`` as a
  bound parameter; values are never pasted into the SQL text.
* Without ``--write`` nothing changes (:mod:`reflectnb.store.readonly` decides
  what only reads) and a missing trace file is an error, never created.
* :func:`reflect_sql` returns the DataFrame; bad options and SQL errors raise
  :class:`~reflectnb.errors.ReflectnbError` subclasses (the magic shows them as
  one line).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import pandas as pd

from reflectnb.errors import OptionError
from reflectnb.option_parser import OptionParser
from reflectnb.store.queries import QueryError, bind_braces, statements

MARKS = ("bar", "line", "point", "area", "tick", "rect", "circle")
_VALUED = {"-o", "--output", "--chart", "--path"}
_OPTION = re.compile(r"^--?[A-Za-z][\w-]*$")  # "-- comment" (with a space) stays SQL


def parser() -> OptionParser:
    """The option parser (its ``format_help()`` is the magic's help text)."""
    p = OptionParser(prog="%reflect_sql", add_help=False,
                     description="Query the reflectnb trace store with DuckDB SQL (read-only unless --write).")
    p.magic = "%reflect_sql"
    p.add_argument("--write", "-w", action="store_true", help="allow statements that change the database")
    p.add_argument("-o", "--output", metavar="NAME", help="store the DataFrame in this variable")
    p.add_argument("--chart", metavar="MARK[:X,Y[,COLOR]]",
                   help=f"also draw an altair chart; MARK is one of {', '.join(MARKS)}; "
                        "X and Y default to the first two columns")
    p.add_argument("--path", metavar="FILE", help="query this trace database instead of the default")
    p.add_argument("-h", "--help", action="store_true", help="show this help")
    return p


def split_line(line: str) -> tuple[list[str], str]:
    """Leading option tokens of ``line`` and the SQL after them.

    Examples
    --------
    >>> split_line("-o df --write SELECT 1 -- note")
    (['-o', 'df', '--write'], 'SELECT 1 -- note')
    """
    tokens, rest = [], line.strip()
    while rest:
        head, *tail = rest.split(None, 1)
        if not _OPTION.match(head):
            break
        tokens.append(head)
        rest = tail[0] if tail else ""
        if head in _VALUED and rest:
            value, *tail = rest.split(None, 1)
            tokens.append(value)
            rest = tail[0] if tail else ""
    return tokens, rest


def parse(line: str, cell: str | None) -> tuple[argparse.Namespace, str]:
    """Options and SQL text for a line (and cell) of the magic."""
    tokens, sql = split_line(line)
    opts = parser().parse_args(tokens)
    if cell is not None:
        if sql:
            raise OptionError(f"%%reflect_sql: put the SQL in the cell, not on the magic line ({sql[:40]!r})")
        sql = cell
    if opts.output and not opts.output.isidentifier():
        raise OptionError(f"%reflect_sql: -o must name a Python variable, got {opts.output!r}")
    return opts, sql.strip()


def reflect_sql(line: str, cell: str | None, user_ns: dict[str, Any]) -> pd.DataFrame | None:
    """Run the magic: parse, bind ``$name``/``{name}`` from ``user_ns``, query, return the DataFrame.

    Examples
    --------
    >>> ns = {"kind": "reflect"}
    >>> int(reflect_sql("--path :memory: SELECT count(*) AS n FROM runs WHERE kind = $kind", None, ns)["n"][0])
    0
    """
    opts, sql = parse(line, cell)
    if opts.help:
        print(parser().format_help())
        return None
    if not sql:
        raise OptionError("%reflect_sql: no SQL given; e.g. %reflect_sql SELECT * FROM run_summary")
    query = bind_braces(sql)
    params = _bind(query, user_ns)
    from reflectnb.store.core import open_store

    frame = open_store(opts.path, create=opts.write).sql(query, params, write=opts.write)
    if opts.output:
        user_ns[opts.output] = frame
    if opts.chart:
        from IPython.display import display

        display(chart(frame, opts.chart))
    return frame


def _bind(query: str, user_ns: dict[str, Any]) -> dict[str, Any]:
    names = set().union(*(s.named_parameters for s in statements(query)))
    missing = sorted(n for n in names if n not in user_ns)
    if missing:
        raise QueryError(f"%reflect_sql: the query uses ${missing[0]}, but no Python variable "
                         f"{missing[0]!r} exists; define it first (its value is bound, not pasted)")
    return {n: user_ns[n] for n in names}


def chart(frame: pd.DataFrame, spec: str) -> Any:
    """An altair chart of ``frame`` from ``MARK[:X,Y[,COLOR]]``.

    Examples
    --------
    >>> chart(pd.DataFrame({"k": ["a"], "n": [1]}), "bar").to_dict()["mark"]["type"]
    'bar'
    """
    import altair as alt

    mark, _, fields = spec.partition(":")
    if mark not in MARKS:
        raise OptionError(f"--chart: mark must be one of {list(MARKS)}, got {mark!r}")
    columns = [c.strip() for c in re.split(r",", fields) if c.strip()] or list(frame.columns[:2])
    unknown = [c for c in columns if c not in frame.columns]
    if len(columns) < 2 or unknown:
        raise OptionError(f"--chart needs two result columns for x and y; got {columns} "
                          f"(columns are {list(frame.columns)})")
    encoding = {"x": columns[0], "y": columns[1], "tooltip": list(frame.columns)}
    if len(columns) > 2:
        encoding["color"] = columns[2]
    return getattr(alt.Chart(frame), f"mark_{mark}")().encode(**encoding)
