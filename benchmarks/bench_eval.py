"""Evaluation throughput on the embedded model: items per minute, batched across items vs one by one.

For baseline and for reflect (Self-Refine, 1 round: draft, feedback, refine),
the same items are run with ``batch_size=B`` (their generate calls merged into
one call per step) and with ``batch_size=1``, in one process, after a warm-up
generation, in ``--repeats`` interleaved pairs; each way's run of median time
is reported (the machine is shared, and one pair swung 1.6-2.3x). Greedy decoding, tracing off (the trace store has its own
benchmark). The goal in the issue is >= 3x at batch 8. Ratios come from one
run on this machine; the JSON goes to ``benchmarks/results/eval.json``.

Each dtype is measured separately (``--dtypes``), with the engine's time in
prefill and in decode steps (``engine_clock``). Why the goal may be out of
reach, and how far: prompt tokens cost about the same batched or not (prefill
is a compute-bound matrix product already at batch 1), a batch steps until its
longest row stops, and an item's calls follow one another (its feedback needs
its draft). So beside each ratio the report gives the most *any* schedule of
these items could reach (``ratio_bounds``, derived there): the batched run's
prefill plus the fewest decode steps any schedule needs, at a step cost
measured at every row count (``step_costs``), with the steps each item runs
alone measured item by item (``item_chains``); and the ratio with free
decoding. The JSON records the device, the CPU model and its bf16-relevant
flags, and per setting the accuracy, tokens/item, prefill and decode seconds,
step counts, the items' chains and the step costs.

    python benchmarks/bench_eval.py [--items 8] [--batch 8] [--max-tokens 32] [--dtypes float32,bfloat16]
                                    [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from engine_clock import EngineClock
from machine import cpu_info
from report import Goal, write_result


def measure(tasks, method: str, backend, batch_size: int, max_tokens: int, clock: EngineClock) -> dict:
    from reflectnb.evaluate import compare

    fast = getattr(backend, "fast", None)
    if fast is not None:  # nothing kept from the measurement before (prefix reuse would carry over)
        fast.forget()
    clock.take()
    started = time.perf_counter()
    result = compare(tasks, [method], model=backend, batch_size=batch_size, max_tokens=max_tokens,
                     trace=False, progress=False)
    seconds = time.perf_counter() - started
    summary = result.summary().iloc[0]
    inside = clock.take()
    return {"method": method, "batch_size": batch_size, "items": int(summary["n"]), "seconds": seconds,
            "items_per_minute": 60 * int(summary["n"]) / seconds, "tokens_per_item": float(summary["tokens_per_item"]),
            "accuracy": float(summary["accuracy"]), "prefill_s": inside["prefill"], "decode_s": inside["step"],
            "decode_steps": inside["steps"]}


def device_info(backend) -> dict:
    """Where the model ran: ``cpu`` or ``cuda:0`` (with the GPU's name) and its dtype."""
    import torch

    device = str(getattr(backend, "device", "cpu"))
    gpu = torch.cuda.get_device_name(backend.device) if device.startswith("cuda") else None
    return {"device": device, "gpu": gpu, "dtype": str(backend.model.dtype),
            "engine": backend.describe() if hasattr(backend, "describe") else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--methods", default="baseline,reflect(rounds=1)")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved pairs of runs; the median run of each way")
    parser.add_argument("--step-columns", type=int, default=128,
                        help="keys cached when step costs are measured (about a reflect prompt and its answer)")
    args = parser.parse_args()

    import torch

    from reflectnb.backends import load_model
    from reflectnb.backends.base import GenerationParams
    from reflectnb.evaluate import load_tasks
    from reflectnb.evaluate.methods import split_top_level

    tasks = load_tasks("rg:basic_arithmetic", n=args.items, seed=0)
    rows = []
    for dtype in args.dtypes.split(","):
        backend = load_model("smollm2-135m", dtype=dtype)
        backend.generate_one("Hello", GenerationParams(max_new_tokens=4))  # warm-up
        clock = EngineClock(backend)
        costs = step_costs(backend, args.batch, args.step_columns) if getattr(backend, "fast", None) else []
        clock.take()
        print(f"{dtype:>9} decode step at 1..{args.batch} rows, {args.step_columns} keys cached: "
              + " / ".join(f"{1000 * c:.1f}" for c in costs) + " ms")
        for method in split_top_level(args.methods):
            pairs = [(measure(tasks, method, backend, args.batch, args.max_tokens, clock),
                      measure(tasks, method, backend, 1, args.max_tokens, clock)) for _ in range(args.repeats)]
            batched, single = (_median_run([pair[i] for pair in pairs]) for i in (0, 1))
            speedup = batched["items_per_minute"] / single["items_per_minute"]
            chains = item_chains(tasks, method, backend, args.max_tokens, clock)
            bounds = ratio_bounds(single, batched, chains, costs)
            rows.append({"dtype": dtype, "method": method, **device_info(backend), "batched": batched,
                         "unbatched": single, "speedup": speedup, "item_chains": chains,
                         "step_costs_s": costs, "bounds": bounds})
            print(f"{dtype:>9} {method:>20}: batch {args.batch}: {batched['items_per_minute']:7.1f} items/min "
                  f"(accuracy {batched['accuracy']:.2f}, {batched['tokens_per_item']:.1f} tokens/item); "
                  f"batch 1: {single['items_per_minute']:7.1f} items/min (accuracy {single['accuracy']:.2f}, "
                  f"{single['tokens_per_item']:.1f} tokens/item); speedup {speedup:.2f}x")
            for row in (single, batched):
                print(f"{'':>31}batch {row['batch_size']}: {row['seconds']:.2f} s, of it prefill "
                      f"{row['prefill_s']:.2f} s, {row['decode_steps']} decode steps {row['decode_s']:.2f} s")
            if bounds:
                print(f"{'':>31}items alone decode {chains} steps; any schedule needs at least "
                      f"{bounds['decode_s_at_least']:.2f} s of steps: at most {bounds['any_schedule']:.2f}x; "
                      f"with every step full {bounds['packed']:.2f}x; with free decoding {bounds['free_decoding']:.2f}x")
        clock.close()
    cpu = cpu_info()
    print(f"on {cpu['model']} ({', '.join(f for f, has in cpu['flags'].items() if has) or 'no bf16 flags'}), "
          f"{torch.get_num_threads()} threads")
    report = {"devices": sorted({r["device"] for r in rows}), "cpu": cpu, "threads": torch.get_num_threads(),
              "machine": platform.machine(),
              "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg(), "items": args.items,
              "batch": args.batch, "max_tokens": args.max_tokens, "task": "rg:basic_arithmetic", "results": rows,
              "goal": ">= 3x items per minute at batch 8"}
    goals = [Goal(f"evaluation {r['dtype']} {r['method']}: batch {args.batch} vs 1 items/min", r["speedup"], ">=", 3.0,
                  note=_bound_note(r)) for r in rows]
    write_result("eval", report, goals)


def _median_run(runs: list[dict]) -> dict:
    """The run of median wall time (its own prefill and decode figures with it), and how many were taken."""
    return {**sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2], "runs": len(runs)}


def item_chains(tasks, method: str, backend, max_tokens: int, clock: EngineClock) -> list[int]:
    """Decode steps each item runs on its own (its calls one after another), measured item by item.

    No schedule can finish an item in fewer steps: each of its tokens after a
    call's first is one step, and its next call's prompt holds the last call's
    answer. The first token of a call comes from its prefill.
    """
    from dataclasses import replace

    from reflectnb.evaluate import compare

    fast = getattr(backend, "fast", None)
    if fast is not None:
        fast.forget()
    chains = []
    for item in tasks.items:
        clock.take()
        compare(replace(tasks, items=[item]), [method], model=backend, batch_size=1, max_tokens=max_tokens,
                trace=False, progress=False)
        chains.append(clock.take()["steps"])
    return chains


def step_costs(backend, batch: int, columns: int, reps: int = 8) -> list[float]:
    """Seconds of one decode step at 1..``batch`` rows with ``columns`` keys cached, the least of ``reps``.

    The engine's own step, on the threads generation gives it (torch on one
    thread between steps, the C step choosing its count).
    """
    import torch

    from reflectnb.backends.engine_loop import torch_threads

    engine, threads = backend.fast.engine, torch.get_num_threads()
    costs = []
    for rows in range(1, batch + 1):
        cache = engine.new_cache(rows, columns + reps)
        engine.prefill(cache, torch.randint(1000, 20000, (rows, columns)))
        token = torch.full((rows,), 1000)
        best = float("inf")
        with torch_threads(1):
            for _ in range(reps):
                began = time.perf_counter()
                engine.step(cache, token, threads=threads)
                best = min(best, time.perf_counter() - began)
        costs.append(best)
    return costs


def ratio_bounds(single: dict, batched: dict, chains: list[int], costs: list[float]) -> dict:
    """The most any schedule of these items could reach, and the ratio with free decoding (both optimistic).

    Why it holds. A schedule runs some number of decode steps ``S``, step ``s``
    with ``k_s`` rows, at a cost ``c(k_s)``. ``S`` is at least the longest
    item's chain (``item_chains``), and ``sum k_s`` is every item's steps,
    ``R = sum(chains)``, however they are packed. With ``a + b k`` the line
    under every measured ``c(k)`` (the chord from 1 row to the most, lowered
    until no cost lies below it), ``sum c(k_s) >= a S + b R >= a max(chains) +
    b R``. Prefill is kept at the batched run's (all of a call's rows fed at
    once, the cheapest way measured; a row joining a running batch would be
    prefilled alone), and the time outside the engine is left out. The
    one-by-one run's time is the numerator. ``free_decoding``: prefill alone.
    ``packed``: every step full (``R / batch`` steps at the most rows' cost),
    which only many more items than rows would allow, with joining prompts
    prefilled as cheaply as a whole batch's.
    """
    if not batched["prefill_s"] or not chains or not costs:
        return {}
    a, b = _line_below(costs)
    decode = a * max(chains) + b * sum(chains)
    return {"any_schedule": single["seconds"] / (batched["prefill_s"] + decode), "decode_s_at_least": decode,
            "longest_chain": max(chains), "row_steps": sum(chains), "step_line_ms": [1000 * a, 1000 * b],
            "free_decoding": single["seconds"] / batched["prefill_s"],
            "packed": single["seconds"] / (batched["prefill_s"] + sum(chains) / len(costs) * costs[-1])}


def _line_below(costs: list[float]) -> tuple[float, float]:
    """``(a, b)`` with ``a + b k <= costs[k - 1]`` for every ``k`` and ``a >= 0``: the chord from the first cost to
    the last, lowered until no cost lies below it (``a = 0``, ``b`` the least cost per row if that goes negative)."""
    n = len(costs)
    b = (costs[-1] - costs[0]) / (n - 1) if n > 1 else 0.0
    b = max(b, 0.0)
    a = min(c - b * k for k, c in enumerate(costs, start=1))
    if a < 0:
        return 0.0, min(c / k for k, c in enumerate(costs, start=1))
    return a, b


def _bound_note(row: dict) -> str:
    """What bounds the ratio, in figures: prefill (about the same work batched or not) and the decode steps."""
    bounds = row["bounds"]
    if not bounds:
        return ""
    b, s = row["batched"], row["unbatched"]
    a_ms, b_ms = bounds["step_line_ms"]
    return (f"at most {bounds['any_schedule']:.2f}x for any schedule of these {b['items']} items: prefill takes "
            f"{b['prefill_s']:.2f} s batched and {s['prefill_s']:.2f} s one by one, and the decode steps at least "
            f"{bounds['decode_s_at_least']:.2f} s (the longest item alone decodes {bounds['longest_chain']} steps, "
            f"all items {bounds['row_steps']}; a step costs at least {a_ms:.1f} + {b_ms:.1f} ms per row); "
            f"measured {b['decode_steps']} steps batched ({b['decode_s']:.2f} s), one by one {s['seconds']:.2f} s")


if __name__ == "__main__":
    main()
