"""Resuming after the evaluating process is killed (SIGKILL) mid-run: a real subprocess and a real DuckDB file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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
