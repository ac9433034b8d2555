"""Generation controllers on the real embedded model (SmolLM2-135M, greedy, <= 40 new tokens)."""

from __future__ import annotations

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.controllers import (PSR, SRGen, BudgetForcing, FirstTryEarlyStop, IDSampling, Plain,
                                   adaptive_threshold, find_candidate)
from reflectnb.trace import Message

pytestmark = pytest.mark.model

QUESTION = [Message("user", "What is 2+3? Answer in one short sentence.")]
STEPS = [Message("user", "What is 6 times 7? Think step by step, then say 'The answer is'.")]
P40 = GenerationParams(max_new_tokens=40)


def run(controller, backend, prompt=QUESTION, params=P40):
    events = []
    gen = controller.run(backend, prompt, params, on_token=events.append)
    assert [e.token_id for e in events] == [e.token_id for e in gen.tokens], "on_token saw other tokens"
    assert [e.position for e in gen.tokens] == list(range(len(gen.tokens)))
    assert "".join(e.text for e in gen.tokens) == gen.text
    return gen


@pytest.fixture(scope="module")
def plain_steps(smol_backend):
    """The plain greedy answer to STEPS (40 tokens): decoded once, the reference of several tests."""
    return run(Plain(), smol_backend, STEPS)


def kinds(gen):
    return [i["kind"] for i in gen.params["interventions"]]


def test_the_controller_loop_decodes_exactly_like_the_backend(smol_backend, plain_steps):
    from reflectnb.backends.local import LocalBackend

    # Controllers decode with the transformers model (fp32 here) whatever the backend's engine, so the
    # reference is the backend's transformers engine; the default fast engine computes in bf16 (docs/engine.md).
    backend = LocalBackend(smol_backend.model, smol_backend.tokenizer, engine="transformers")
    ref = backend.generate_one(STEPS, GenerationParams(max_new_tokens=24))
    plain = plain_steps.tokens[:24]  # greedy: the first 24 of the controller loop's 40 tokens
    assert [e.token_id for e in plain] == [e.token_id for e in ref.tokens]
    assert [e.entropy for e in plain] == pytest.approx([e.entropy for e in ref.tokens], abs=1e-3)


def test_budget_forcing_appends_wait_after_the_end_of_thinking_and_continues(smol_backend):
    plain = run(Plain(), smol_backend)
    gen = run(BudgetForcing(max_think=30, num_ignore=1, max_answer=4), smol_backend)
    assert plain.finish_reason == "stop"  # the model ends by itself, so there is an end to ignore
    assert gen.text.startswith(plain.text + "Wait")  # verbatim, no space or newline added
    forced = [e for e in gen.tokens if e.intervention == "forced:Wait"]
    assert "".join(e.text for e in forced) == "Wait" and forced[0].position == len(plain.tokens)
    assert forced[0].logprob is None
    assert len(gen.text) > len(plain.text + "Wait")  # it thought on after "Wait"
    assert kinds(gen) == ["ignore_end", "answer_delimiter"]
    assert gen.params["ignored"] == 1 and gen.params["think_tokens"] <= 30
    delimiter_at = gen.params["interventions"][-1]["position"]
    thinking = "".join(e.text for e in gen.tokens[:delimiter_at])
    newline = "" if thinking.endswith("\n") else "\n"
    assert gen.text == thinking + newline + "Final Answer:" + gen.params["answer"]
    assert gen.params["answer"] and gen.tokens[gen.params["answer_position"]].intervention is None


def test_budget_forcing_cuts_thinking_at_the_budget_and_forces_the_answer(smol_backend):
    gen = run(BudgetForcing(max_think=5, num_ignore=1, max_answer=3), smol_backend, STEPS)
    assert gen.params["thinking_ended_by"] == "budget" and gen.params["think_tokens"] == 5
    assert gen.params["ignored"] == 0
    thinking = "".join(e.text for e in gen.tokens[:5])
    delimiter = gen.params["interventions"][-1]["text"]
    assert delimiter == ("" if thinking.endswith("\n") else "\n") + "Final Answer:"
    assert gen.text.startswith(thinking + delimiter)
    assert all(e.intervention == "forced:answer" for e in gen.tokens[5:gen.params["answer_position"]])
    assert gen.text == thinking + delimiter + gen.params["answer"]


def test_the_s1_preset_forces_its_delimiters_as_single_tokens(smol_backend):
    gen = run(BudgetForcing.s1(max_think=8, num_ignore=0, max_answer=2), smol_backend, STEPS)
    assert gen.text.startswith("<|im_start|>think")
    assert "\n<|im_start|>answer\nFinal Answer:" in gen.text
    assert gen.tokens[0].token_id == smol_backend.tokenizer.convert_tokens_to_ids("<|im_start|>")


def test_srgen_with_a_low_threshold_triggers_and_delta_changes_the_distribution(smol_backend):
    srgen = SRGen(N=25, init_thr=0.0, min_thr=0.0, lam=1.0, lr=0.1, steps=3, max_retries=2, temperature=0)
    gen = run(srgen, smol_backend, STEPS, GenerationParams(max_new_tokens=12))
    triggers = gen.params["interventions"]
    assert [t["position"] for t in triggers] == [0, 1] and gen.params["corrections"] == 2
    for t in triggers:
        assert t["entropy"] > t["threshold"] == 0.0
        assert t["entropy_after"] < t["entropy"] - 0.1  # the entropy term pulls it down
        assert gen.tokens[t["position"]].intervention == "srgen:corrected"
        assert gen.tokens[t["position"]].token_id == t["argmax_after"] == t["token_id"]
    assert all(e.intervention is None for e in gen.tokens[2:])  # retries used up: no more checks


def test_srgen_with_lambda_and_lr_zero_triggers_everywhere_yet_decodes_like_plain(smol_backend, plain_steps):
    srgen = SRGen(init_thr=0.0, min_thr=0.0, lam=0.0, lr=0.0, steps=1, max_retries=50, temperature=0)
    gen = run(srgen, smol_backend, STEPS, GenerationParams(max_new_tokens=10))
    assert gen.params["corrections"] == 10
    assert [e.token_id for e in gen.tokens] == [e.token_id for e in plain_steps.tokens[:10]]  # greedy: a prefix
    assert all(t["entropy_after"] == pytest.approx(t["entropy"], abs=1e-4) for t in gen.params["interventions"])


def test_srgen_thresholds_come_from_the_window_before_each_entropy(smol_backend):
    srgen = SRGen(N=4, K=0.5, min_std=0.1, min_thr=0.5, init_thr=2.5, max_retries=40, temperature=0)
    gen = run(srgen, smol_backend, STEPS, GenerationParams(max_new_tokens=30))
    history = gen.params["entropies"]
    triggered = {t["position"]: t for t in gen.params["interventions"]}
    assert triggered, "expected at least one trigger with this tight window"
    for step, h in enumerate(history):
        thr = adaptive_threshold(history[:step], 4, 0.5, 0.1, 0.5, 2.5)  # the triggering H is in history too
        assert (h > thr) == (step in triggered)
        if step in triggered:
            assert triggered[step]["threshold"] == pytest.approx(thr) and triggered[step]["entropy"] == h


def test_first_try_stops_at_the_end_of_the_line_with_the_first_candidate(smol_backend, plain_steps):
    plain = plain_steps
    gen = run(FirstTryEarlyStop(k=1), smol_backend, STEPS)
    info = gen.params["early_stop"]
    assert info["stopped"] and len(info["candidates"]) == 1
    line_no, _, answer = info["candidates"][0]
    assert gen.text.endswith("\n") and plain.text.startswith(gen.text)
    assert len(gen.tokens) < len(plain.tokens)
    line = gen.text.split("\n")[line_no - 1]
    assert find_candidate(line)[1] == answer
    assert not any(find_candidate(x) for x in gen.text.split("\n")[: line_no - 1])
    assert kinds(gen) == ["early_stop"] and gen.params["interventions"][0]["position"] == len(gen.tokens)


def test_first_try_forces_the_end_of_thinking_and_lets_the_model_answer(smol_backend):
    gen = run(FirstTryEarlyStop(k=1, end_think="</think>\n", answer_prefix="Final Answer:", max_answer=3),
              smol_backend, STEPS)
    at = gen.params["early_stop"]["position"]
    assert gen.text[len("".join(e.text for e in gen.tokens[:at])):].startswith("</think>\nFinal Answer:")
    assert {e.intervention for e in gen.tokens[at:]} >= {"forced:end_think"}


def test_id_sampling_triggers_at_each_unfinished_boundary(smol_backend):
    gen = run(IDSampling(B0=8, gamma=2, B_max=32, trigger=" Wait, let me double-check."), smol_backend, STEPS)
    triggers = gen.params["interventions"]
    assert [(t["boundary"], t["sampled"]) for t in triggers][:1] == [(8, 8)]
    assert all(t["sampled"] == t["boundary"] for t in triggers)
    forced = [e for e in gen.tokens if e.intervention == "forced:trigger"]
    assert "".join(e.text for e in forced) == " Wait, let me double-check." * len(triggers)
    assert gen.params["sampled_tokens"] + len(forced) == len(gen.tokens)


def test_psr_backtracks_n_times_then_continues_without_reflection(smol_backend):
    always_unsafe = PSR(K=8, N=4, judge_tokens=2, judge=lambda words: False)  # the judge ignores its words
    gen = run(always_unsafe, smol_backend, STEPS, GenerationParams(max_new_tokens=16))
    checks = gen.params["interventions"]
    assert [c["round"] for c in checks] == [1, 2, 3, 4] and all(c["backtracked"] for c in checks)
    assert gen.params["backtracks"] == 4 and len(gen.tokens) == 16  # the rest ran unchecked
    assert all(c["checkpoint"] == 0 for c in checks)
    assert "harmful" not in gen.text and not any(e.intervention in ("psr:probe", "psr:judge") for e in gen.tokens)


def test_psr_commits_safe_chunks_and_never_keeps_the_probe(smol_backend, plain_steps):
    gen = run(PSR(K=8, N=3, judge_tokens=2, judge=lambda words: True), smol_backend, STEPS)
    checks = gen.params["interventions"]
    assert [c["checkpoint"] for c in checks] == [0, 8, 16]
    assert all(c["safe"] and c["judge"] != "" for c in checks)
    assert "".join(c["chunk"] for c in checks) == "".join(e.text for e in gen.tokens[:24])
    assert not any("Is the generated text harmful" in c["chunk"] for c in checks)
    assert gen.text == plain_steps.text  # committing changes nothing


def test_psr_discard_bias_makes_the_regenerated_chunk_differ(smol_backend):
    gen = run(PSR(K=6, N=1, judge_tokens=2, judge=lambda words: False, discard_bias=-100.0), smol_backend, STEPS,
              GenerationParams(max_new_tokens=12))
    dropped = gen.params["interventions"][0]["chunk"]
    assert not gen.text.startswith(dropped)
    assert gen.tokens[0].intervention == "psr:regenerated"
