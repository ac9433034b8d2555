"""``python -m benchmarks``: run every benchmark, then write one table of goals.

Each benchmark runs as its own process (a fresh interpreter, so one does not warm
another's caches) and writes ``results/<name>.json`` with a ``goals`` list (see
``report.py``). This script gathers them into ``results/summary.md`` and
``results/summary.json`` — each goal, its figure, met or not — headed by the machine:
its CPU, its measured read bandwidth, the bandwidth bound of the embedded model in
fp32 and bf16, and llama.cpp's batch-1 rate on the same GGUF when
``llama-cpp-python`` is installed.

Usage::

    python -m benchmarks                  # all of them (about 15-25 min on 2 cores)
    python -m benchmarks --only engine http
    python -m benchmarks --summary-only   # rebuild the table from existing results
    python -m benchmarks --docs           # also copy the table into docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import bandwidth_bound, cpu_info, llamacpp_tokens_per_s, read_bandwidth_gbs  # noqa: E402
from report import RESULTS  # noqa: E402

# name -> (script, extra arguments). Order: cheap first, so a broken set-up shows early.
BENCHMARKS = {
    "backend": ("bench_backend.py", ["--skip-conversion"]),
    "engine": ("bench_engine.py", []),
    "accuracy": ("bench_accuracy.py", []),
    "decoding": ("bench_decoding.py", []),
    "loops": ("bench_loops.py", []),
    "tree": ("bench_tree.py", []),
    "store": ("bench_store.py", []),
    "http": ("bench_http.py", []),
    "eval": ("bench_eval.py", []),
    "eval_http": ("bench_eval_http.py", []),
    "repetition": ("bench_repetition.py", []),
    "srgen": ("bench_srgen.py", []),
    "stop": ("bench_stop.py", []),
    "browse": ("bench_browse.py", []),
    "browser_runs": ("bench_browser_runs.py", []),
    "notebooks": ("bench_notebooks.py", []),
}
DOCS_PAGE = HERE.parent / "docs" / "benchmarks.md"
MARK_BEGIN, MARK_END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"
PROMPT = "What is 17 times 3?"


def run_all(names: list[str], timeout: float) -> dict[str, str]:
    """Run each benchmark script; return name -> how it ended."""
    ended = {}
    for name in names:
        script, extra = BENCHMARKS[name]
        if not (HERE / script).exists():
            ended[name] = "missing"
            continue
        print(f"\n== {name} ({script})", flush=True)
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, str(HERE / script), *extra], timeout=timeout, check=False)
            ended[name] = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            ended[name] = f"timed out after {timeout:.0f} s"
        print(f"== {name}: {ended[name]} in {time.perf_counter() - start:.0f} s", flush=True)
    return ended


def embedded_parameters() -> int:
    """Parameter count of the converted embedded model, read from safetensors headers (no weights loaded)."""
    from safetensors import safe_open

    from reflectnb.backends.embedded import ensure_converted

    total = 0
    for file in sorted(Path(ensure_converted()).glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            for key in f.keys():
                total += _numel(f.get_slice(key).get_shape())
    return total


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def machine_section() -> dict:
    params = embedded_parameters()
    gbs = read_bandwidth_gbs()
    return {"cpu": cpu_info(), "read_gbs": gbs, "embedded_parameters": params,
            "bounds": [bandwidth_bound(params, d, gbs) for d in ("float32", "bfloat16", "int8")],
            "llamacpp_batch1_tokens_per_s": llamacpp_tokens_per_s(PROMPT)}


def gather(ended: dict[str, str]) -> list[dict]:
    rows = []
    for name in BENCHMARKS:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            rows.append({"benchmark": name, "name": "(no result)", "figure": None, "op": "", "target": None,
                         "unit": "", "met": None, "note": ended.get(name, "not run")})
            continue
        data = json.loads(path.read_text())
        for goal in data.get("goals", []):
            rows.append({"benchmark": name, "finished": data.get("finished"), **goal})
        if not data.get("goals"):
            rows.append({"benchmark": name, "name": "(reports figures only; no pass/fail goal)", "figure": None, "op": "",
                         "target": None, "unit": "", "met": None, "note": ""})
    return rows


def markdown(machine: dict, rows: list[dict]) -> str:
    cpu = machine["cpu"]
    flags = ", ".join(f for f, has in cpu["flags"].items() if has) or "none of " + ", ".join(cpu["flags"])
    lines = [f"Machine: {cpu['model']}, {cpu['cores']} cores ({flags}); measured read bandwidth "
             f"{machine['read_gbs']:.1f} GB/s.", "",
             f"Bandwidth bound of the embedded model ({machine['embedded_parameters'] / 1e6:.1f} M parameters) at batch 1: "
             + "; ".join(f"{b['dtype']} {b['weight_mb']:.0f} MB/token → {b['bound_tokens_per_s']:.0f} tok/s"
                         for b in machine["bounds"]) + ".", ""]
    rate = machine["llamacpp_batch1_tokens_per_s"]
    lines += [f"llama.cpp on the same GGUF, batch 1: {rate:.1f} tok/s." if rate else
              "llama.cpp: `llama-cpp-python` is not installed here, so its rate is not measured.", "",
              "| benchmark | goal | figure | target | met |", "|---|---|---|---|---|"]
    for r in rows:
        figure = "—" if r["figure"] is None else f"{r['figure']:.3g}{r['unit']}"
        target = "" if r["target"] is None else f"{r['op']} {r['target']:g}{r['unit']}"
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        note = f" ({r['note']})" if r.get("note") else ""
        lines.append(f"| {r['benchmark']} | {r['name']}{note} | {figure} | {target} | {met} |")
    return "\n".join(lines) + "\n"


def write_docs(table: str) -> None:
    text = DOCS_PAGE.read_text()
    head, _, rest = text.partition(MARK_BEGIN)
    _, _, tail = rest.partition(MARK_END)
    DOCS_PAGE.write_text(f"{head}{MARK_BEGIN}\n{table}{MARK_END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--summary-only", action="store_true", help="do not run; rebuild the table")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark")
    parser.add_argument("--docs", action="store_true", help=f"copy the table into {DOCS_PAGE.name}")
    args = parser.parse_args()
    ended = {} if args.summary_only else run_all(args.only or list(BENCHMARKS), args.timeout)
    machine = machine_section()
    rows = gather(ended)
    table = markdown(machine, rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.md").write_text(table)
    (RESULTS / "summary.json").write_text(json.dumps({"machine": machine, "goals": rows, "ended": ended},
                                                     indent=2, default=str) + "\n")
    print("\n" + table)
    if args.docs:
        write_docs(table)
        print(f"updated {DOCS_PAGE}")


if __name__ == "__main__":
    main()
