"""The fast engine's AVX-512 matrix-vector loops (``cpu_gemv``): they match torch, they fall back, int8 decodes."""

from __future__ import annotations

import pytest
import torch

from reflectnb.backends import cpu_decode, cpu_gemv
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


@pytest.fixture(scope="module")
def c_step(smol_backend):
    if cpu_decode.library() is None:
        pytest.skip(f"cpu_decode cannot be built here: {cpu_decode.unavailable_reason()}")
    engines = {dtype: FastLlama(smol_backend.model, dtype) for dtype in (torch.bfloat16, torch.int8)}
    for engine in engines.values():
        engine.prompt = smol_backend.tokenizer("One, two, three, four, five, six,", return_tensors="pt")["input_ids"]
    return engines


def _one_step(engine, use_c: bool, mask: torch.Tensor):
    """Prefill a 10-id prompt per row under ``mask``, then one step on the C decoder or on the torch path."""
    ids = engine.prompt[:, :10].repeat(mask.shape[0], 1)
    cache = engine.new_cache(mask.shape[0], 32)
    engine.prefill(cache, ids, mask)
    decoder, engine.decoder = engine.decoder, engine.decoder if use_c else None
    try:
        logits = engine.step(cache, torch.full((mask.shape[0],), 42))
    finally:
        engine.decoder = decoder
    return logits, cache


@pytest.mark.model
@pytest.mark.parametrize("dtype,rows", [(torch.bfloat16, 3), (torch.int8, 3), (torch.bfloat16, 9)],
                         ids=["bf16", "int8", "bf16-9-rows"])
def test_the_c_decode_step_matches_the_torch_step_on_a_left_padded_batch(c_step, dtype, rows):
    engine = c_step[dtype]
    assert engine.kernel == "cpu_decode"
    mask = torch.ones(rows, 10, dtype=torch.long)
    mask[1, :4] = 0  # row 1 is left-padded: the C step must skip its padding keys
    ours, cache = _one_step(engine, True, mask)
    torch_path, ref_cache = _one_step(engine, False, mask)
    assert ours.shape == torch_path.shape == (rows, 49152)
    # the C step rounds each product's input to bf16 (as torch's bf16 GEMM does above SMALL_M rows, where it also
    # rounds outputs); up to SMALL_M rows the torch path's loops keep inputs in fp32 but round queries for SDPA
    assert (ours - torch_path).abs().max() < 0.4
    top2 = torch_path.topk(2, dim=-1).values
    # logits at most d apart can only rank two tokens differently when their margin is below 2d
    clear = (top2[:, 0] - top2[:, 1]) > 2 * (ours - torch_path).abs().max()
    assert clear.any() and torch.equal(ours.argmax(-1)[clear], torch_path.argmax(-1)[clear])
    column = (cache.k[:, :, :, 10].float() - ref_cache.k[:, :, :, 10].float()).abs()
    assert column.max() <= 0.07 and cache.length == ref_cache.length == 11  # keys: one bf16 rounding apart
    assert torch.equal(cache.positions, ref_cache.positions)


@pytest.mark.model
def test_the_c_decode_step_gives_the_same_bits_on_one_thread_or_two(c_step):
    engine, mask = c_step[torch.bfloat16], torch.ones(2, 10, dtype=torch.long)
    try:
        engine.decoder.fixed_threads = 1
        one, _ = _one_step(engine, True, mask)
        engine.decoder.fixed_threads = 2
        two, _ = _one_step(engine, True, mask)
    finally:
        engine.decoder.fixed_threads = None
    assert torch.equal(one, two)  # each output row is summed by one thread in one order


@pytest.mark.model
def test_a_row_gets_the_same_logits_alone_or_in_a_batch_of_any_size(c_step):
    """Tiles of 1 or 2 weight rows x 1-4 activation rows sum every pair in one order: batch size cannot move a bit."""
    engine = c_step[torch.bfloat16]
    ids = engine.prompt[:, :10]
    alone = engine.new_cache(1, 32)
    engine.prefill(alone, ids)
    tokens = torch.tensor([42, 7, 99, 1000, 5, 17, 256, 3, 77, 12, 600])  # 11 rows: 2-row tiles and a 3-row tail
    logits = {}
    for m in (1, 5, 11):
        cache = engine.new_cache(m, 32)
        for name in ("k", "v", "valid", "positions"):
            setattr(cache, name, getattr(alone, name).repeat_interleave(m, dim=1 if name in "kv" else 0).clone())
        cache.length, cache.all_valid = alone.length, True
        logits[m] = engine.step(cache, tokens[:m])
    assert torch.equal(logits[5][0], logits[1][0]) and torch.equal(logits[11][:5], logits[5])
    assert not torch.equal(logits[11][0], logits[11][1])  # the rows did get different tokens


@pytest.mark.model
def test_without_avx512_bf16_the_c_step_emulates_the_bf16_dot_product(c_step):
    """Built for an AVX-512F CPU without AVX512-BF16: widened pairs and two FMAs instead of vdpbf16ps."""
    engine, mask = c_step[torch.bfloat16], torch.ones(3, 10, dtype=torch.long)
    native, _ = _one_step(engine, True, mask)
    decoder = engine.decoder
    try:
        library = cpu_decode._load(("-mno-avx512bf16",))
        engine.decoder = cpu_decode.Decoder(engine, library)
        emulated, _ = _one_step(engine, True, mask)
    finally:
        engine.decoder = decoder
    assert library._name != cpu_decode.library()._name  # really another build
    # on the AMD EPYC (Zen 4) here the two agree bit for bit; Intel documents the same order (odd pair first) but
    # not whether each step is fused, so only closeness is asserted
    assert (emulated - native).abs().max() < 0.05 and torch.equal(emulated.argmax(-1), native.argmax(-1))


def _run_chooser(chooser, steps: int, seconds: dict, start: int = 0) -> list[int]:
    """Drive ``chooser`` for ``steps`` adjacent steps timed by ``seconds[threads]``; the counts it ran."""
    seen = []
    for i in range(start, start + steps):
        threads = chooser.next()
        seen.append(threads)
        chooser.record(threads, seconds[threads], i)
    return seen


def test_the_thread_count_is_chosen_by_timing_adjacent_steps_and_follows_the_machine():
    busy, quiet = {2: 0.030, 1: 0.010}, {2: 0.006, 1: 0.010}  # a busy machine: one thread is faster
    chooser = cpu_decode.ThreadChooser(2, probe=3, every=2, window=4)
    assert _run_chooser(chooser, 4, busy) == [2, 1, 2, 1] and chooser.choice == 1  # probing alternates
    # a clear choice (3x) takes the other count once every 4 * every steps
    assert _run_chooser(chooser, 9, busy, start=4) == [1] * 8 + [2] and chooser.choice == 1
    # the machine quiets down: each step on the other count gives two pair ratios; the median follows
    seen = _run_chooser(chooser, 40, quiet, start=13)
    assert chooser.choice == 2 and seen[:8] == [1] * 8 and seen[-16:].count(1) == 2  # clear again: 1 step in 8
    assert cpu_decode.ThreadChooser(1).choice == 1 and cpu_decode.ThreadChooser(1).next() == 1


def test_the_thread_chooser_pairs_only_adjacent_steps_of_as_many_rows():
    chooser = cpu_decode.ThreadChooser(2, probe=1)
    chooser.record(2, 0.030, 0)
    chooser.record(1, 0.010, 5)  # steps of other batch sizes ran in between: not a pair
    assert chooser.choice is None and not chooser.ratios
    chooser.record(2, 0.030, 6)
    assert chooser.choice == 1 and list(chooser.ratios) == [0.010 / 0.030]
    chooser = cpu_decode.ThreadChooser(2, probe=1)
    chooser.record(2, 0.030, 0, rows=4)
    chooser.record(1, 0.010, 1, rows=2)  # rows left the batch between the two: not a pair either
    assert chooser.choice is None and not chooser.ratios


def test_without_openmp_or_a_compiler_the_decode_step_stays_in_torch_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_decode, "_state", {})
    monkeypatch.setenv("REFLECTNB_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "/bin/false")
    assert cpu_decode.library() is None
    reason = cpu_decode.unavailable_reason()
    assert reason.startswith("compiling the CPU kernels failed") or "AVX-512" in reason


@pytest.fixture()
def decode_lib():
    lib = cpu_decode.library()
    if lib is None:
        pytest.skip(f"the C decode step cannot be built here: {cpu_decode.unavailable_reason()}")
    return lib


def _exact_attention(q, keys, values, valid, start):
    """Causal, masked, grouped-query attention in float64 on the same (bf16-rounded) keys and values."""
    b, t, heads, d = q.shape
    end, group = start + t, heads // keys.shape[1]
    mask = valid[:, None, None, :end] & torch.ones(t, end, dtype=torch.bool).tril(start)[None, None]
    out = torch.nn.functional.scaled_dot_product_attention(
        q.double().transpose(1, 2), keys[:, :, :end].double().repeat_interleave(group, 1),
        values[:, :, :end].double().repeat_interleave(group, 1), attn_mask=mask)
    return out.transpose(1, 2).reshape(b, t, heads * d)


def test_prefill_attention_in_c_is_causal_masked_and_exact_to_fp32_rounding(decode_lib):
    """Row 1 has 12 padding columns before its prompt and 3 padding queries: those give zeros, nothing else moves."""
    torch.manual_seed(3)
    b, t, heads, kv_heads, d, start, capacity = 2, 37, 9, 3, 64, 21, 64
    keys = (torch.randn(b, kv_heads, capacity, d) * 2).bfloat16()
    values = torch.randn(b, kv_heads, capacity, d).bfloat16()
    valid = torch.zeros(b, capacity, dtype=torch.bool)
    valid[:, :start + t] = True
    valid[1, :12] = False
    valid[1, start:start + 3] = False  # padding queries of this call
    q = torch.randn(b, t, heads, d) * 2
    out = cpu_decode.attention(decode_lib, q, keys, values, valid, start)
    exact = _exact_attention(q, keys, values, valid, start)
    real = valid[:, start:start + t].reshape(-1)
    assert (out.view(b * t, -1)[real].double() - exact.reshape(b * t, -1)[real]).abs().max() < 1e-5
    assert torch.equal(out.view(b * t, -1)[~real], torch.zeros(3, heads * d))
    # a later column cannot reach an earlier query: change the last key, and only the last query moves
    keys2 = keys.clone()
    keys2[:, :, start + t - 1] += 1
    out2 = cpu_decode.attention(decode_lib, q, keys2, values, valid, start)
    assert torch.equal(out2[:, :-1], out[:, :-1]) and not torch.equal(out2[:, -1], out[:, -1])


def test_prefill_attention_gives_the_same_bits_on_any_thread_count(decode_lib):
    torch.manual_seed(4)
    keys, values = torch.randn(1, 3, 48, 64).bfloat16(), torch.randn(1, 3, 48, 64).bfloat16()
    valid = torch.ones(1, 48, dtype=torch.bool)
    q = torch.randn(1, 40, 9, 64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = cpu_decode.attention(decode_lib, q, keys, values, valid, 8)
        torch.set_num_threads(2)
        two = cpu_decode.attention(decode_lib, q, keys, values, valid, 8)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)  # each query is summed by one thread in one order
    with pytest.raises(ValueError, match="contiguous"):
        cpu_decode.attention(decode_lib, q, keys.transpose(2, 3), values, valid, 8)


@pytest.mark.parametrize("heads,kv_heads", [(9, 3), (8, 1), (12, 2)], ids=["groups-of-3", "one-group-of-8", "groups-of-6"])
def test_grouped_query_heads_get_the_same_bits_as_each_head_alone(decode_lib, heads, kv_heads):
    """The heads of a key/value head run together (each key loaded once for up to 4 of them); each must still be
    summed exactly as alone: the same keys given to every head separately (a group of one) give the same bits."""
    torch.manual_seed(heads)
    keys, values = torch.randn(2, kv_heads, 40, 64).bfloat16(), torch.randn(2, kv_heads, 40, 64).bfloat16()
    valid = torch.ones(2, 40, dtype=torch.bool)
    valid[1, :5] = False
    q = torch.randn(2, 30, heads, 64)
    grouped = cpu_decode.attention(decode_lib, q, keys, values, valid, 6)
    group = heads // kv_heads
    alone = cpu_decode.attention(decode_lib, q, keys.repeat_interleave(group, 1).contiguous(),
                                 values.repeat_interleave(group, 1).contiguous(), valid, 6)
    assert torch.equal(grouped, alone)
