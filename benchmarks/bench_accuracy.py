"""Accuracy kept by the default engine (issue #14): the same items, greedy, on each local engine.

On ``--items`` reasoning-gym items (greedy, the evaluation's baseline method),
the accuracy of the default engine (the fast engine, bf16 where the CPU computes it
natively; ``REFLECTNB_ENGINE_DTYPE=int8`` measures the int8 engine) must lie inside the 95 % Wilson interval of fp32 transformers'
accuracy on the same items. Also reported: the share of items whose extracted
answer is the same on both engines. Writes ``benchmarks/results/accuracy.json``.

Usage: ``python benchmarks/bench_accuracy.py [--items 64] [--task rg:basic_arithmetic]`` (one-digit,
two-term items, as in notebook 07).
"""

from __future__ import annotations

import argparse

from report import Goal, write_result

from reflectnb.backends import load_model
from reflectnb.evaluate import compare, load_tasks
from reflectnb.evaluate.stats import wilson


def run(tasks, backend, max_tokens: int):
    result = compare(tasks, ["baseline"], model=backend, batch_size=8, max_tokens=max_tokens, trace=False,
                     progress=False)
    return result.to_df().sort_values("item_id").reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--task", default="rg:basic_arithmetic")
    parser.add_argument("--max-tokens", type=int, default=40)
    args = parser.parse_args()
    # Notebook 07's setting: one-digit, two-term sums and products, which the 135M model sometimes gets right
    # (the default reasoning-gym sizes give 0 % on both engines, which compares nothing).
    easy = dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1) if args.task == "rg:basic_arithmetic" else {}
    tasks = load_tasks(args.task, n=args.items, seed=0, **easy)
    reference = run(tasks, load_model("smollm2-135m", engine="transformers"), args.max_tokens)
    default = load_model("smollm2-135m")
    ours = run(tasks, default, args.max_tokens)
    ref_acc, our_acc = float(reference["correct"].astype(float).mean()), float(ours["correct"].astype(float).mean())
    low, high = wilson(int(reference["correct"].astype(bool).sum()), len(reference))
    same = float((reference["predicted"].values == ours["predicted"].values).mean())
    engine = default.describe() if hasattr(default, "describe") else getattr(default, "engine", "?")
    print(f"{args.task}, {len(tasks)} items: fp32 transformers {ref_acc:.3f} [{low:.3f}, {high:.3f}], "
          f"default engine ({engine}) {our_acc:.3f}; same answer on {same:.0%} of items")
    goals = [Goal(f"default engine's accuracy inside fp32's 95 % interval [{low:.3f}, {high:.3f}]", our_acc,
                  ">=", low, ""),
             Goal("default engine's accuracy below the interval's upper end", our_acc, "<=", high, "")]
    write_result("accuracy", {"task": args.task, "items": len(tasks), "fp32_accuracy": ref_acc,
                              "default_engine": engine, "default_accuracy": our_acc, "interval": [low, high],
                              "same_answer_share": same}, goals)


if __name__ == "__main__":
    main()
