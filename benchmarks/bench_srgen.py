"""SRGen overhead: SRGen (REFERENCE Appendix A defaults) against plain generation on the same prompts.

Measured in one run (ratios, because shared machines drift), embedded model, T = 0.6, fixed seeds:

* ``plain``: ``LocalBackend.generate`` (``model.generate`` + token capture);
* ``loop``: the controllers' own KV-cached decode loop with no intervention (``Plain``);
* ``srgen``: ``SRGen()`` with the repo's AIME-script defaults;
* ``srgen_sensitive``: lower thresholds (N=10, K=1, τ=2.0, τ_min=1.5), so that
  corrections actually happen on this small model and their cost can be measured.

Reports total time ratios, time-per-token ratios (SRGen may stop at a different
length), and how often SRGen triggered per run. Usage:
``python benchmarks/bench_srgen.py [--tokens 64] [--repeats 1]``; writes
``benchmarks/results/srgen.json``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from report import write_result
from reflectnb.backends import load_model
from reflectnb.backends.base import GenerationParams
from reflectnb.controllers import SRGen, Plain
from reflectnb.trace import Message

QUESTIONS = ["What is 17 times 3? Think step by step.", "A train travels 60 km in 1.5 hours. What is its speed?",
             "If 3x + 5 = 20, what is x?", "How many legs do 4 spiders have?",
             "What is the sum of the first 10 positive integers?", "Is 91 a prime number? Explain."]


def measure(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def one_round(backend, params_for, srgen, sensitive) -> dict[str, list]:
    rows = {"plain": [], "loop": [], "srgen": [], "srgen_sensitive": []}
    for i, q in enumerate(QUESTIONS):
        prompt, params = [Message("user", q)], params_for(i)
        for name, fn in (("plain", lambda: backend.generate_one(prompt, params)),
                         ("loop", lambda: Plain().run(backend, prompt, params)),
                         ("srgen", lambda: srgen.run(backend, prompt, params)),
                         ("srgen_sensitive", lambda: sensitive.run(backend, prompt, params))):
            seconds, gen = measure(fn)
            rows[name].append({"seconds": seconds, "tokens": gen.completion_tokens,
                               "triggers": gen.params.get("corrections", 0)})
            print(f"  prompt {i} {name:16s} {seconds:6.2f} s  {gen.completion_tokens} tokens  "
                  f"{gen.params.get('corrections', 0)} triggers", flush=True)
    return rows


def summarise(rows: dict[str, list]) -> dict[str, float]:
    total = {k: sum(r["seconds"] for r in v) for k, v in rows.items()}
    per_token = {k: total[k] / max(1, sum(r["tokens"] for r in v)) for k, v in rows.items()}
    triggers = [r["triggers"] for r in rows["srgen"]]
    sensitive = [r["triggers"] for r in rows["srgen_sensitive"]]
    return {"sensitive_over_plain_time": total["srgen_sensitive"] / total["plain"],
            "sensitive_over_loop_per_token": per_token["srgen_sensitive"] / per_token["loop"],
            "sensitive_triggers_per_run_mean": statistics.mean(sensitive), "sensitive_triggers_per_run": sensitive,
            "seconds_per_trigger": (total["srgen_sensitive"] - total["loop"]) / max(1, sum(sensitive)),"srgen_over_plain_time": total["srgen"] / total["plain"],
            "srgen_over_loop_time": total["srgen"] / total["loop"],
            "loop_over_plain_time": total["loop"] / total["plain"],
            "srgen_over_plain_per_token": per_token["srgen"] / per_token["plain"],
            "srgen_over_loop_per_token": per_token["srgen"] / per_token["loop"],
            "triggers_per_run_mean": statistics.mean(triggers), "triggers_per_run": triggers,
            "tokens_per_run_srgen": statistics.mean(r["tokens"] for r in rows["srgen"]),
            "tokens_per_run_plain": statistics.mean(r["tokens"] for r in rows["plain"])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on shared machines)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    backend = load_model("smollm2-135m")
    srgen = SRGen()  # N=25, K=4, min_std=0.5, min_thr=1.8, init_thr=3.0, lam=0.05, lr=0.01, steps=3, T=0.6
    sensitive = SRGen(N=10, K=1.0, init_thr=2.0, min_thr=1.5)  # triggers on this small model
    backend.generate_one("warm up", GenerationParams(max_new_tokens=4))
    rounds = [one_round(backend, lambda i, r=r: GenerationParams(max_new_tokens=args.tokens, temperature=0.6,
                                                                   seed=1000 * r + i), srgen, sensitive)
              for r in range(args.repeats)]
    rows_kinds = ("plain", "loop", "srgen", "srgen_sensitive")
    merged = {k: [row for rnd in rounds for row in rnd[k]] for k in rows_kinds}
    result = {"summary": summarise(merged), "rows": merged, "settings": srgen.settings(), "sensitive_settings": sensitive.settings(),
              "tokens": args.tokens, "prompts": len(QUESTIONS), "repeats": args.repeats,
              "device": str(backend.device), "torch_threads": torch.get_num_threads(),
              "machine": platform.machine()}
    for key, value in result["summary"].items():
        print(f"{key:32s} {value if isinstance(value, list) else round(value, 3)}")
    write_result("srgen", result, [])  # SRGen reports costs; it has no pass/fail goal


if __name__ == "__main__":
    main()
