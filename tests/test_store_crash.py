"""Crashes and load, counted: kill -9 while writing, four writers at once, a full disk.

Real processes log through the real recorder and background writer into a real DuckDB file.
A step counts as *committed* once ``writer.flush()`` returned with no failed batch; the child
prints an ``ack`` line then. Counts go to build/reliability/{crashes,concurrent_writers,disk_full}.json.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from reliability_counts import record

from reflectnb.store.core import TraceStore

TOKENS = 100
STEP = textwrap.dedent("""
    from reflectnb.trace import Generation, Message, Step, TokenEvent

    def step(run, i, n, width=8):
        tokens = [TokenEvent(0, k, k, "t%d" % k + "x" * width, -0.1, 0.2) for k in range(n)]
        gen = Generation("step %d" % i, "m", [Message("user", "q")], tokens, 3, n)
        return run.on_step(Step("draft", gen.text, generation=gen))
""")

# Imports once, then forks one writer per trial, so 20 trials do not pay 20 interpreter starts.
# SIGCHLD is ignored so a killed child is reaped at once, as a kernel's parent (Jupyter) does.
ZYGOTE = STEP + textwrap.dedent("""
    import itertools, os, signal, sys
    from reflectnb.store import open_store
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for line in sys.stdin:
        path, trial = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                store = open_store(path)
                with store.run("crash", "m", {"trial": int(trial)}) as run:
                    for i in itertools.count():
                        step(run, i, %d)
                        if store.writer.flush(timeout=30) and not store.writer._failed:
                            print("ack", trial, run.run_id, i, flush=True)
            finally:
                os._exit(1)
        print("child", trial, pid, flush=True)
""" % TOKENS)


class Lines:
    """A process's stdout lines, read by a thread so a wait for the next line is bounded."""

    def __init__(self, proc: subprocess.Popen):
        self.queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.queue.put(line.strip())
        self.queue.put(None)

    def next(self, timeout: float = 60.0) -> str | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from the writer within {timeout} s") from None

    def rest(self) -> list[str]:
        lines = []
        while (line := self.next()) is not None:
            lines.append(line)
        return lines


def wait_gone(pid: int) -> None:
    for _ in range(2000):  # the zygote reaps it; poll, bounded (~20 s)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} still exists after kill -9")


def committed_rows_lost(store: TraceStore, acked: dict[str, int]) -> int:
    """Steps and token rows acknowledged as committed but missing from the file."""
    lost = 0
    for run_id, last in acked.items():
        got = store.sql("SELECT (SELECT count(*) FROM steps WHERE run_id = $r AND step_index <= $i) AS steps, "
                        "(SELECT count(*) FROM tokens WHERE run_id = $r AND step_index <= $i) AS tokens",
                        {"r": run_id, "i": last}).iloc[0]
        lost += (last + 1 - int(got["steps"])) + ((last + 1) * TOKENS - int(got["tokens"]))
    return lost


@pytest.mark.timeout(300)
def test_kill_9_while_writing_loses_no_committed_row_and_the_run_shows_interrupted(tmp_path):
    path, trials, rng = tmp_path / "crash.duckdb", 20, random.Random(13)
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    acked: dict[str, int] = {}
    lines = Lines(zygote)
    try:
        for trial in range(trials):
            zygote.stdin.write(f"{path} {trial}\n")
            zygote.stdin.flush()
            want, pid, seen = rng.randint(1, 4), None, 0
            while pid is None or seen < want:
                word, *rest = lines.next().split()
                if word == "child" and int(rest[0]) == trial:
                    pid = int(rest[1])
                elif word == "ack":
                    acked[rest[1]] = max(acked.get(rest[1], -1), int(rest[2]))
                    seen += int(rest[0]) == trial
            time.sleep(rng.uniform(0, 0.03))  # land the kill inside a write some of the time
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid)
        zygote.stdin.close()
        for line in lines.rest():  # acks printed just before the last kill
            word, *rest = line.split()
            if word == "ack":
                acked[rest[1]] = max(acked.get(rest[1], -1), int(rest[2]))
    finally:
        zygote.kill()
        zygote.wait(timeout=30)
    store = TraceStore(str(path))  # the next open: the file opens and the dead run is swept
    statuses = store.sql("SELECT status, count(*) AS n FROM runs GROUP BY status")
    counts = dict(zip(statuses["status"], statuses["n"].astype(int)))
    lost = committed_rows_lost(store, acked)
    record("crashes", part="kill -9 of a writing process", trials=trials, file_opened=trials, rows_lost=lost,
           left_running=counts.get("running", 0), interrupted=counts.get("interrupted", 0),
           committed_steps=sum(last + 1 for last in acked.values()))
    assert len(acked) == trials and lost == 0
    assert counts == {"interrupted": trials}
    errors = store.sql("SELECT DISTINCT error FROM runs")["error"].tolist()
    assert errors == ["the process recording this run ended without closing it"]


LOGGER = STEP + textwrap.dedent("""
    import json, sys, time
    from reflectnb.store import open_store
    path, who, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    store = open_store(path)
    print("ready", flush=True)
    sys.stdin.readline()
    done = {"runs": 0, "steps": 0, "tokens": 0}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with store.run("load", "m", {"who": who}) as run:
            for i in range(3):
                step(run, i, 50)
                time.sleep(0.01)
        done["runs"] += 1; done["steps"] += 3; done["tokens"] += 150
    print(json.dumps(done), flush=True)
""")


@pytest.mark.timeout(600)
def test_four_processes_logging_at_once_lose_no_row_and_show_no_lock_error(tmp_path):
    path, seconds = tmp_path / "load.duckdb", float(os.environ.get("REFLECTNB_LOAD_SECONDS", "15"))
    procs = [subprocess.Popen([sys.executable, "-c", LOGGER, str(path), f"w{i}", str(seconds)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["ready"] * 4
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=seconds + 300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    reported = [json.loads(out.strip().splitlines()[-1]) if out.strip() else {} for out, _ in outs]
    lock_errors = sum("lock" in err.lower() for _, err in outs)
    store = TraceStore(str(path))
    got = store.sql("SELECT (SELECT count(*) FROM runs WHERE status = 'completed') AS runs, "
                    "(SELECT count(*) FROM steps) AS steps, (SELECT count(*) FROM tokens) AS tokens").iloc[0]
    want = {k: sum(r.get(k, 0) for r in reported) for k in ("runs", "steps", "tokens")}
    lost = sum(want[k] - int(got[k]) for k in want)
    record("concurrent_writers", part="4 processes", processes=4, seconds=int(seconds), runs=want["runs"],
           rows_written=want["steps"] + want["tokens"], rows_lost=lost, lock_errors=lock_errors,
           longer="REFLECTNB_LOAD_SECONDS=60 pytest tests/test_store_crash.py -k four")
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in outs]
    assert lock_errors == 0 and lost == 0 and all(r["runs"] > 0 for r in reported)


DISK_FULL = STEP + textwrap.dedent("""
    import os, resource, signal, sys
    from reflectnb.store import open_store
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG (an error), not a killed process
    store = open_store(sys.argv[1])
    try:
        with store.run("disk", "m", {}) as run:
            for i in range(3):
                step(run, i, 50)
                store.writer.flush()
                print("ack", run.run_id, i, flush=True)
            limit = os.path.getsize(sys.argv[1]) + 300_000
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            for i in range(3, 200):
                step(run, i, 2000, width=40)
                store.writer.flush()
                if store.writer._failed:
                    break
                print("ack", run.run_id, i, flush=True)
    except Exception as exc:
        print("error", type(exc).__name__, str(exc), flush=True)
""")


@pytest.mark.timeout(300)
def test_a_full_disk_during_a_run_is_one_clear_error_and_keeps_the_earlier_rows(tmp_path):
    path = tmp_path / "full.duckdb"
    out = subprocess.run([sys.executable, "-c", DISK_FULL, str(path)], capture_output=True, text=True,
                         timeout=240, check=True).stdout.splitlines()
    acks = [line.split() for line in out if line.startswith("ack ")]
    errors = [line for line in out if line.startswith("error ")]
    store = TraceStore(str(path))  # still opens
    run_id, last = acks[-1][1], int(acks[-1][2])
    kept = store.sql("SELECT (SELECT count(*) FROM steps WHERE run_id = $r AND step_index <= $i) AS steps, "
                     "(SELECT count(*) FROM tokens WHERE run_id = $r AND step_index <= $i) AS tokens",
                     {"r": run_id, "i": last}).iloc[0]
    lost = (last + 1 - int(kept["steps"])) + (3 * 50 + (last - 2) * 2000 - int(kept["tokens"]))
    clear = len(errors) == 1 and "the disk is full or a file-size limit was hit" in errors[0]
    record("disk_full", part="file-size limit during a run", tried=1, clear_error=int(clear), store_opens=1,
           rows_lost=lost, committed_steps=last + 1)
    assert clear, out
    assert errors[0].startswith("error TraceStoreError reflectnb could not write all of run " + run_id)
    assert lost == 0 and last >= 3


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="zombie and start time come from Linux /proc")
def test_a_run_whose_pid_now_belongs_to_a_newer_process_is_interrupted_and_a_live_one_is_not(tmp_path):
    path = tmp_path / "reuse.duckdb"
    TraceStore(str(path))
    parent = os.getppid()  # alive, and started before "now" but long after 2000
    TraceStore(str(path)).sql(
        "INSERT INTO runs (run_id, status, pid, host, started_at) VALUES "
        "('reused', 'running', $p, $h, TIMESTAMPTZ '2000-01-01 00:00:00+00'), ('live', 'running', $p, $h, now())",
        {"p": parent, "h": socket.gethostname()}, write=True)
    reopened = TraceStore(str(path))
    statuses = reopened.sql("SELECT run_id, status FROM runs ORDER BY run_id")
    assert dict(zip(statuses["run_id"], statuses["status"])) == {"live": "running", "reused": "interrupted"}


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="zombie and start time come from Linux /proc")
def test_a_run_of_a_killed_but_not_yet_reaped_process_is_interrupted(tmp_path):
    path = tmp_path / "zombie.duckdb"
    TraceStore(str(path))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        TraceStore(str(path)).sql("INSERT INTO runs (run_id, status, pid, host, started_at) VALUES "
                                  "('zombie', 'running', $p, $h, now())",
                                  {"p": child.pid, "h": socket.gethostname()}, write=True)
        os.kill(child.pid, signal.SIGKILL)
        for _ in range(1000):  # until the kernel has made it a zombie (we do not reap it yet)
            if Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.01)
        status = TraceStore(str(path)).sql("SELECT status FROM runs")["status"].tolist()
    finally:
        child.kill()
        child.wait(timeout=30)
    assert status == ["interrupted"]
