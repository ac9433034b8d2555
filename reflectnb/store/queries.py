"""Running user SQL against the trace store: read-only by default, values always bound.

Contract
--------
* :func:`run_sql` splits the text with DuckDB's own parser
  (``duckdb.extract_statements``) and, unless ``write=True``, refuses any
  statement that :mod:`reflectnb.store.readonly` cannot show to only read
  (by statement type, the statement inside EXPLAIN, DuckDB's syntax tree and
  the functions called) before anything runs. Defence in depth: a file is
  queried on a ``read_only`` connection with extension autoloading off, and a
  ``:memory:`` store runs the query inside a transaction that is rolled back.
* Python values are bound as DuckDB parameters (``$name``), never pasted into
  the SQL text. :func:`bind_braces` rewrites ``{name}`` outside string literals
  and comments into ``$name`` so both spellings bind.
* A DuckDB error becomes a :class:`QueryError` carrying DuckDB's message
  (no traceback through reflectnb).
* The result of the last statement is returned as a pandas DataFrame.

Non-goals: sandboxing SQL from the notebook's own user (file-reading table
functions stay available, as in any DuckDB session: those files are the
user's own).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import duckdb
import pandas as pd

from reflectnb.errors import ReflectnbError
from reflectnb.store.readonly import refusal

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class QueryError(ReflectnbError, ValueError):
    """A SQL query failed or was refused (the message is DuckDB's, or says what to add)."""


def statements(query: str) -> list[Any]:
    """DuckDB's parse of ``query`` (one object per statement, with ``.type``)."""
    try:
        parsed = duckdb.extract_statements(query)
    except Exception as exc:  # noqa: BLE001 - duckdb.Error, or ValueError for a type the enum lacks
        raise QueryError(f"SQL error: {_first_line(exc)}") from None
    if not parsed:
        raise QueryError("no SQL statement given; write e.g. SELECT * FROM run_summary")
    return parsed


def check_read_only(parsed: Sequence[Any]) -> None:
    """Refuse statements that could change the database (unless ``--write`` is given)."""
    for statement in parsed:
        why = refusal(statement)
        if why is not None:
            raise QueryError(why)


def run_sql(db: Any, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None,
            write: bool = False) -> pd.DataFrame:
    """Run ``query`` on ``db`` (a :class:`Database`) and return the last result.

    Examples
    --------
    >>> run_sql(db, "SELECT count(*) AS n FROM runs WHERE kind = $kind", {"kind": "reflect"})  # doctest: +SKIP
    """
    parsed = statements(query)
    if not write:
        check_read_only(parsed)
    try:
        with db.connect(read_only=not write) as con:
            if write or not db.memory:
                return _execute_all(con, parsed, params)
            con.execute("BEGIN")  # :memory: cannot be opened read-only: undo whatever a read did
            try:
                return _execute_all(con, parsed, params)
            finally:
                con.execute("ROLLBACK")
    except duckdb.Error as exc:
        raise QueryError(f"SQL error: {_first_line(exc)}") from None


def _execute_all(con: Any, parsed: Sequence[Any], params: Any) -> pd.DataFrame:
    frame = pd.DataFrame()
    for statement in parsed:
        frame = _execute(con, statement, params)
    return frame


def _execute(con: Any, statement: Any, params: Any) -> pd.DataFrame:
    if isinstance(params, Mapping):
        names = set(statement.named_parameters)
        missing = names - set(params)
        if missing:
            raise QueryError(f"the query uses ${sorted(missing)[0]} but no value was given for it; "
                             "pass params={...} (or define the Python variable for %reflect_sql)")
        bound: Any = {k: params[k] for k in names} or None
    else:
        bound = list(params) if params else None
    result = con.execute(statement.query, bound) if bound else con.execute(statement.query)
    if not result.description:
        return pd.DataFrame()
    names = [column[0] for column in result.description]
    if any("\x00" in name for name in names):
        # DuckDB's DataFrame conversion mixes up columns whose names hold a NUL character (found by
        # tests/test_fuzz_sql.py: SELECT '\x00', '\x00', * FROM runs); build this rare frame from the rows
        return pd.DataFrame.from_records(result.fetchall(), columns=names)
    return result.df()


def bind_braces(query: str) -> str:
    """Rewrite ``{name}`` to ``$name`` outside quotes and comments.

    Examples
    --------
    >>> bind_braces("SELECT '{x}' AS lit, {x} AS val")
    "SELECT '{x}' AS lit, $x AS val"
    """
    out, i, n = [], 0, len(query)
    while i < n:
        skip = _skip(query, i)
        if skip > i:
            out.append(query[i:skip])
            i = skip
            continue
        m = _IDENT.match(query, i + 1) if query[i] == "{" else None
        if m and m.end() < n and query[m.end()] == "}":
            out.append("$" + m.group(0))
            i = m.end() + 1
        else:
            out.append(query[i])
            i += 1
    return "".join(out)


def _skip(query: str, i: int) -> int:
    """End of a quoted string, dollar-quoted string or comment starting at ``i`` (else ``i``)."""
    if query[i] in "'\"":
        end = i + 1
        while True:
            end = query.find(query[i], end)
            if end < 0:
                return len(query)
            if query[end + 1: end + 2] != query[i]:
                return end + 1
            end += 2
    if query.startswith("--", i):
        end = query.find("\n", i)
        return len(query) if end < 0 else end
    if query.startswith("/*", i):
        end = query.find("*/", i + 2)
        return len(query) if end < 0 else end + 2
    if query.startswith("$$", i):
        end = query.find("$$", i + 2)
        return len(query) if end < 0 else end + 2
    return i


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if len(text) < 2000 else text[:2000] + " …"
