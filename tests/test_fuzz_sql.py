"""Fuzzing read-only SQL: any text either runs and changes nothing, or is one readable error.

Statements are drawn from pieces of real SQL (tables, views, table functions, side-effect
functions, every writing statement of test_store_readonly, EXPLAIN prefixes, comments, CTEs
with DML, bound parameters holding odd Python values) and from arbitrary text, joined into multi-statement inputs.
Each input goes through ``store.sql`` (a file store) or ``%%reflect_sql`` (the :memory: store).
Allowed outcomes: a DataFrame with no file and no table changed, or a ReflectnbError
(UsageError through the magic). Anything else fails.

Budget: REFLECTNB_FUZZ_EXAMPLES examples on the file store (default 100, about 15 s on a
loaded 2-core machine) and three times that on :memory: (about 5 s); e.g. ``REFLECTNB_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_sql.py``.
The whole test is bounded by its timeout; the seeded store is tiny and sleep_ms is refused,
so one example cannot run long.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from collections import Counter

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from reliability_counts import record
from test_store_readonly import READS, WRITES, folder_state, seed, store_state

from reflectnb.errors import ReflectnbError
from reflectnb.store import open_store

EXAMPLES = int(os.environ.get("REFLECTNB_FUZZ_EXAMPLES", "100"))
SOURCES = ["runs", "steps", "generations", "tokens", "node_events", "scores", "run_summary", "token_text",
           "reflection_usage", "nodes", "range(3)", "read_csv('{out}/user.csv')", "'{out}/user.csv'",
           "duckdb_tables()", "pragma_table_info('runs')", "checkpoint()", "query('SELECT 1')",
           "enable_logging()", "missing_table", "(SELECT 1 AS a)", "glob('{out}/*')"]
EXPRS = ["*", "count(*)", "1", "NULL", "'x'", "run_id", "kind", "status", "text", "nextval('s')",
         "setseed(0.1)", "random()", "length(text)", "$name", "?", "{name}", "1/0", "'a'::INTEGER", "[1, 2]",
         "{'a': 1}", "INTERVAL 1 DAY", "1e308 * 10", "'\x00'", "'😀'", "$$dollar$$", "sleep_ms(1)",
         "write_log('x')", "current_query()", "(SELECT count(*) FROM tokens)", "error('boom')", "1::UHUGEINT",
         "'infinity'::DATE", "'12:00:00+02'::TIMETZ", "'a'::UNION(a VARCHAR, b INT)", "MAP {'a': 1}"]
VALUES = [None, 1, -1.5, float("nan"), 10**40, "'; DROP TABLE runs; --", "\udcff", b"\x00\xff", [1, "a"],
          {"a": [1, {"b": None}]}, {1, 2}, object(), 1 + 2j, decimal.Decimal("1.5"), dt.datetime(2020, 1, 1)]
PREFIXES = ["", "EXPLAIN ", "EXPLAIN ANALYZE ", "EXPLAIN (FORMAT json) ", "/* c */ ", "-- c\n",
            "WITH c AS (SELECT 1) ", "WITH d AS (DELETE FROM runs RETURNING *) ", "(", "DESCRIBE ", "SUMMARIZE "]
JOINS = ["; ", ";\n", " ; -- x\n", " /* ; */ ; "]
WORDS = ["SELECT", "FROM", "WHERE", "DROP", "COPY", "TO", "INSERT", "EXPLAIN", "ANALYZE", "WITH", "AS", "(", ")",
         ";", "'", '"', "--", "/*", "*/", "$1", "?", "PRAGMA", "CALL", "SET", "ATTACH", "runs", "*", ",", "$$"]


@st.composite
def select(draw) -> str:
    cols = ", ".join(draw(st.lists(st.sampled_from(EXPRS), min_size=1, max_size=3)))
    sql = f"SELECT {cols} FROM {draw(st.sampled_from(SOURCES))}"
    if draw(st.booleans()):
        sql += f" WHERE {draw(st.sampled_from(EXPRS))} = {draw(st.sampled_from(EXPRS))}"
    if draw(st.booleans()):
        sql += " LIMIT 3"
    return sql


def statement() -> st.SearchStrategy[str]:
    return st.one_of(
        select(),
        st.sampled_from(READS),
        st.sampled_from(WRITES),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join),
        st.text(max_size=40),
    )


@st.composite
def sql_text(draw) -> str:
    parts = draw(st.lists(statement(), min_size=1, max_size=3))
    joined = parts[0]
    for part in parts[1:]:
        joined += draw(st.sampled_from(JOINS)) + part
    return draw(st.sampled_from(PREFIXES)) + joined


def fuzz(run, store, out, counts: Counter, examples: int) -> None:
    """Hypothesis over ``run(sql)``; each outcome is counted into ``counts``."""
    files, content = folder_state(out), store_state(store)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(template=sql_text(), value=st.sampled_from(VALUES))
    def check(template, value):
        sql = template.replace("{out}", str(out))
        counts["tried"] += 1
        try:
            frame = run(sql, value)
            assert frame is None or isinstance(frame, pd.DataFrame)
            counts["ran"] += 1
        except (ReflectnbError, UsageError) as exc:
            assert str(exc).strip(), sql
            counts["clear_error"] += 1
        assert folder_state(out) == files, f"a file changed: {sql!r}"
        assert store_state(store) == content, f"the store changed: {sql!r}"

    check()


@pytest.mark.timeout(600)
def test_fuzzed_sql_on_a_file_store_runs_unchanged_or_is_one_readable_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user.csv").write_text("a,b\n1,x\n")
    store = open_store(tmp_path / "traces.duckdb")
    seed(store)
    counts: Counter = Counter()
    fuzz(lambda sql, value: store.sql(sql, {"name": value}), store, tmp_path, counts, EXAMPLES)
    record("sql_readonly", part="fuzzed, file store, Python API", tried=counts["tried"], ran_unchanged=counts["ran"],
           clear_error=counts["clear_error"], other=0, files_written=0, store_changed=0,
           larger_budget="REFLECTNB_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_sql.py")
    assert counts["tried"] >= EXAMPLES and counts["clear_error"] > 0 and counts["ran"] > 0


@pytest.mark.timeout(600)
def test_fuzzed_sql_through_the_cell_magic_on_memory_runs_unchanged_or_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user.csv").write_text("a,b\n1,x\n")
    store = open_store(":memory:")
    seed(store)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "reflectnb")
    counts: Counter = Counter()

    def run(sql, value):
        shell.user_ns["name"] = value  # $name and {name} bind this Python value
        return shell.run_cell_magic("reflect_sql", "--path :memory:", sql)

    try:
        fuzz(run, store, tmp_path, counts, 3 * EXAMPLES)  # no file to open per query: cheaper
    finally:
        shell.user_ns.pop("name", None)
    record("sql_readonly", part="fuzzed, :memory:, %%reflect_sql", tried=counts["tried"], ran_unchanged=counts["ran"],
           clear_error=counts["clear_error"], other=0, files_written=0, store_changed=0,
           larger_budget="REFLECTNB_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_sql.py")
    assert counts["tried"] >= EXAMPLES and counts["clear_error"] > 0 and counts["ran"] > 0
