"""Trace store benchmark: ingest rate, aggregate speed, tracing overhead on a real generation.

Reports, measured in one run:

* token rows/s into a DuckDB **file** through the Arrow bulk path (one
  transaction: open, insert, commit, close), goal >= 1,000,000 rows/s; and
  through the whole recorder path (TokenEvent objects → ``on_step`` →
  background writer → file), which includes building the Arrow columns in Python;
* a typical aggregate over 10 million token rows through ``TraceStore.sql``
  (open read-only, query, close), goal < 0.5 s;
* generation time traced ÷ untraced for the embedded SmolLM2-135M
  (``reflectnb.backends.load_model("smollm2-135m")``), interleaved pairs,
  median ratio, goal <= 1.02. Beside it, to tell tracing cost from a loaded
  machine's noise: how long a traced run waits after ``generate`` returns (the
  run's one write: attach, insert, commit, checkpoint), the recorder's work
  replayed without the model, and the process-CPU ratio of the same pairs.

Usage: ``PYTHONPATH=. python benchmarks/bench_store.py [--rows 10000000] [--pairs 8] [--tokens 48] [--skip-model]``.
Writes ``benchmarks/results/store.json``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from report import Goal, write_result
from reflectnb.store import open_store, rows
from reflectnb.trace import Generation, Message, Step, TokenEvent

AGGREGATE = """SELECT run_id, count(*) AS tokens, avg(entropy) AS mean_entropy,
    count(*) FILTER (WHERE is_reflection) AS reflections, avg(logprob) AS mean_logprob
    FROM tokens GROUP BY run_id ORDER BY reflections DESC LIMIT 20"""


def arrow_tokens(n: int, runs: int = 100) -> pa.Table:
    """A token table of ``n`` synthetic rows built by DuckDB (fast), as Arrow."""
    return duckdb.sql(f"""SELECT 'run-' || (range % {runs}) AS run_id, 0::INTEGER AS gen_index,
        (range // 1000)::INTEGER AS step_index, 0::INTEGER AS row, (range % 1000)::INTEGER AS position,
        (range % 49152)::BIGINT AS token_id, 'tok' || (range % 500) AS text, -random() AS logprob,
        random() * 3 AS entropy, range % 97 = 0 AS is_reflection, NULL::DOUBLE AS schedule_value,
        NULL::VARCHAR AS intervention FROM range({n})""").to_arrow_table()


def ingest_arrow(folder: Path, n: int) -> dict:
    store = open_store(folder / "ingest.duckdb")
    data = arrow_tokens(n)
    start = time.perf_counter()
    with store.db.connect() as con:
        rows.insert(con, "tokens", data)
    seconds = time.perf_counter() - start
    return {"rows": n, "seconds": seconds, "rows_per_s": n / seconds, "goal_rows_per_s": 1_000_000}


def ingest_recorder(folder: Path, n: int, per_step: int = 500) -> dict:
    store = open_store(folder / "recorder.duckdb")
    tokens = [TokenEvent(0, i % per_step, i % 49152, f"tok{i % 500}", -0.5, 1.0, i % 97 == 0) for i in range(n)]
    gens = [Generation("x", "m", "p", tokens[i:i + per_step], 3, per_step) for i in range(0, n, per_step)]
    start = time.perf_counter()
    with store.run("bench", "m", {}) as run:
        loop_start = time.perf_counter()
        for g in gens:
            run.on_step(Step("generation", g.text, generation=g))
        loop_seconds = time.perf_counter() - loop_start
    seconds = time.perf_counter() - start
    return {"rows": n, "seconds": seconds, "rows_per_s": n / seconds,
            "on_step_seconds_in_loop": loop_seconds, "steps": len(gens)}


def aggregate(folder: Path, n: int) -> dict:
    store = open_store(folder / "big.duckdb")
    start = time.perf_counter()
    with store.db.connect() as con:
        for offset in range(0, n, 2_000_000):
            rows.insert(con, "tokens", arrow_tokens(min(2_000_000, n - offset)))
    load = time.perf_counter() - start
    times = []
    for _ in range(5):
        t = time.perf_counter()
        frame = store.sql(AGGREGATE)
        times.append(time.perf_counter() - t)
    size = (folder / "big.duckdb").stat().st_size
    return {"rows": n, "load_seconds": load, "query_seconds_median": statistics.median(times),
            "query_seconds_first": times[0], "result_rows": len(frame), "file_mb": size / 2**20,
            "goal_seconds": 0.5}


def overhead(folder: Path, pairs: int, tokens: int) -> dict:
    from reflectnb.backends import load_model
    from reflectnb.backends.base import GenerationParams

    backend = load_model("smollm2-135m")
    store = open_store(folder / "overhead.duckdb")
    params = GenerationParams(max_new_tokens=tokens, temperature=0.0, repetition_stop=False)
    prompt = [[Message("user", "Explain in detail why the sky is blue, step by step.")]]
    backend.generate(prompt, params)  # warm up

    def untraced() -> float:
        t = time.perf_counter()
        backend.generate(prompt, params)
        return time.perf_counter() - t

    waits: list[float] = []  # per traced run: from the end of generate to the end of the run (the write)

    def traced() -> float:
        t = time.perf_counter()
        with store.run("generate", backend.name, params.to_dict()) as run:
            gen = backend.generate(prompt, params, on_token=run.on_token)[0]
            generated = time.perf_counter()
            run.on_step(Step("generation", gen.text, generation=gen))
            run.set_result(gen.text, gen.finish_reason)
        end = time.perf_counter()
        waits.append(end - generated)
        return end - t

    def replay() -> float:
        """The recorder's own work for one traced generation (run start/end, tokens, step)."""
        t = time.perf_counter()
        with store.run("generate", backend.name, params.to_dict()) as run:
            for event in gen.tokens:
                run.on_token(event)
            run.on_step(Step("generation", gen.text, generation=gen))
        return time.perf_counter() - t

    gen = backend.generate(prompt, params)[0]
    ratios, plain, with_trace, cpu_ratios = [], [], [], []
    for i in range(pairs):
        cpu = time.process_time()
        if i % 2 == 0:  # alternate the order so drift hits both sides
            a, cpu_a = untraced(), time.process_time() - cpu
            b, cpu_b = traced(), time.process_time() - cpu - cpu_a
        else:
            b, cpu_b = traced(), time.process_time() - cpu
            a, cpu_a = untraced(), time.process_time() - cpu - cpu_b
        plain.append(a)
        with_trace.append(b)
        ratios.append(b / a)
        cpu_ratios.append(cpu_b / cpu_a)
    added = statistics.median(replay() for _ in range(10))
    base = statistics.median(plain)
    return {"pairs": pairs, "max_new_tokens": tokens, "untraced_median_s": base,
            "traced_median_s": statistics.median(with_trace), "ratio_median": statistics.median(ratios),
            "ratio_of_medians": statistics.median(with_trace) / base, "recorder_seconds_per_run": added,
            "traced_wait_after_generate_median_s": statistics.median(waits),
            "cpu_ratio_median": statistics.median(cpu_ratios),
            "ratio_from_recorder_work": (base + added) / base, "goal_ratio": 1.02}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--ingest-rows", type=int, default=2_000_000)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()
    results: dict = {"duckdb": duckdb.__version__, "machine": platform.platform(), "cpus": _cpus()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["ingest_arrow"] = ingest_arrow(folder, args.ingest_rows)
        print(f"ingest (Arrow bulk path, file): {results['ingest_arrow']['rows_per_s']:,.0f} rows/s")
        results["ingest_recorder"] = ingest_recorder(folder, min(args.ingest_rows, 1_000_000))
        print(f"ingest (recorder path, TokenEvent → file): {results['ingest_recorder']['rows_per_s']:,.0f} rows/s")
        results["aggregate"] = aggregate(folder, args.rows)
        agg = results["aggregate"]
        print(f"aggregate over {agg['rows']:,} token rows: {agg['query_seconds_median']:.3f} s median "
              f"(first {agg['query_seconds_first']:.3f} s; file {agg['file_mb']:.0f} MB)")
        if not args.skip_model:
            results["overhead"] = overhead(folder, args.pairs, args.tokens)
            o = results["overhead"]
            print(f"tracing overhead: traced ÷ untraced = {o['ratio_median']:.3f} (median of {o['pairs']} pairs; "
                  f"ratio of medians {o['ratio_of_medians']:.3f}); recorder work per run "
                  f"{o['recorder_seconds_per_run'] * 1000:.1f} ms → {o['ratio_from_recorder_work']:.4f}; "
                  f"wait after generate {o['traced_wait_after_generate_median_s'] * 1000:.1f} ms; "
                  f"process CPU ratio {o['cpu_ratio_median']:.3f}")
    goals = [Goal("Arrow ingest into a file", results["ingest_arrow"]["rows_per_s"], ">=", 1_000_000, " rows/s"),
             Goal(f"aggregate over {results['aggregate']['rows']:,} token rows",
                  results["aggregate"]["query_seconds_median"], "<", 0.5, " s")]
    if "overhead" in results:
        goals.append(Goal("traced ÷ untraced generation (median of pairs)", results["overhead"]["ratio_median"],
                          "<=", 1.02))
    write_result("store", results, goals)


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
