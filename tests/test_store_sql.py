"""Querying the store: read-only by default, bound values, errors, and the %reflect_sql magic."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from reflectnb.errors import OptionError, ReflectnbError
from reflectnb.store import QueryError, open_store, sql
from reflectnb.store.queries import bind_braces
from reflectnb.magics.sql import chart, reflect_sql, split_line
from reflectnb.trace import Step

HOSTILE = "'; DROP TABLE runs; --"


@pytest.fixture()
def store(trace_file):
    store = open_store()
    for name in ("first", "second"):
        with store.run("reflect", "m", {}, name=name) as run:
            run.on_step(Step("draft", f"{name} draft"))
    return store


@pytest.fixture()
def ip(store):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "reflectnb")
    yield shell
    for name in ("hostile", "wanted", "df", "kind"):
        shell.user_ns.pop(name, None)


@pytest.mark.parametrize("statement", [
    "DROP TABLE runs", "DELETE FROM runs", "INSERT INTO runs (run_id) VALUES ('x')",
    "UPDATE runs SET status = 'x'", "CREATE TABLE t AS SELECT 1", "ALTER TABLE runs ADD COLUMN z INT",
    "COPY runs TO 'out.csv'", "ATTACH 'other.duckdb' AS o", "SELECT 1; DROP TABLE runs", "SET threads = 1",
])
def test_statements_that_change_the_database_are_refused_without_write(store, statement):
    with pytest.raises(QueryError, match=r"statements are refused: %reflect_sql is read-only by default\. Add --write"):
        store.sql(statement)
    assert len(store.sql("SELECT * FROM runs")) == 2


def test_write_allows_changes(store):
    store.sql("UPDATE runs SET name = 'renamed' WHERE name = 'first'", write=True)
    assert sorted(store.sql("SELECT name FROM runs")["name"]) == ["renamed", "second"]


def test_a_hostile_string_is_bound_as_a_value_never_pasted_into_sql(store):
    found = store.sql("SELECT count(*) AS n FROM runs WHERE name = $name", {"name": HOSTILE})
    assert found["n"][0] == 0 and len(store.sql("SELECT * FROM runs")) == 2


def test_columns_named_with_a_nul_character_still_come_back_as_a_frame(store):
    frame = store.sql("SELECT '\x00', '\x00', * FROM runs ORDER BY name")  # DuckDB's df() fails on this one
    assert len(frame) == 2 and frame["name"].tolist() == ["first", "second"]
    assert frame.iloc[0, 0] == "\x00"


def test_the_python_sql_function_uses_the_default_trace_file(store):
    frame = sql("SELECT name FROM run_summary ORDER BY name")
    assert isinstance(frame, pd.DataFrame) and frame["name"].tolist() == ["first", "second"]


def test_sql_errors_carry_duckdbs_message_as_a_reflectnb_error(store):
    with pytest.raises(QueryError, match="SQL error: .*Table with name no_such_table does not exist") as info:
        store.sql("SELECT * FROM no_such_table")
    assert isinstance(info.value, ReflectnbError) and info.value.__cause__ is None


def test_braces_become_parameters_outside_strings_and_comments():
    assert bind_braces("SELECT '{a}', \"{b}\", {c} -- {d}\n/* {e} */ FROM t") == \
        "SELECT '{a}', \"{b}\", $c -- {d}\n/* {e} */ FROM t"


def test_options_are_split_from_the_sql_that_follows_them():
    assert split_line("--write -o out SELECT 1 -- comment") == (["--write", "-o", "out"], "SELECT 1 -- comment")
    assert split_line("SELECT -1") == ([], "SELECT -1")


def test_the_magic_returns_a_dataframe_and_stores_it_with_o(ip):
    frame = ip.run_line_magic("reflect_sql", "-o df SELECT name FROM runs ORDER BY name")
    assert frame["name"].tolist() == ["first", "second"] and ip.user_ns["df"] is frame


def test_the_magic_function_binds_python_variables_in_both_spellings(store):
    ns = {"hostile": HOSTILE, "wanted": "second"}
    assert len(reflect_sql("SELECT * FROM runs WHERE name = $hostile", None, ns)) == 0
    assert len(reflect_sql("", "SELECT * FROM runs WHERE name = {hostile}", ns)) == 0
    assert reflect_sql("SELECT name FROM runs WHERE name = {wanted}", None, ns)["name"].tolist() == ["second"]
    assert len(store.sql("SELECT * FROM runs")) == 2


def test_the_cell_magic_binds_a_hostile_variable_as_a_value(ip):
    ip.user_ns["hostile"] = HOSTILE
    assert len(ip.run_cell_magic("reflect_sql", "", "SELECT * FROM runs WHERE name = {hostile}")) == 0
    assert len(ip.run_cell_magic("reflect_sql", "", "SELECT * FROM runs WHERE name = $hostile")) == 0
    assert len(ip.run_line_magic("reflect_sql", "SELECT * FROM runs")) == 2


def test_the_line_magic_binds_a_hostile_variable_as_a_value_not_expanded_by_ipython(ip):
    ip.user_ns["hostile"] = HOSTILE
    assert len(ip.run_line_magic("reflect_sql", "SELECT * FROM runs WHERE name = $hostile")) == 0
    assert len(ip.run_line_magic("reflect_sql", "SELECT * FROM runs WHERE name = {hostile}")) == 0
    assert len(ip.run_line_magic("reflect_sql", "SELECT * FROM runs")) == 2


def test_the_magic_refuses_drop_as_a_one_line_usage_error(ip):
    with pytest.raises(UsageError, match="DROP statements are refused"):
        ip.run_line_magic("reflect_sql", "DROP TABLE runs")
    with pytest.raises(UsageError, match="DELETE statements are refused"):
        ip.run_cell_magic("reflect_sql", "", "DELETE FROM runs")
    assert len(ip.run_line_magic("reflect_sql", "SELECT * FROM runs")) == 2


def test_the_magic_with_write_changes_the_database(ip):
    ip.run_cell_magic("reflect_sql", "--write", "DELETE FROM runs WHERE name = 'first'")
    assert ip.run_line_magic("reflect_sql", "SELECT name FROM runs")["name"].tolist() == ["second"]


def test_the_magic_names_a_missing_variable(ip):
    with pytest.raises(UsageError, match=r"uses \$kind, but no Python variable 'kind' exists"):
        ip.run_line_magic("reflect_sql", "SELECT * FROM runs WHERE kind = $kind")


def test_unknown_options_and_sql_on_a_cell_magic_line_are_errors(store):
    with pytest.raises(OptionError) as bad:  # worded like every other magic's bad option (one OptionParser)
        reflect_sql("--bogus SELECT 1", None, {})
    assert str(bad.value) == "%reflect_sql: unrecognized arguments: --bogus  (see `%reflect_sql?` for the options)"
    with pytest.raises(OptionError, match="put the SQL in the cell"):
        reflect_sql("SELECT 1", "SELECT 2", {})


def test_chart_option_builds_an_altair_chart_of_the_result():
    frame = pd.DataFrame({"kind": ["reflect", "debate"], "n": [3, 1], "model": ["a", "b"]})
    spec = chart(frame, "bar:kind,n,model").to_dict()
    assert spec["mark"]["type"] == "bar"
    assert (spec["encoding"]["x"]["field"], spec["encoding"]["y"]["field"], spec["encoding"]["color"]["field"]) == \
        ("kind", "n", "model")
    with pytest.raises(OptionError, match="mark must be one of"):
        chart(frame, "pie")


def test_views_summarise_runs_tokens_and_reflection_usage(store):
    for view in ("run_summary", "token_text", "reflection_usage", "nodes"):
        assert isinstance(store.sql(f"SELECT * FROM {view}"), pd.DataFrame)
    assert store.sql("SELECT count(*) AS n FROM run_summary")["n"][0] == 2


def test_in_memory_store_is_read_only_by_default_too():
    memory = open_store(":memory:")
    with pytest.raises(QueryError, match="DROP statements are refused"):
        memory.sql("DROP TABLE runs")
    assert "runs" in memory.sql("SHOW TABLES")["name"].tolist()
