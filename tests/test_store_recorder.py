"""The run recorder against a real DuckDB file: statuses, partial rows, tokens, nodes, failures."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from reflectnb.errors import TraceStoreError
from reflectnb.store import open_store
from reflectnb.trace import FanOut, Generation, ListRecorder, Message, Node, Recorder, Score, Step, TokenEvent


def toks(n: int, row: int = 0, reflect_at: int | None = None) -> list[TokenEvent]:
    return [TokenEvent(row=row, position=i, token_id=100 + i, text=f" w{i}", logprob=-0.5, entropy=1.25,
                       is_reflection=i == reflect_at) for i in range(n)]


def gen(text: str, n: int = 5, row: int = 0) -> Generation:
    return Generation(text=text, model="smollm2-135m", prompt=[Message("user", "What is 2+2?")],
                      tokens=toks(n, row), prompt_tokens=7, completion_tokens=n)


def count(store, table: str, run_id: str) -> int:
    return int(store.sql(f"SELECT count(*) AS n FROM {table} WHERE run_id = $r", {"r": run_id})["n"][0])


@pytest.fixture()
def store(trace_file):
    return open_store()


def test_the_run_recorder_implements_the_recorder_protocol(store):
    assert isinstance(store.run("reflect", "m", {}), Recorder)


def test_a_completed_run_has_its_steps_generations_tokens_scores_and_outcome(store, trace_file):
    with store.run("reflect", "smollm2-135m", {"temperature": 0.0}, name="demo") as run:
        assert run.on_step(Step("draft", "4", generation=gen("4", 6))) == 0
        assert run.on_step(Step("feedback", "fine", parent=0)) == 1
        run.on_score(Score("score", 1.0, target_step=0))
        run.set_result("4", "max_rounds", task="What is 2+2?")
    row = store.sql("SELECT * FROM runs WHERE run_id = $r", {"r": run.run_id}).iloc[0]
    assert (row["status"], row["name"], row["final_answer"], row["stop_reason"], row["task"]) == \
        ("completed", "demo", "4", "max_rounds", "What is 2+2?")
    assert (row["steps"], row["prompt_tokens"], row["completion_tokens"]) == (2, 7, 6)
    assert (count(store, "generations", run.run_id), count(store, "tokens", run.run_id)) == (1, 6)
    assert trace_file.exists()


def test_keyboard_interrupt_marks_the_run_interrupted_and_keeps_what_was_produced(store):
    with pytest.raises(KeyboardInterrupt):
        with store.run("reflect", "m", {}) as run:
            run.on_step(Step("draft", "partial answer", generation=gen("partial answer", 4)))
            for event in toks(3, row=0):  # the refine step is streaming when Ctrl-C arrives
                run.on_token(event)
            raise KeyboardInterrupt
    status = store.sql("SELECT status, error FROM runs WHERE run_id = $r", {"r": run.run_id}).iloc[0]
    assert status["status"] == "interrupted"
    gens = store.sql("SELECT step_index, finish_reason, text FROM generations WHERE run_id = $r ORDER BY gen_index",
                     {"r": run.run_id})
    assert gens["finish_reason"].tolist() == ["stop", "interrupted"]
    assert gens["text"].iloc[1] == " w0 w1 w2"
    assert count(store, "tokens", run.run_id) == 4 + 3


def test_an_exception_marks_the_run_failed_with_a_redacted_error_and_is_reraised(store):
    with pytest.raises(RuntimeError, match="boom"):
        with store.run("critique", "m", {"api_key": "sk-live-abcdefghijklmnop123"}) as run:
            run.on_step(Step("answer", "a"))
            raise RuntimeError("boom with key sk-live-abcdefghijklmnop123 and Authorization: Bearer abcdefghijkl")
    row = store.sql("SELECT status, error, params FROM runs WHERE run_id = $r", {"r": run.run_id}).iloc[0]
    assert row["status"] == "failed" and row["error"].startswith("RuntimeError: boom")
    assert "sk-live" not in row["error"] and "abcdefghijkl" not in row["error"]
    assert "sk-live" not in row["params"] and "__REDACTED__" in row["params"]
    assert count(store, "steps", run.run_id) == 1


def test_secrets_never_reach_the_database_file(trace_file):
    store = open_store()
    secret = "sk-proj-SECRETSECRETSECRET42"
    with store.run("generate", "openai:gpt@http://x", {"api_key": secret, "headers": {"Authorization": "t"},
                                                      "extra": {"note": f"key={secret}"}}) as run:
        run.on_step(Step("generation", "ok", attributes={"client_secret": "hunter2-hunter2"}))
    assert secret.encode() not in trace_file.read_bytes() and b"hunter2" not in trace_file.read_bytes()


def test_streamed_tokens_claimed_by_a_step_are_not_written_twice(store):
    with store.run("generate", "m", {}) as run:
        for row in (0, 1):
            for event in toks(5, row=row):
                run.on_token(event)
        run.on_step(Step("generation", "a", generation=gen("a", 5, row=0)))
        run.on_step(Step("generation", "b", generation=gen("b", 5, row=1)))
    assert count(store, "tokens", run.run_id) == 10
    assert count(store, "generations", run.run_id) == 2


def test_tree_nodes_keep_their_latest_state_and_their_history(store):
    with store.run("tree", "m", {}) as run:
        run.on_node(Node(0, None, 0, "root"))
        for i in range(1, 4):
            run.on_node(Node(0, None, 0, "root", value=i / 4, visits=i, iteration=i))
        run.on_node(Node(1, 0, 1, "child", value=0.9, status="selected"))
    nodes = store.sql("SELECT node_id, value, visits, iteration FROM nodes WHERE run_id = $r ORDER BY node_id",
                      {"r": run.run_id})
    assert nodes.values.tolist() == [[0, 0.75, 3, 3], [1, 0.9, 0, 0]]
    assert count(store, "node_events", run.run_id) == 5


def test_many_node_updates_are_written_in_batches_not_one_by_one(store):
    with store.run("tree", "m", {}) as run:
        for i in range(1000):
            run.on_node(Node(i % 10, None, 1, "n", value=float(i), visits=i, iteration=i))
    assert count(store, "node_events", run.run_id) == 1000
    assert store.sql("SELECT max(visits) AS v FROM nodes WHERE run_id = $r", {"r": run.run_id})["v"][0] == 999


def test_the_store_recorder_works_inside_a_fan_out(store):
    keep = ListRecorder()
    with store.run("generate", "m", {}) as run:
        index = FanOut(run, keep).on_step(Step("generation", "x", generation=gen("x", 2)))
    assert index == 0 and len(keep.steps) == 1 and count(store, "tokens", run.run_id) == 2


def test_run_df_lists_the_steps_of_a_run_in_order(store):
    with store.run("reflect", "m", {}) as run:
        run.on_step(Step("draft", "d", generation=gen("d", 3)))
        run.on_step(Step("feedback", "f", parent=0))
        run.on_step(Step("refine", "r", round=1, parent=1, generation=gen("r", 2)))
    frame = store.run_df(run.run_id)
    assert frame["kind"].tolist() == ["draft", "feedback", "refine"]
    assert frame["completion_tokens"].fillna(-1).tolist() == [3, -1, 2]


HOLD = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
"""


def test_a_write_problem_mid_run_never_raises_in_the_loop_and_is_reported_with_a_parquet_fallback(
        trace_file, monkeypatch):
    monkeypatch.setenv("REFLECTNB_TRACE_LOCK_TIMEOUT", "0.4")
    store = open_store()
    run = store.run("reflect", "m", {})
    run.__enter__()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(trace_file)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for i in range(3):
            assert run.on_step(Step("draft", f"text {i}", generation=gen(f"text {i}", 4))) == i  # no raise
        with pytest.raises(TraceStoreError, match="Parquet files in") as info:
            run.__exit__(None, None, None)
    finally:
        holder.communicate("\n", timeout=30)
    folder = str(info.value).split("Parquet files in ", 1)[1].split(" (", 1)[0]
    saved = duckdb.sql(f"SELECT count(*) FROM read_parquet('{folder}/tokens-*.parquet')").fetchall()[0][0]
    kept_steps = sum(t.num_rows for b in run.unwritten for name, t in b.tables() if name == "steps")
    assert saved == 12 and kept_steps == 3
    assert run.run_id in folder


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted_on_open(trace_file):
    code = ("import os; from reflectnb.store import open_store; from reflectnb.trace import Step; "
            "s = open_store(); r = s.run('reflect', 'm', {}); r.__enter__(); r.on_step(Step('draft', 'x')); "
            "s.writer.flush(); print(r.run_id, flush=True); os._exit(0)  # killed mid-run")
    run_id = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    status = open_store().sql("SELECT status FROM runs WHERE run_id = $r", {"r": run_id})["status"][0]
    assert status == "interrupted"
