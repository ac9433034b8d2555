"""Tree-search benchmark: one batched expansion call against one call per prompt.

A ToT/MCTS layer expands many states at once. ``Search.expand`` sends all of a
layer's prompts in ONE ``backend.generate`` call; this measures what that buys
on the embedded model: the same prompts (one BFS layer of the game of 24:
``--states`` states × ``--branch`` samples of the next step), generated once as
one batch and once as one call per prompt, every row forced to the same number
of new tokens. Prints the ratio measured in one run (goal >= 2x) and writes
``benchmarks/results/tree.json``.

Usage: ``python benchmarks/bench_tree.py [--states 4] [--branch 2] [--tokens 24] [--repeats 1]``.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from report import Goal, write_result
from reflectnb.backends import load_model
from reflectnb.backends.base import GenerationParams
from reflectnb.strategies.tree import Game24Task, game24_puzzles


def layer_prompts(states: int, branch: int) -> list[str]:
    """``states × branch`` sample prompts, as one BFS layer of the game of 24 would send."""
    tasks = [Game24Task(p) for p in game24_puzzles(limit=states, seed=0)]
    return [t.sample_prompt("") for t in tasks for _ in range(branch)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=4)
    parser.add_argument("--branch", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    backend = load_model("smollm2-135m", engine="transformers")  # measures the generate wrapper; min_new_tokens below
    prompts = layer_prompts(args.states, args.branch)
    params = GenerationParams(max_new_tokens=args.tokens, temperature=0.7, seed=0)
    backend.model.generation_config.min_new_tokens = args.tokens  # same work on both sides
    try:
        backend.generate(prompts[:1], params.with_(max_new_tokens=2))  # warm-up
        batched, sequential = [], []
        for _ in range(args.repeats):
            batched.append(timed(lambda: backend.generate(prompts, params)))
            sequential.append(timed(lambda: [backend.generate([p], params) for p in prompts]))
    finally:
        backend.model.generation_config.min_new_tokens = None
    report = {"prompts": len(prompts), "new_tokens_per_prompt": args.tokens, "repeats": args.repeats,
              "batched_s": min(batched), "sequential_s": min(sequential),
              "speedup": min(sequential) / min(batched), "goal": 2.0,
              "torch_threads": torch.get_num_threads(), "machine": platform.platform()}
    print(f"{len(prompts)} prompts x {args.tokens} tokens: batched {report['batched_s']:.2f} s, "
          f"one call each {report['sequential_s']:.2f} s -> {report['speedup']:.2f}x (goal >= 2x)")
    write_result("tree", report, [Goal("tree expansion, batched vs one call each", report["speedup"], ">=", 2.0)])


if __name__ == "__main__":
    main()
