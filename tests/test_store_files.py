"""The trace file itself: two writing processes, migrations, damaged/foreign/locked files, WAL quarantine."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from reflectnb.errors import TraceStoreError
from reflectnb.store import SCHEMA_VERSION, open_store
from reflectnb.store import schema
from reliability_counts import record

WRITER = textwrap.dedent("""
    import sys, time
    from reflectnb.store import open_store
    from reflectnb.trace import Generation, Message, Step, TokenEvent
    path, who, runs, steps, n = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    store = open_store(path)
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start writing together
    for r in range(runs):
        with store.run("reflect", "m", {"who": who}, name=f"{who}-{r}") as run:
            for s in range(steps):
                tokens = [TokenEvent(0, i, i, f"t{i}", -0.1, 0.2) for i in range(n)]
                for t in tokens:
                    run.on_token(t)
                gen = Generation(f"{who} {r} {s}", "m", [Message("user", "q")], tokens, 3, n)
                run.on_step(Step("draft", gen.text, generation=gen))
                time.sleep(0.005)
    print("done", flush=True)
""")


def test_two_processes_writing_the_same_file_at_once_both_succeed_and_lose_nothing(tmp_path):
    path = tmp_path / "shared.duckdb"
    runs, steps, n = 12, 5, 40
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), who, str(runs), str(steps), str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for who in ("a", "b")]
    assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    store = open_store(path)
    per = store.sql("""SELECT r.params->>'who' AS who, count(DISTINCT r.run_id) AS runs,
        count(*) FILTER (WHERE r.status = 'completed') AS rows_completed, min(r.started_at) AS first,
        max(r.ended_at) AS last FROM runs r GROUP BY ALL ORDER BY who""")
    assert per["runs"].tolist() == [runs, runs]
    totals = store.sql("SELECT (SELECT count(*) FROM steps) AS steps, (SELECT count(*) FROM tokens) AS tokens, "
                       "(SELECT count(*) FROM runs WHERE status = 'completed') AS completed").iloc[0]
    assert (totals["steps"], totals["tokens"], totals["completed"]) == (2 * runs * steps, 2 * runs * steps * n, 2 * runs)
    a, b = per.iloc[0], per.iloc[1]
    assert a["first"] < b["last"] and b["first"] < a["last"], "the two writers did not overlap in time"


def _v1_file(path) -> None:
    con = duckdb.connect(str(path))
    schema.migrate(con, str(path), upto=1)
    con.execute("INSERT INTO runs (run_id, kind, model, status) VALUES ('old-run', 'reflect', 'm', 'completed')")
    con.execute("INSERT INTO tokens (run_id, gen_index, step_index, row, position, text, is_reflection) "
                "VALUES ('old-run', 0, 0, 0, 0, 'Wait', true)")
    con.close()


def test_a_version_1_file_is_migrated_forward_keeping_its_rows(tmp_path):
    path = tmp_path / "v1.duckdb"
    _v1_file(path)
    store = open_store(path)
    assert store.db.version_before == 1 and SCHEMA_VERSION == 4
    versions = store.sql("SELECT version FROM schema_migrations ORDER BY version")["version"].tolist()
    assert versions == [1, 2, 3, 4]
    old = store.sql("SELECT text, top IS NULL AS no_top FROM tokens WHERE run_id = 'old-run'").iloc[0]
    assert old["text"] == "Wait" and bool(old["no_top"])
    usage = store.sql("SELECT reflection_tokens, tokens FROM reflection_usage WHERE run_id = 'old-run'").iloc[0]
    assert (usage["reflection_tokens"], usage["tokens"]) == (1, 1)


def test_a_file_from_a_newer_schema_is_refused_and_left_unchanged(tmp_path):
    path = tmp_path / "future.duckdb"
    _v1_file(path)
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_migrations VALUES (99, now(), 'from the future')")
    con.close()
    with pytest.raises(TraceStoreError, match=r"future.duckdb has trace schema v99, but this reflectnb knows only up to v4"):
        open_store(path)
    con = duckdb.connect(str(path))
    unchanged = con.execute("SELECT max(version), (SELECT count(*) FROM runs) FROM schema_migrations").fetchall() == [(99, 1)]
    con.close()
    record("damaged_files", part="newer trace schema", tried=1, clear_error=1, file_unchanged=int(unchanged))
    assert unchanged


def test_a_damaged_or_foreign_file_is_refused_by_name_and_not_overwritten(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("my precious notes\n" * 200)
    before = path.read_bytes()
    with pytest.raises(TraceStoreError, match=r"notes.duckdb is not a DuckDB database .* REFLECTNB_TRACES"):
        open_store(path)
    record("damaged_files", part="not a DuckDB file", tried=1, clear_error=1,
           file_unchanged=int(path.read_bytes() == before))
    assert path.read_bytes() == before


def test_another_programs_duckdb_database_is_refused_and_left_intact(tmp_path):
    path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers AS SELECT 1 AS id")
    con.close()
    with pytest.raises(TraceStoreError, match="shop.duckdb is a DuckDB database but not a reflectnb trace store"):
        open_store(path)
    con = duckdb.connect(str(path))
    unchanged = con.execute("SELECT table_name FROM information_schema.tables").fetchall() == [("customers",)]
    con.close()
    record("damaged_files", part="another program's DuckDB database", tried=1, clear_error=1,
           file_unchanged=int(unchanged))
    assert unchanged


HOLD = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.readline()"


def test_a_file_locked_by_another_program_gives_a_clear_error_after_the_timeout(tmp_path, monkeypatch):
    path = tmp_path / "locked.duckdb"
    monkeypatch.setenv("REFLECTNB_TRACE_LOCK_TIMEOUT", "0.5")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TraceStoreError, match=r"locked.duckdb stayed locked by .*PID \d+.* REFLECTNB_TRACES"):
            open_store(path)
    finally:
        holder.communicate("\n", timeout=30)
    usable = open_store(path).sql("SELECT count(*) AS n FROM runs")["n"][0] == 0  # usable once released
    record("damaged_files", part="file locked by another program", tried=1, clear_error=1, opens_after=int(usable))
    assert usable


def test_a_write_ahead_log_that_cannot_be_replayed_is_quarantined_with_a_loud_warning(tmp_path):
    path = tmp_path / "crashed.duckdb"
    with open_store(path).run("reflect", "m", {}):  # one checkpointed run
        pass
    crash = ("import duckdb, os, sys; con = duckdb.connect(sys.argv[1]); "
             "con.execute('PRAGMA disable_checkpoint_on_shutdown'); con.execute('SET checkpoint_threshold=\\'1GB\\''); "
             "[con.execute(\"INSERT INTO steps (run_id, text) SELECT 'x', 'y' || range FROM range(500)\") for _ in range(5)]; "
             "os._exit(0)")
    subprocess.run([sys.executable, "-c", crash, str(path)], check=True)
    wal = tmp_path / "crashed.duckdb.wal"
    data = bytearray(wal.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    wal.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="write-ahead log of .*crashed.duckdb could not be replayed"):
        from reflectnb.store.core import TraceStore

        store = TraceStore(str(path))  # a fresh store (open_store caches per path)
    kept = [p.name.startswith("crashed.duckdb.wal.corrupt-") for p in tmp_path.iterdir()].count(True)
    runs = int(store.sql("SELECT count(*) AS n FROM runs")["n"][0])
    record("damaged_files", part="write-ahead log that cannot be replayed", tried=1, clear_error=1,
           opens_after=int(runs == 1), wal_kept=kept)
    assert kept == 1 and runs == 1
