"""The fast engine's AVX-512 matrix-vector loops (``cpu_gemv``): they match torch, they fall back, int8 decodes."""

from __future__ import annotations

import pytest
import torch

from reflectnb.backends import cpu_gemv
from reflectnb.backends.base import GenerationParams
from reflectnb.backends.engine import FastLlama, default_dtype
from reflectnb.backends.local import LocalBackend
from reflectnb.trace import Message


@pytest.fixture()
def loops():
    kernels = cpu_gemv.kernels()
    if kernels is None:
        pytest.skip(f"cpu_gemv cannot be built here: {cpu_gemv.unavailable_reason()}")
    return kernels


@pytest.mark.parametrize("m", [1, 3, 4, 9])
def test_the_int8_loop_equals_torch_on_the_dequantized_weights(loops, m):
    torch.manual_seed(m)
    w, x = torch.randn(37, 200), torch.randn(m, 200)  # k = 200: a tail after the 16-wide blocks
    q, scale = cpu_gemv.quantize_int8(w)
    expected = x @ (q.float() * scale[:, None]).T
    assert torch.allclose(loops.int8(x, q, scale), expected, atol=1e-4, rtol=1e-5)
    assert (q.float() * scale[:, None] - w).abs().max() <= scale.max() / 2 + 1e-6  # rounding, nothing more


@pytest.mark.parametrize("m", [1, 6])
def test_the_bf16_loop_equals_torch_in_fp32_on_the_same_weights(loops, m):
    w, x = torch.randn(50, 96).bfloat16(), torch.randn(m, 96)
    assert torch.allclose(loops.bf16(x, w), x @ w.float().T, atol=1e-4, rtol=1e-5)


def test_a_failing_compiler_leaves_torch_kernels_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_gemv, "_state", {})
    monkeypatch.setenv("REFLECTNB_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "/bin/false")
    if "avx512f" not in cpu_gemv._cpu_flags():
        assert cpu_gemv.kernels() is None and "AVX-512" in cpu_gemv.unavailable_reason()
        return
    assert cpu_gemv.kernels() is None
    assert cpu_gemv.unavailable_reason().startswith("compiling the CPU kernels failed")


@pytest.mark.model
def test_bad_engine_dtypes_are_refused_with_the_choices(smol_backend, monkeypatch):
    monkeypatch.setenv("REFLECTNB_ENGINE_DTYPE", "int4")
    with pytest.raises(ValueError, match="REFLECTNB_ENGINE_DTYPE must be one of int8, bfloat16, float32; got 'int4'"):
        default_dtype(True)
    monkeypatch.setenv("REFLECTNB_ENGINE_DTYPE", "int8")
    assert default_dtype(False) is torch.int8
    monkeypatch.delenv("REFLECTNB_ENGINE_DTYPE")
    assert (default_dtype(True), default_dtype(False)) == (torch.bfloat16, torch.float32)
    with pytest.raises(ValueError, match="the fast engine computes in torch.float32, torch.bfloat16, torch.int8; "
                                         "got torch.float16"):
        FastLlama(smol_backend.model, torch.float16)


@pytest.mark.model
def test_the_int8_engine_decodes_close_to_fp32_and_keeps_the_hooks(smol_backend):
    int8 = LocalBackend(smol_backend.model, smol_backend.tokenizer, name="smollm2-135m", engine="fast",
                        engine_dtype=torch.int8)
    assert int8.describe() == "fast engine, int8"
    question = [Message("user", "What is 6 times 7? Think step by step.")]
    reference = LocalBackend(smol_backend.model, smol_backend.tokenizer, engine="fast", engine_dtype=torch.float32)
    params = GenerationParams(max_new_tokens=8, repetition_stop=False, top_logprobs=2)
    ours, fp32 = int8.generate_one(question, params), reference.generate_one(question, params)
    assert [e.token_id for e in ours.tokens][:4] == [e.token_id for e in fp32.tokens][:4]
    assert abs(ours.tokens[0].logprob - fp32.tokens[0].logprob) < 0.05 and len(ours.tokens[0].top) == 2
    rows = int8.generate([question, [Message("user", "Name a river.")]], params)  # left padding, batch path
    assert [e.token_id for e in rows[0].tokens][:4] == [e.token_id for e in ours.tokens][:4]
