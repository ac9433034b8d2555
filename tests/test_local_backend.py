"""The local transformers backend, on the real embedded model."""

from __future__ import annotations

import math

import pytest
import torch

from reflectnb.backends.base import GenerationInterrupted, GenerationParams
from reflectnb.backends.local import stop_ids
from reflectnb.errors import CapabilityError, ModelNotFoundError, OptionError
from reflectnb.trace import Message

pytestmark = pytest.mark.model

PROMPTS = [
    [Message("user", "What is 2+3?")],
    [Message("user", "Name a fruit that is red.")],
    "The capital of France is",
    [Message("system", "Answer briefly."), Message("user", "Why is the sky blue?")],
]


@pytest.fixture(scope="module", params=["transformers", "fast-fp32"])
def exact_backend(request, smol_backend):
    """The embedded model on an engine that computes in fp32, as plain ``model.generate`` does.

    (The default fast engine computes in bf16: its greedy tokens agree with fp32
    up to rounding, reported by benchmarks/bench_engine.py and checked in tests/test_engine.py.)
    """
    from reflectnb.backends.local import LocalBackend

    engine, _, dtype = request.param.partition("-")
    return LocalBackend(smol_backend.model, smol_backend.tokenizer, name="smollm2-135m", engine=engine,
                        engine_dtype=torch.float32 if dtype else None)


def plain_generate(backend, prompt, n):
    inputs = backend.encode([prompt])
    with torch.inference_mode():
        out = backend.model.generate(**inputs, max_new_tokens=n, do_sample=False,
                                     pad_token_id=backend.tokenizer.pad_token_id)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    return [t for t in new if t not in stop_ids(backend.model, backend.tokenizer)]


@pytest.fixture(scope="module")
def plain_greedy(smol_backend):
    """``model.generate``'s greedy tokens for the first two prompts: one reference for every engine."""
    return [plain_generate(smol_backend, prompt, 24) for prompt in PROMPTS[:2]]


def test_greedy_output_equals_plain_model_generate_token_for_token(exact_backend, plain_greedy):
    for prompt, reference in zip(PROMPTS[:2], plain_greedy):
        gen = exact_backend.generate_one(prompt, GenerationParams(max_new_tokens=24))
        assert [t.token_id for t in gen.tokens] == reference


def test_a_batch_of_four_prompts_gives_each_prompts_single_run_output(smol_backend):
    params = GenerationParams(max_new_tokens=16)
    batched = smol_backend.generate(PROMPTS, params)
    singles = [smol_backend.generate_one(p, params) for p in PROMPTS]
    assert [g.text for g in batched] == [g.text for g in singles]
    assert [g.tokens[0].row for g in batched] == [0, 1, 2, 3]


def test_logprob_and_entropy_of_each_token_match_a_softmax_of_the_logits(exact_backend):
    prompt = PROMPTS[0]
    gen = exact_backend.generate_one(prompt, GenerationParams(max_new_tokens=8))
    ids = exact_backend.encode([prompt])["input_ids"][0].tolist()
    with torch.inference_mode():  # one causal pass: the logits at each position are the next token's
        logits = exact_backend.model(torch.tensor([ids + [e.token_id for e in gen.tokens]])).logits[0].float()
    for i, event in enumerate(gen.tokens):
        logp = torch.log_softmax(logits[len(ids) - 1 + i], -1)
        entropy = -(logp.exp() * logp).sum().item()
        assert event.logprob == pytest.approx(logp[event.token_id].item(), abs=1e-4)
        assert event.entropy == pytest.approx(entropy, abs=1e-4)


def test_streaming_callback_sees_every_token_in_order_and_texts_add_up(smol_backend):
    seen = []
    gens = smol_backend.generate(PROMPTS[:2], GenerationParams(max_new_tokens=12), on_token=seen.append)
    for row, gen in enumerate(gens):
        mine = [e for e in seen if e.row == row]
        assert [e.position for e in mine] == list(range(len(mine)))
        assert "".join(e.text for e in mine) == gen.text


def test_same_seed_gives_the_same_sample_and_sampling_differs_from_greedy(smol_backend):
    params = GenerationParams(max_new_tokens=20, temperature=1.0, seed=7)
    a = smol_backend.generate_one(PROMPTS[1], params).text
    b = smol_backend.generate_one(PROMPTS[1], params).text
    assert a == b
    others = {smol_backend.generate_one(PROMPTS[1], params.with_(seed=s)).text for s in range(3)}
    assert len(others) > 1


def test_stop_strings_end_the_text_before_the_stop(smol_backend):
    prompt, params = "Count: 1, 2, 3, 4, 5,", GenerationParams(max_new_tokens=30, repetition_stop=False)
    free = smol_backend.generate_one(prompt, params).text  # the same greedy text, on this machine, without a stop
    assert "8" in free, f"the model did not count to 8 here, so the test cannot check the stop: {free!r}"
    gen = smol_backend.generate_one(prompt, params.with_(stop=("8",)))
    assert gen.text == free[:free.index("8")] and gen.finish_reason == "stop"


def test_user_logits_processors_are_applied(smol_backend):
    banned = smol_backend.generate_one(PROMPTS[0], GenerationParams(max_new_tokens=4)).tokens[0].token_id

    class Ban:
        def __call__(self, input_ids, scores):
            out = scores.clone()
            out[:, banned] = -math.inf
            return out

    gen = smol_backend.generate_one(PROMPTS[0], GenerationParams(max_new_tokens=4, logits_processors=(Ban(),)))
    assert gen.tokens[0].token_id != banned


def test_top_logprobs_lists_the_most_likely_alternatives(smol_backend):
    gen = smol_backend.generate_one(PROMPTS[0], GenerationParams(max_new_tokens=3, top_logprobs=3))
    first = gen.tokens[0]
    assert len(first.top) == 3 and first.top[0][1] >= first.top[1][1] >= first.top[2][1]
    assert first.top[0][1] == pytest.approx(first.logprob)


def test_ctrl_c_mid_generation_raises_with_the_partial_text(smol_backend):
    def interrupt_at_five(event):
        if event.position == 5:
            raise KeyboardInterrupt

    with pytest.raises(GenerationInterrupted) as info:
        smol_backend.generate_one(PROMPTS[3], GenerationParams(max_new_tokens=30), on_token=interrupt_at_five)
    partial = info.value.partial[0]
    assert partial.finish_reason == "interrupted" and len(partial.tokens) == 6
    smol_backend.generate_one(PROMPTS[0], GenerationParams(max_new_tokens=2))  # still usable


def test_bad_generation_options_name_the_option():
    with pytest.raises(OptionError, match="`max_new_tokens` must be a positive integer, got 0"):
        GenerationParams(max_new_tokens=0)
    with pytest.raises(OptionError, match="unknown generation option"):
        GenerationParams().with_(temprature=1)


def test_a_missing_model_folder_gives_a_clear_error_without_network(tmp_path):
    from reflectnb.backends import load_model

    with pytest.raises(ModelNotFoundError, match="not a folder on this machine"):
        load_model("hf:no-such-org/no-such-model")


def test_a_hub_id_not_in_the_cache_fails_at_once_when_the_hub_is_unreachable(monkeypatch):
    from reflectnb.backends import load_model

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(ModelNotFoundError) as err:
        load_model("hf:reflectnb-tests/not-cached-model")
    assert str(err.value) == (
        "cannot load model 'reflectnb-tests/not-cached-model': it is not in the local Hugging Face cache and "
        "no network is reachable to download it. Give a local folder ('hf:/path/to/model'), or download it "
        "once on a machine with network (huggingface-cli download reflectnb-tests/not-cached-model)")


def test_processors_over_a_backend_that_cannot_apply_them_are_refused():
    from reflectnb.backends.base import Backend

    class TextOnly(Backend):
        name = "text-only"

        def generate(self, prompts, params=None, on_token=None):
            self.check_params(params)
            return []

    with pytest.raises(CapabilityError, match="cannot apply logits processors"):
        TextOnly().generate(["x"], GenerationParams(logits_processors=(object(),)))
