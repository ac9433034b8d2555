"""Resuming after the evaluating process is killed (SIGKILL) or Ctrl-C'd mid-batch, or left runs unfinished.

A real subprocess and real DuckDB files; scripted models.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.evaluate import compare

ROOT = Path(__file__).resolve().parents[1]
ROWS = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from reflectnb.backends.scripted import ScriptedBackend
    from reflectnb.evaluate import compare

    rows = {rows!r}
    marker = Path({marker!r})

    def reply(prompt, index):
        i = int(prompt.split("What is ")[1].split(" ")[0])
        if i >= 4:  # the third batch: say so, then hang until killed
            marker.write_text("started item %d" % i)
            time.sleep(120)
        return "The answer is %d" % (2 * i)

    compare(rows, ["baseline"], model=ScriptedBackend(reply), batch_size=2, progress=False)
    print("finished without being killed")
""")


def answers(prompt: str, index: int) -> str:
    i = int(prompt.split("What is ")[1].split(" ")[0])
    return f"The answer is {2 * i}"


def test_a_killed_evaluation_resumes_and_completes_without_duplicates(trace_file, tmp_path):
    marker = tmp_path / "hung.txt"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(rows=ROWS, marker=str(marker)))
    env = {**os.environ, "REFLECTNB_TRACES": str(trace_file), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the child never reached the third batch"
            time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    model = ScriptedBackend(answers)
    result = compare(ROWS, ["baseline"], model=model, batch_size=2, progress=False)

    assert [p[0].content.split("\n")[0] for c in model.calls for p in c.prompts] == ["What is 4 + 4?", "What is 5 + 5?"]
    assert [r["item_id"] for r in result.rows] == [f"q{i}" for i in range(6)]
    assert result.summary().iloc[0][["n", "correct"]].tolist() == [6, 6]
    from reflectnb.store import open_store

    counts = open_store().sql("""SELECT json_extract_string(params, '$.item_id') AS item, count(*) AS n
        FROM runs WHERE status = 'completed' AND kind = 'eval:baseline' GROUP BY item ORDER BY item""")
    assert counts.values.tolist() == [[f"q{i}", 1] for i in range(6)]
    pids = open_store().sql("SELECT DISTINCT pid FROM runs ORDER BY pid")["pid"].tolist()
    assert sorted(pids) == sorted([child.pid, os.getpid()])  # the first four came from the killed process


class CtrlCOnCall(ScriptedBackend):
    """A scripted model whose ``at``-th generate call raises KeyboardInterrupt, as Ctrl-C there would."""

    def __init__(self, script, at: int):
        super().__init__(script)
        self.at, self.made = at, 0

    def generate(self, prompts, params=None, on_token=None):
        self.made += 1
        if self.made == self.at:
            raise KeyboardInterrupt
        return super().generate(prompts, params, on_token)


def reflector(prompt: str, index: int) -> str:
    """q0 and q1: the feedback says STOP (done after 2 calls); q2, q3: it asks for a change (refine next)."""
    i = int(prompt.split("What is ")[1].split(" ")[0])
    if "Give short, specific feedback" in prompt:
        return "STOP" if i < 2 else "Check the sum."
    return f"The answer is {2 * i}"


def completed_per_item(kind: str) -> list[list]:
    from reflectnb.store import open_store

    return open_store().sql("""SELECT json_extract_string(params, '$.item_id') AS item, count(*) AS n FROM runs
        WHERE status = 'completed' AND kind = $kind GROUP BY item ORDER BY item""", {"kind": kind}).values.tolist()


def test_ctrl_c_mid_batch_keeps_the_items_already_finished_and_a_rerun_completes_without_duplicates(trace_file):
    rows, method = ROWS[:4], "reflect(rounds=2)"
    with pytest.raises(KeyboardInterrupt):  # call 1: drafts, 2: feedback (q0, q1 stop), 3: refine q2, q3
        compare(rows, [method], model=CtrlCOnCall(reflector, at=3), batch_size=4, progress=False)
    assert completed_per_item(f"eval:{method}") == [["q0", 1], ["q1", 1]]

    model = ScriptedBackend(reflector)
    result = compare(rows, [method], model=model, batch_size=4, progress=False)
    assert all("What is 2 + 2?" in str(p) or "What is 3 + 3?" in str(p) for c in model.calls for p in c.prompts)
    assert [r["item_id"] for r in result.rows] == ["q0", "q1", "q2", "q3"]
    assert [r["stop_reason"] for r in result.rows[:2]] == ["feedback_stop"] * 2
    assert completed_per_item(f"eval:{method}") == [[f"q{i}", 1] for i in range(4)]


def test_runs_left_running_or_interrupted_are_redone_and_completed_ones_are_not(trace_file):
    from reflectnb.store import open_store

    first = compare(ROWS[:4], ["baseline"], model=ScriptedBackend(answers), progress=False)
    ids = {r["item_id"]: r["run_id"] for r in first.rows}
    store = open_store()
    store.sql("UPDATE runs SET status = 'interrupted' WHERE run_id = $id", {"id": ids["q1"]}, write=True)
    store.sql("UPDATE runs SET status = 'running' WHERE run_id = $id", {"id": ids["q2"]}, write=True)

    model = ScriptedBackend(answers)
    again = compare(ROWS[:4], ["baseline"], model=model, progress=False)
    assert [p[0].content.split("\n")[0] for c in model.calls for p in c.prompts] == ["What is 1 + 1?", "What is 2 + 2?"]
    assert again.eval_id == first.eval_id and [r["run_id"] == ids[r["item_id"]] for r in again.rows] == \
        [True, False, False, True]
    assert completed_per_item("eval:baseline") == [[f"q{i}", 1] for i in range(4)]
