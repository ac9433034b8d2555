"""Evaluation over HTTP: items per minute with requests in flight at once vs one at a time.

``reflectnb.compare`` (the code path ``%reflect_eval`` runs) of ``--items`` arithmetic
items (``rg:basic_arithmetic``, generated locally) × ``reflect(rounds=1)`` (draft,
feedback, refine: three requests per item) against the loopback OpenAI-compatible
server of the test suite (``tests/openai_server.py``, in its own process, as in
``bench_http.py``): it streams, serves every request in its own thread and takes
``--delay`` seconds per token, as a serving engine's decode step would. Its answers
are scripted (``REPLY``, no ``STOP``, so every item runs all three steps): what is
measured is the client — how many requests evaluation keeps in flight.

Two settings, in one process, traces written to a temporary trace store as a notebook
would: the concurrent backend (``concurrency`` default 16, evaluation's default batch
size) against today's sequential backend (``concurrency=1``: one request at a time,
the same code otherwise). Goal: >= 8x items/min. The JSON (``results/eval_http.json``)
records the server's most requests in flight and the backend calls per setting.

    python benchmarks/bench_eval_http.py [--items 32] [--delay 0.02] [--reply-tokens 68] [--batch-size N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from bench_http import SERVE_LOOPBACK
from report import Goal, write_result

# 68 whitespace tokens (one streamed chunk each), about a short chain of thought; no "STOP",
# so feedback never ends the loop early. --reply-tokens cuts it shorter.
REPLY = ("Let me work through it step by step. First I read the numbers in the question and the "
         "operation it asks for. Then I combine the first two numbers, write down the partial result, "
         "and combine it with the next one in the same way. Finally I check the result once more by "
         "doing the operations in reverse, and it matches what I found. The answer is 42.")
METHOD = "reflect(rounds=1)"


class LoopbackServer:
    """The test suite's loopback server in a child process; ``max_in_flight`` once closed."""

    def __init__(self, reply: str, delay: float):
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE_LOOPBACK, str(HERE.parent / "tests"), reply,
                                      str(delay)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        self.max_in_flight = 0

    def close(self) -> None:
        out, _ = self.proc.communicate("", timeout=30)
        self.max_in_flight = int(out.split()[-1])


def evaluate(tasks, url: str, concurrency: int, batch_size: int | None) -> dict:
    """One ``compare`` run; items/min and what the backend did."""
    from reflectnb.backends.openai_http import OpenAIBackend
    from reflectnb.evaluate import compare

    backend = OpenAIBackend("bench", url, concurrency=concurrency)  # default retries, as a user has
    calls = _count_calls(backend)
    options = {} if batch_size is None else {"batch_size": batch_size}
    started = time.perf_counter()
    result = compare(tasks, [METHOD], model=backend, resume=False, progress=False, **options)
    seconds = time.perf_counter() - started
    summary = result.summary().iloc[0]
    items = int(summary["n"])
    assert items == len(tasks.items), f"{items} of {len(tasks.items)} items came back"
    return {"concurrency": concurrency, "batch_size": result.settings["batch_size"], "items": items,
            "seconds": seconds, "items_per_minute": 60 * items / seconds, "generate_calls": calls["calls"],
            "requests": calls["rows"], "rows_per_call_max": calls["widest"],
            "tokens_per_item": float(summary["tokens_per_item"])}


def _count_calls(backend) -> dict:
    """Wrap ``backend.generate`` to count calls and rows (what evaluation merged)."""
    counts = {"calls": 0, "rows": 0, "widest": 0}
    inner = backend.generate

    def generate(prompts, params=None, on_token=None):
        counts["calls"] += 1
        counts["rows"] += len(prompts)
        counts["widest"] = max(counts["widest"], len(prompts))
        return inner(prompts, params, on_token=on_token)

    backend.generate = generate
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.02, help="server: seconds per token (a decode step)")
    parser.add_argument("--reply-tokens", type=int, default=len(REPLY.split()), help="server: tokens per answer")
    parser.add_argument("--batch-size", type=int, default=None, help="evaluation batch size (default: compare's)")
    args = parser.parse_args()

    from reflectnb.evaluate import load_tasks

    tasks = load_tasks("rg:basic_arithmetic", n=args.items, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["REFLECTNB_TRACES"] = str(Path(tmp) / "traces.duckdb")
        reply = " ".join(REPLY.split()[-args.reply_tokens:])  # ends "The answer is 42." when cut
        server = LoopbackServer(reply, args.delay)
        try:
            evaluate(load_tasks("rg:basic_arithmetic", n=2, seed=1), server.url, 2, None)  # warm-up
            concurrent = evaluate(tasks, server.url, 16, args.batch_size)
            sequential = evaluate(tasks, server.url, 1, args.batch_size)
        finally:
            server.close()
    ratio = concurrent["items_per_minute"] / sequential["items_per_minute"]
    for name, run in (("concurrent", concurrent), ("sequential", sequential)):
        print(f"{name:>10}: concurrency {run['concurrency']}, batch size {run['batch_size']}: {run['seconds']:.1f} s, "
              f"{run['items_per_minute']:.0f} items/min, {run['generate_calls']} generate calls "
              f"(widest {run['rows_per_call_max']} rows), {run['requests']} requests")
    print(f"speed-up {ratio:.1f}x (goal >= 8x); the server saw at most {server.max_in_flight} requests at once")
    result = {"task": "rg:basic_arithmetic", "method": METHOD, "items": args.items, "delay_per_token_s": args.delay,
              "reply_tokens": len(reply.split()), "trace": True, "concurrent": concurrent, "sequential": sequential,
              "speedup": ratio, "max_in_flight_seen_by_server": server.max_in_flight}
    goals = [Goal(f"%reflect_eval {args.items} items x {METHOD} over HTTP, concurrent vs one request at a time "
                  "(items/min)", ratio, ">=", 8)]
    write_result("eval_http", result, goals)


if __name__ == "__main__":
    main()
