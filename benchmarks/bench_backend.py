"""Foundation benchmark: the local backend against plain ``model.generate``.

Reports, measured in one run on the same prompts (ratios, because shared
machines drift):

* tokens/s of ``LocalBackend.generate`` (streaming + logprob + entropy per token)
  divided by tokens/s of plain ``model.generate``, at batch 1 and batch 8
  (goal >= 0.95): the median of the ratios of ``--repeats`` adjacent pairs;
* cold load of the embedded model from the converted cache, median of 5 fresh interpreters (goal < 3 s);
* first conversion time of the GGUF (into a temporary cache);
* ``%load_ext reflectnb`` time in a fresh IPython process (goal < 1 s).

Usage: ``python benchmarks/bench_backend.py [--tokens 64] [--repeats 5] [--skip-conversion]``.
Writes ``benchmarks/results/backend.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from report import Goal, write_result
from reflectnb.backends import load_model
from reflectnb.backends.base import GenerationParams
from reflectnb.trace import Message

QUESTIONS = ["What is 17 times 3?", "Name three rivers in Europe.", "Why do leaves fall in autumn?",
             "Write a haiku about snow.", "What is a prime number?", "Explain photosynthesis briefly.",
             "How many legs does a spider have?", "Give a synonym for happy."]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain(backend, prompts, tokens):
    inputs = backend.encode(prompts)
    with torch.inference_mode():
        backend.model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                               pad_token_id=backend.tokenizer.pad_token_id)


def ours(backend, prompts, tokens):
    backend.generate(prompts, GenerationParams(max_new_tokens=tokens, extra={}), on_token=lambda e: None)


def throughput_ratio(backend, batch: int, tokens: int, repeats: int) -> dict:
    prompts = [[Message("user", q)] for q in (QUESTIONS * 2)[:batch]]
    # Fix the length so both sides generate the same number of tokens.
    backend.model.generation_config.min_new_tokens = tokens
    try:
        plain(backend, prompts, 4)  # warm-up
        t_plain, t_ours = [], []
        for i in range(repeats):  # adjacent pairs, alternating which goes first: drift and order cancel in a pair
            runs = [(t_plain, lambda: plain(backend, prompts, tokens)), (t_ours, lambda: ours(backend, prompts, tokens))]
            for times, run in runs if i % 2 == 0 else runs[::-1]:
                times.append(timed(run))
    finally:
        backend.model.generation_config.min_new_tokens = None
    tps_plain = batch * tokens / statistics.median(t_plain)
    tps_ours = batch * tokens / statistics.median(t_ours)
    return {"batch": batch, "tokens": tokens, "plain_tokens_per_s": tps_plain, "reflectnb_tokens_per_s": tps_ours,
            "ratio": statistics.median([p / o for p, o in zip(t_plain, t_ours)]), "pairs": repeats}


def cold_load_seconds(runs: int = 5) -> float:
    """Median over ``runs`` fresh interpreters (one start is too noisy on a shared machine)."""
    code = ("import time; t=time.perf_counter(); from reflectnb.backends import load_model; "
            "load_model('smollm2-135m'); print(time.perf_counter()-t)")
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def load_ext_seconds() -> float:
    code = ("from IPython.testing.globalipapp import start_ipython; import time; ip=start_ipython(); "
            "t=time.perf_counter(); ip.run_line_magic('load_ext','reflectnb'); print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def conversion_seconds() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "REFLECTNB_CACHE": tmp}
        code = ("import time; t=time.perf_counter(); from reflectnb.backends.embedded import ensure_converted; "
                "ensure_converted(progress=False); print(time.perf_counter()-t)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)  # pairs; with 3, full runs swung 0.82-1.06x
    parser.add_argument("--skip-conversion", action="store_true")
    args = parser.parse_args()
    backend = load_model("smollm2-135m", engine="transformers")  # measures the generate wrapper; min_new_tokens below
    backend.repetition_default = False  # both sides generate exactly --tokens tokens
    result = {"device": str(backend.device), "threads": torch.get_num_threads(),
              "throughput": [throughput_ratio(backend, b, args.tokens, args.repeats) for b in (1, 8)],
              "cold_load_s": cold_load_seconds(), "load_ext_s": load_ext_seconds()}
    if not args.skip_conversion:
        result["first_conversion_s"] = conversion_seconds()
    for row in result["throughput"]:
        print(f"batch {row['batch']}: reflectnb {row['reflectnb_tokens_per_s']:.1f} tok/s vs plain "
              f"{row['plain_tokens_per_s']:.1f} tok/s  ratio {row['ratio']:.3f} (goal >= 0.95)")
    print(f"cold load from cache {result['cold_load_s']:.2f} s (goal < 3 s); "
          f"%load_ext {result['load_ext_s']:.3f} s (goal < 1 s)")
    if "first_conversion_s" in result:
        print(f"first conversion {result['first_conversion_s']:.1f} s")
    goals = [Goal(f"batch-{row['batch']} wrapper ÷ plain generate", row["ratio"], ">=", 0.95)
             for row in result["throughput"]]
    goals += [Goal("cold load from the converted cache", result["cold_load_s"], "<", 3.0, " s"),
              Goal("%load_ext reflectnb", result["load_ext_s"], "<", 1.0, " s")]
    write_result("backend", result, goals)


if __name__ == "__main__":
    main()
