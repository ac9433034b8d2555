"""The trace file is attached to one kept DuckDB instance per store, and released after each unit of work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from reflectnb.store.core import TraceStore
from reflectnb.trace import Generation, Step, TokenEvent

COUNT = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
         "print(con.execute('SELECT count(*) FROM tokens').fetchone()[0])")


def record_run(store: TraceStore, text: str, n: int = 5) -> str:
    tokens = [TokenEvent(0, i, i, f"t{i}", -0.1, 0.2) for i in range(n)]
    with store.run("generate", "m", {}) as run:
        run.on_step(Step("generation", text, generation=Generation(text, "m", "p", tokens, 2, n)))
    return run.run_id


def test_after_a_run_the_file_is_checkpointed_and_another_program_can_open_it_at_once(tmp_path):
    path = tmp_path / "released.duckdb"
    store = TraceStore(str(path))
    record_run(store, "first", 7)
    assert not os.path.exists(str(path) + ".wal") or os.path.getsize(str(path) + ".wal") == 0
    out = subprocess.run([sys.executable, "-c", COUNT, str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.strip() == "7", out.stderr[-500:]
    con = duckdb.connect(str(path))  # in this process too: nothing is left attached
    assert con.execute("SELECT current_database(), count(*) FROM runs").fetchone() == ("released", 1)
    con.close()


def test_a_users_write_query_runs_on_its_own_connection_so_what_it_attaches_is_released(tmp_path):
    store = TraceStore(str(tmp_path / "mine.duckdb"))
    other = tmp_path / "other.duckdb"
    store.sql(f"ATTACH '{other}' AS other; CREATE TABLE other.t AS SELECT 42 AS x", write=True)
    record_run(store, "after")
    read = "import duckdb, sys; print(duckdb.connect(sys.argv[1]).execute('SELECT x FROM t').fetchone()[0])"
    out = subprocess.run([sys.executable, "-c", read, str(other)], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.strip() == "42", out.stderr[-500:]
    assert store.sql("SELECT count(*) AS n FROM tokens")["n"].tolist() == [5]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_process_forked_after_the_store_was_used_records_through_its_own_instance(tmp_path):
    store = TraceStore(str(tmp_path / "forked.duckdb"))
    record_run(store, "parent")
    pid = os.fork()
    if pid == 0:  # the child: the parent's DuckDB instance has no threads here and must not be used
        code = 1
        try:
            record_run(store, "child", 3)
            code = 0
        finally:
            os._exit(code)
    assert wait_for_child(pid, 60) == 0
    record_run(store, "parent again")
    counts = store.sql("SELECT s.text, count(*) AS n FROM tokens t JOIN steps s USING (run_id, step_index) "
                       "GROUP BY s.text ORDER BY s.text")
    assert counts.values.tolist() == [["child", 3], ["parent", 5], ["parent again", 5]]


def wait_for_child(pid: int, seconds: float) -> int | str:
    """The child's exit code, or ``"hung"`` (killed) if it did not end in ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"
