"""A method added in one file: best-of-N with a verifier (the strategy-spec acceptance test's example)."""

from dataclasses import dataclass
from typing import Any

import reflectnb
from reflectnb.strategies.engine import Call, Engine, positive_int, run_loop
from reflectnb.strategies.results import LoopResult
from reflectnb.strategies.spec import option
from reflectnb.strategies.voting import majority
from reflectnb.trace import Message


@dataclass
class Options:
    n: int = option(3, "answers to sample", short="-n", check=positive_int)
    verifier: Any = option(None, "a function answer -> bool; default: the majority answer", variable=True)


@reflectnb.register_strategy("best_of_n_verified", options=Options, view="debate", replace=True,
                             summary="Sample n answers in one batch; keep the first the verifier accepts.",
                             calls=lambda o: (o.n, f"n {o.n}: one batched call"))
def run(ctx, task, o: Options):
    result = LoopResult(strategy="best_of_n_verified", task=task)
    engine = Engine(result, ctx)

    def body():
        calls = [Call("answer", agent=f"sample {i + 1}") for i in range(o.n)]
        gens = engine.generate(ctx.backend, [[Message("user", task)]] * o.n, calls)
        answers = [ctx.answer(g.text) for g in gens]
        for call, gen, answer in zip(calls, gens, answers):
            engine.record(call, gen, parsed_answer=answer, accepted=bool(o.verifier and o.verifier(answer)))
        accepted = [a for a in answers if o.verifier and o.verifier(a)]
        result.answer = accepted[0] if accepted else majority(answers)[0] or ""
        result.stop_reason = "verified" if accepted else "majority"

    return run_loop(result, body)
