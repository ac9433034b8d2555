"""Read-only SQL changes nothing: no statement writes a file or the store, on a file and on :memory:.

Each writing statement (and EXPLAIN ANALYZE of it, where DuckDB parses that) is sent as a read;
it must be refused with the one line that names --write, no file may appear or change in the
test folder, and a checksum of every table, view, sequence, macro, attached database and
setting must be the same afterwards. Counts go to build/reliability/sql_readonly.json.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from reliability_counts import record

import reflectnb
from reflectnb.errors import TraceStoreError
from reflectnb.store import QueryError, open_store
from reflectnb.trace import Generation, Message, Node, Score, Step, TokenEvent

REFUSED = "refused: %reflect_sql is read-only by default. Add --write (write=True in Python) to run it"

WRITES = [
    "INSERT INTO runs (run_id) VALUES ('x')",
    "UPDATE runs SET status = 'x'",
    "DELETE FROM runs",
    "TRUNCATE steps",
    ("MERGE INTO runs USING (SELECT 'x' AS run_id) s ON runs.run_id = s.run_id "
     "WHEN NOT MATCHED THEN INSERT (run_id) VALUES (s.run_id)"),
    "CREATE TABLE t AS SELECT 1 AS a",
    "CREATE TEMP TABLE t AS SELECT 1 AS a",
    "CREATE VIEW v AS SELECT 1 AS a",
    "CREATE SEQUENCE seq",
    "CREATE MACRO twice(x) AS x * 2",
    "CREATE TYPE mood AS ENUM ('a', 'b')",
    "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')",
    "DROP TABLE runs",
    "DROP VIEW run_summary",
    "ALTER TABLE runs ADD COLUMN z INTEGER",
    "ALTER TABLE runs RENAME TO old_runs",
    "COMMENT ON TABLE runs IS 'x'",
    "COPY runs TO '{out}/copy.csv'",
    "COPY (SELECT * FROM tokens) TO '{out}/copy.parquet' (FORMAT parquet)",
    "COPY runs FROM '{out}/user.csv'",
    "EXPORT DATABASE '{out}/exported'",
    "IMPORT DATABASE '{out}/exported'",
    "ATTACH '{out}/other.duckdb' AS other",
    "DETACH other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "LOAD '{out}/evil.duckdb_extension'",
    "UPDATE EXTENSIONS",
    "SET threads = 1",
    "RESET threads",
    "SET VARIABLE x = 1",
    "USE memory",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "VACUUM",
    "ANALYZE",
    "BEGIN",
    "COMMIT",
    "PRAGMA enable_profiling",
    "PRAGMA import_database('{out}/exported')",
    "PREPARE p AS SELECT 1",
    "CALL checkpoint()",
    "CALL enable_logging(storage = 'file', storage_path = '{out}/logs')",
    "SELECT * FROM checkpoint()",
    "SELECT * FROM enable_logging(storage = 'file', storage_path = '{out}/logs')",
    "SELECT * FROM query('SELECT 1')",
    "SELECT nextval('seq')",
    "SELECT setseed(0.5)",
    "SELECT sleep_ms(1)",
    "PIVOT runs ON kind",
    "WITH gone AS (DELETE FROM runs RETURNING *) SELECT * FROM gone",
    "WITH x AS MATERIALIZED (UPDATE runs SET status = 'x' RETURNING *) SELECT count(*) FROM x",
    "WITH x AS (INSERT INTO runs (run_id) VALUES ('y') RETURNING *) SELECT * FROM x",
    "SELECT * FROM (SELECT 1) s, (WITH d AS (DELETE FROM steps RETURNING 1) SELECT * FROM d) t",
    "SELECT 1; DROP TABLE runs",
    "SELECT 1; COPY runs TO '{out}/second.csv'",
    "/* SELECT */ DROP TABLE runs",
    "-- SELECT * FROM runs\nDELETE FROM runs",
    "SELECT 1 /* ; */; DELETE FROM runs -- DROP",
    "SELECT ';'; UPDATE runs SET status = ';'",
    "EXPLAIN (FORMAT json) COPY runs TO '{out}/explained.csv'",
    "/* EXPLAIN */ EXPLAIN -- ANALYZE SELECT\n ANALYZE DROP TABLE runs",
    "EXPLAIN ANALYZE (SELECT 1) UNION ALL (SELECT 2); DROP TABLE runs",
]

READS = [
    "SELECT * FROM run_summary",
    "SELECT count(*) AS n FROM tokens WHERE is_reflection",
    "FROM runs",
    "SHOW TABLES",
    "DESCRIBE runs",
    "SUMMARIZE steps",
    "SELECT * FROM pragma_table_info('runs')",
    "SELECT * FROM duckdb_tables()",
    "EXPLAIN SELECT * FROM runs",
    "EXPLAIN ANALYZE SELECT kind, count(*) FROM runs GROUP BY kind",
    "EXPLAIN (FORMAT json) (SELECT 1)",
    "WITH r AS (SELECT * FROM runs) SELECT count(*) FROM r",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT sum(i) FROM n",
    "PIVOT runs ON status IN ('completed', 'failed') USING count(*)",
    "SELECT * FROM read_csv('{out}/user.csv')",
    "SELECT * FROM '{out}/user.csv'",
    "SELECT random() < 2 AS ok, uuid() IS NOT NULL AS id",
    "SELECT 1; SELECT 2",
]


def cases() -> list[str]:
    """Every writing statement, plus EXPLAIN ANALYZE of it wherever DuckDB parses that."""
    out = list(WRITES)
    for sql in WRITES:
        try:
            duckdb.extract_statements("EXPLAIN ANALYZE " + sql)
        except duckdb.Error:
            continue
        out.append("EXPLAIN ANALYZE " + sql)
    return out


def seed(store) -> None:
    """A run with steps, a generation with tokens, a score and a tree node."""
    tokens = [TokenEvent(0, i, 10 + i, f" t{i}", -0.5, 1.0, is_reflection=i == 2) for i in range(5)]
    with store.run("reflect", "m", {"temperature": 0.0}, name="seed") as run:
        run.on_step(Step("draft", "draft", generation=Generation("draft", "m", [Message("user", "q")], tokens, 3, 5)))
        run.on_score(Score("score", 0.5, target_step=0))
        run.on_node(Node(0, None, 0, "root", value=0.5, visits=1))


def folder_state(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes (folders as ``<dir>``)."""
    return {str(p.relative_to(folder)): "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


CATALOG = {
    "views": "SELECT database_name, view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL",
    "sequences": "SELECT sequence_name, last_value FROM duckdb_sequences() ORDER BY ALL",
    "macros": "SELECT function_name FROM duckdb_functions() WHERE NOT internal ORDER BY ALL",
    "types": "SELECT type_name FROM duckdb_types() WHERE NOT internal ORDER BY ALL",
    "databases": "SELECT database_name, path FROM duckdb_databases() ORDER BY ALL",
    "settings": "SELECT name, value FROM duckdb_settings() ORDER BY ALL",
}


def store_state(store, full: bool = False) -> dict[str, object]:
    """A checksum of every table; with ``full`` also views, sequences, macros, types, databases, settings."""
    store.writer.flush(timeout=10.0)
    with store.db.connect(read_only=not store.db.memory) as con:
        tables = con.execute("SELECT database_name, schema_name, table_name FROM duckdb_tables() "
                             "ORDER BY ALL").fetchall()
        union = " UNION ALL ".join(f"SELECT '{d}.{s}.{t}', count(*), sum(hash(x)) FROM \"{d}\".\"{s}\".\"{t}\" x"
                                   for d, s, t in tables)
        state: dict[str, object] = {"tables": sorted(con.execute(union).fetchall())}
        for name, query in CATALOG.items() if full else ():
            state[name] = con.execute(query).fetchall()
    return state


@pytest.fixture(params=["file", "memory"])
def place(request, tmp_path, monkeypatch):
    """(store, folder): a seeded store on a file in ``folder``, or the process's :memory: store."""
    monkeypatch.chdir(tmp_path)  # relative paths in COPY/EXPORT would land here
    (tmp_path / "user.csv").write_text("a,b\n1,x\n2,y\n")
    store = open_store(tmp_path / "traces.duckdb" if request.param == "file" else ":memory:")
    seed(store)
    return request.param, store, tmp_path


def test_no_writing_statement_runs_read_only_and_nothing_changes(place):
    where, store, out = place
    tried = refused = files_written = store_changed = 0
    problems = []
    files, content, catalog = folder_state(out), store_state(store), store_state(store, full=True)
    for template in cases():
        sql = template.format(out=out)
        tried += 1
        try:
            store.sql(sql)
            problems.append(f"ran: {sql!r}")
        except QueryError as exc:
            refused += REFUSED in str(exc)
            if REFUSED not in str(exc) or "\n" in str(exc):
                problems.append(f"not a one-line refusal: {sql!r} -> {exc}")
        if folder_state(out) != files:
            files_written += 1
            problems.append(f"a file changed: {sql!r}")
            files = folder_state(out)
        if store_state(store) != content:
            store_changed += 1
            problems.append(f"the store changed: {sql!r}")
            content = store_state(store)
    if store_state(store, full=True) != catalog:
        store_changed += 1
        problems.append("the catalog or the settings changed")
    record("sql_readonly", part=f"writing statements on {where}", tried=tried, refused=refused,
           files_written=files_written, store_changed=store_changed)
    assert not problems, "\n".join(problems)
    assert tried == refused > len(WRITES)


def test_reads_run_and_change_nothing(place):
    where, store, out = place
    ran_unchanged = 0
    files, content, catalog = folder_state(out), store_state(store), store_state(store, full=True)
    for template in READS:
        frame = store.sql(template.format(out=out))
        assert len(frame.columns) > 0, template
        ran_unchanged += folder_state(out) == files and store_state(store) == content
    unchanged = store_state(store, full=True) == catalog
    record("sql_readonly", part=f"reads on {where}", tried=len(READS), ran_unchanged=ran_unchanged * unchanged,
           store_changed=int(not unchanged))
    assert ran_unchanged == len(READS) and unchanged


def test_a_users_csv_file_can_be_read_but_not_written(place):
    _, store, out = place
    assert store.sql(f"SELECT b FROM read_csv('{out}/user.csv') ORDER BY a")["b"].tolist() == ["x", "y"]
    with pytest.raises(QueryError, match="COPY statements are refused"):
        store.sql(f"COPY (SELECT 1) TO '{out}/user.csv'")
    assert (out / "user.csv").read_text() == "a,b\n1,x\n2,y\n"


def test_explain_analyze_of_copy_is_refused_naming_the_inner_statement(place):
    _, store, out = place
    with pytest.raises(QueryError, match=r"^EXPLAIN of a COPY statement is refused: .* Add --write"):
        store.sql(f"EXPLAIN ANALYZE COPY (SELECT * FROM runs) TO '{out}/leak.csv'")
    assert not (out / "leak.csv").exists()


def test_a_delete_hidden_in_a_with_clause_is_refused_though_duckdb_types_it_select(place):
    _, store, _ = place
    assert [s.type.name for s in duckdb.extract_statements("WITH g AS (DELETE FROM runs RETURNING *) SELECT 1")] \
        == ["SELECT"]
    with pytest.raises(QueryError, match=r"^a DELETE inside a query is refused"):
        store.sql("WITH g AS (DELETE FROM runs RETURNING *) SELECT count(*) FROM g")
    assert len(store.sql("SELECT * FROM runs")) >= 1


def test_a_read_on_a_missing_path_creates_neither_the_file_nor_its_folder(tmp_path):
    missing = tmp_path / "not" / "yet" / "traces.duckdb"
    with pytest.raises(TraceStoreError, match=r"^no trace store at .*not/yet/traces.duckdb yet: nothing was recorded"):
        reflectnb.traces.sql("SELECT * FROM runs", path=missing)
    assert list(tmp_path.iterdir()) == []


def test_the_magic_reads_a_missing_path_as_one_line_and_creates_nothing(tmp_path):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "reflectnb")
    missing = tmp_path / "nowhere" / "t.duckdb"
    with pytest.raises(UsageError, match=r"^no trace store at .*nowhere/t.duckdb yet") as info:
        shell.run_line_magic("reflect_sql", f"--path {missing} SELECT * FROM runs")
    assert "\n" not in str(info.value) and list(tmp_path.iterdir()) == []


def test_the_magic_refuses_explain_analyze_copy_as_one_line_and_writes_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "t.duckdb"
    seed(open_store(path))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "reflectnb")
    before = folder_state(tmp_path)
    with pytest.raises(UsageError, match=r"^EXPLAIN of a COPY statement is refused: .*--write") as info:
        shell.run_cell_magic("reflect_sql", f"--path {path}", "EXPLAIN ANALYZE COPY runs TO 'leak.csv'")
    assert "\n" not in str(info.value) and folder_state(tmp_path) == before


def test_write_mode_on_a_missing_path_creates_the_store(tmp_path):
    path = tmp_path / "new" / "traces.duckdb"
    reflectnb.traces.sql("INSERT INTO runs (run_id, status) VALUES ('manual', 'completed')", path=path, write=True)
    assert reflectnb.traces.sql("SELECT run_id FROM runs", path=path)["run_id"].tolist() == ["manual"]
