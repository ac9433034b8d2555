"""Deciding whether user SQL only reads, from DuckDB's own parse of it.

Contract
--------
:func:`refusal` returns ``None`` for a statement that only reads, else one
line saying what was refused and to add ``--write``. It never runs the SQL.
A statement only reads when

* DuckDB's parser types it ``SELECT`` (``SHOW``, ``DESCRIBE``, ``SUMMARIZE``,
  ``FROM t``, ``VALUES`` and ``PIVOT … IN (…)`` are SELECTs too), or
  ``EXPLAIN [ANALYZE]`` of such a statement (the statement inside EXPLAIN is
  re-parsed by DuckDB and checked the same way: ``EXPLAIN ANALYZE`` runs it);
* and DuckDB's syntax tree of it (``json_serialize_sql``) holds only query
  nodes (``WITH x AS (DELETE … RETURNING *) SELECT …`` is typed SELECT by the
  parser but carries a DELETE node: refused);
* and it calls no scalar function that DuckDB marks ``has_side_effects``
  (``nextval``, ``setval``, ``setseed``, ``write_log``, ``sleep_ms`` …) except
  the ones that only draw random numbers or read session facts
  (:data:`HARMLESS_VOLATILE`), and only table functions that read
  (:data:`READ_TABLE_FUNCTIONS`: ``read_csv``, ``read_parquet``, ``range``,
  ``duckdb_tables()`` …). ``checkpoint()``, ``enable_logging()``, ``query()``
  and any table function not known to only read are refused.

Everything else — INSERT … CHECKPOINT, COPY, EXPORT, ATTACH, INSTALL/LOAD,
SET, PRAGMA, CALL, transactions, PIVOT without an IN list (it creates types) —
is refused by statement type. PRAGMA and CALL are refused as a whole because
some of them write (``PRAGMA import_database``, ``CALL enable_logging(...)``);
their read-only forms are SELECTs (``SELECT * FROM pragma_table_info('runs')``,
``DESCRIBE runs``, ``SHOW TABLES``).

Non-goals: stopping the notebook's user from reading their own files
(``read_csv('~/data.csv')`` works, as in any DuckDB session).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import duckdb

QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
HARMLESS_VOLATILE = frozenset({
    "random", "uuid", "gen_random_uuid", "uuidv4", "uuidv7", "error", "vector_type", "stats",
    "current_query", "current_query_id", "current_transaction_id", "current_connection_id"})
READ_TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "glob", "repeat", "repeat_row", "sniff_csv", "query_table",
    "summary", "json_each", "json_tree", "seq_scan", "test_all_types", "test_vector_types",
    "icu_calendar_names", "pg_timezone_names", "which_secret", "arrow_scan", "pandas_scan"})
READ_TABLE_PREFIXES = ("read_", "parquet_", "duckdb_", "pragma_")
HINT = "%reflect_sql is read-only by default. Add --write (write=True in Python) to run it"

_PARSER: Any = None  # an empty in-memory database, only for json_serialize_sql and duckdb_functions()
_PARSER_LOCK = threading.Lock()
_SIDE_EFFECTS: frozenset[str] | None = None


def _ask(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is None:
            _PARSER = duckdb.connect(":memory:", config={"autoload_known_extensions": False,
                                                        "autoinstall_known_extensions": False})
        return _PARSER.execute(sql, params).fetchall()


def refusal(statement: Any) -> str | None:
    """Why ``statement`` (from ``duckdb.extract_statements``) may not run read-only, or None.

    Examples
    --------
    >>> refusal(duckdb.extract_statements("SELECT count(*) FROM runs")[0]) is None
    True
    >>> refusal(duckdb.extract_statements("EXPLAIN ANALYZE DROP TABLE runs")[0])[:40]
    'EXPLAIN of a DROP statement is refused: '
    """
    kind = _kind(statement)
    text = statement.query.strip()
    if kind is None:
        why = "statements of a type the duckdb Python API cannot name are"
    elif kind == "SELECT":
        why = _select_refusal(text)
    elif kind == "EXPLAIN":
        why = _explain_refusal(text)
    else:
        why = f"{kind} statements are"
    return None if why is None else f"{why} refused: {HINT} ({_snippet(text)})."


def _explain_refusal(text: str) -> str | None:
    inner = _explained(text)
    if not inner:
        return "an EXPLAIN whose statement DuckDB cannot parse is"
    for statement in inner:
        kind = _kind(statement) or "statement-type-unknown"
        if kind == "EXPLAIN":
            why = _explain_refusal(statement.query.strip())
        elif kind == "SELECT":
            why = _select_refusal(statement.query.strip())
        else:
            why = f"EXPLAIN of a {kind} statement is"
        if why is not None:
            return why if why.startswith("EXPLAIN") else f"EXPLAIN of {why[0].lower()}{why[1:]}"
    return None


def _explained(text: str) -> list[Any]:
    """The statement(s) DuckDB parses after ``EXPLAIN``, ``ANALYZE`` and an options list.

    Each place the inner statement could start is re-parsed; every reading that
    parses as one statement is returned, so all of them must pass the check.
    """
    tokens = [(pos, kind) for pos, kind in duckdb.tokenize(text) if kind != duckdb.token_type.comment]
    starts, i = [], 1  # tokens[0] is EXPLAIN
    if i < len(tokens):
        starts.append(tokens[i][0])
    if i < len(tokens) and text[tokens[i][0]:tokens[i][0] + 7].upper() == "ANALYZE":
        i += 1
        if i < len(tokens):
            starts.append(tokens[i][0])
    if i < len(tokens) and text[tokens[i][0]] == "(":
        i = _after_parens(text, tokens, i)
        if i < len(tokens):
            starts.append(tokens[i][0])
    found = []
    for start in starts:
        try:
            parsed = duckdb.extract_statements(text[start:])
        except Exception:  # noqa: BLE001 - this reading does not parse; try the next
            continue
        if len(parsed) == 1:
            found.append(parsed[0])
    return found


def _after_parens(text: str, tokens: list[tuple[int, Any]], i: int) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j][1] == duckdb.token_type.operator:
            char = text[tokens[j][0]]
            depth += (char == "(") - (char == ")")
            if depth == 0:
                return j + 1
    return len(tokens)


def _select_refusal(text: str) -> str | None:
    """Refuse a SELECT whose syntax tree holds a non-query node or a writing function."""
    tree = json.loads(_ask("SELECT json_serialize_sql($q)", {"q": text})[0][0])
    if tree.get("error"):
        return f"a query DuckDB cannot check ({tree.get('error_message', '')[:120]}) is"
    return _walk(tree.get("statements", []))


def _walk(node: Any) -> str | None:
    if isinstance(node, list):
        for item in node:
            why = _walk(item)
            if why:
                return why
        return None
    if not isinstance(node, dict):
        return None
    kind = node.get("type")
    if isinstance(kind, str) and kind.endswith("_NODE") and kind not in QUERY_NODES:
        return f"a {kind.removesuffix('_NODE').removesuffix('_QUERY')} inside a query is"
    if kind == "TABLE_FUNCTION":
        name = str((node.get("function") or {}).get("function_name", "")).lower()
        if name not in READ_TABLE_FUNCTIONS and not name.startswith(READ_TABLE_PREFIXES):
            return f"the table function {name}() is not known to only read, so it is"
    if node.get("class") == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if name in side_effect_functions():
            return f"the function {name}() changes state, so it is"
    for value in node.values():
        why = _walk(value)
        if why:
            return why
    return None


def side_effect_functions() -> frozenset[str]:
    """Scalar functions DuckDB marks ``has_side_effects``, less :data:`HARMLESS_VOLATILE`."""
    global _SIDE_EFFECTS
    if _SIDE_EFFECTS is None:
        names = _ask("SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE has_side_effects")
        _SIDE_EFFECTS = frozenset(n for (n,) in names) - HARMLESS_VOLATILE
    return _SIDE_EFFECTS


def _kind(statement: Any) -> str | None:
    try:
        return statement.type.name
    except ValueError:  # a StatementType newer than the Python enum, e.g. UPDATE EXTENSIONS
        return None


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= 60 else flat[:57] + "...")
