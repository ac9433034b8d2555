"""Decoding benchmark: a CyclicReflex schedule plus full token tracing vs plain generation.

Measured in one run on the embedded model, same prompts, same number of new tokens
(``min_new_tokens`` pins the length so both sides do the same work):

* plain ``model.generate`` (no processor, no per-token capture);
* ``reflectnb.generate`` with ``schedule="cyclic(amplitude=5, period=600)"``, per-token
  logprob / entropy / schedule value / reflection flag, written to a real DuckDB trace file.

Prints traced+scheduled ÷ plain time (goal <= 1.10). Usage:
``python benchmarks/bench_decoding.py [--tokens 64] [--batch 4] [--repeats 3]``;
writes ``benchmarks/results/decoding.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from report import Goal, write_result
import reflectnb
from reflectnb.backends import load_model
from reflectnb.trace import Message

QUESTIONS = ["Is coffee good for you?", "Should cities ban cars?", "Why do we dream?", "Is math discovered?"]


def plain(backend, prompts, tokens: int) -> None:
    inputs = backend.encode(prompts)
    with torch.inference_mode():
        backend.model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                               pad_token_id=backend.tokenizer.pad_token_id)


def scheduled(backend, prompts, tokens: int) -> None:
    reflectnb.generate(prompts, model=backend, schedule="cyclic(amplitude=5, period=600)", max_tokens=tokens)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    backend = load_model("smollm2-135m", engine="transformers")  # measures the generate wrapper; min_new_tokens below
    backend.repetition_default = False  # both sides generate exactly --tokens tokens
    prompts = [[Message("user", q)] for q in (QUESTIONS * 4)[: args.batch]]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["REFLECTNB_TRACES"] = str(Path(tmp) / "traces.duckdb")
        backend.model.generation_config.min_new_tokens = args.tokens  # same length on both sides
        try:
            scheduled(backend, prompts, 4)  # warm-up (and creates the trace file)
            t_plain, t_ours = [], []
            for _ in range(args.repeats):  # interleaved, to share the machine's drift
                t_plain.append(timed(lambda: plain(backend, prompts, args.tokens)))
                t_ours.append(timed(lambda: scheduled(backend, prompts, args.tokens)))
        finally:
            backend.model.generation_config.min_new_tokens = None
    ratio = statistics.median(t_ours) / statistics.median(t_plain)
    result = {"batch": args.batch, "tokens": args.tokens, "plain_s": t_plain, "scheduled_traced_s": t_ours,
              "ratio": ratio}
    print(f"batch {args.batch} x {args.tokens} tokens: plain {statistics.median(t_plain):.2f} s, "
          f"CyclicReflex + tracing {statistics.median(t_ours):.2f} s, ratio {ratio:.3f} (goal <= 1.10)")
    write_result("decoding", result, [Goal("CyclicReflex + token tracing ÷ plain generate", ratio, "<=", 1.10)])


if __name__ == "__main__":
    main()
