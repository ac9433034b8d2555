"""The fast local engine on the real embedded model: exactness in fp32, batching, prefix reuse, hooks."""

from __future__ import annotations

import pytest
import torch

from reflectnb.backends.base import GenerationInterrupted, GenerationParams
from reflectnb.backends.engine_loop import MIN_SHARED, _common_prefix
from reflectnb.backends.local import LocalBackend
from reflectnb.backends.repetition import RepetitionStop
from reflectnb.controllers import Plain
from reflectnb.trace import Message

pytestmark = pytest.mark.model

QUESTION = [Message("user", "What is 6 times 7? Think step by step.")]
OTHER = [Message("user", "Name a river.")]
P16 = GenerationParams(max_new_tokens=16, repetition_stop=False)


@pytest.fixture(scope="module")
def exact(smol_backend):
    """The fast engine with fp32 weights: the same math as fp32 ``generate``, on the shared model."""
    return LocalBackend(smol_backend.model, smol_backend.tokenizer, name="smollm2-135m", engine="fast",
                        engine_dtype=torch.float32)


@pytest.fixture(scope="module")
def reference(smol_backend):
    """The transformers engine (``model.generate``) on the same fp32 model."""
    return LocalBackend(smol_backend.model, smol_backend.tokenizer, name="smollm2-135m", engine="transformers")


def ids(gen):
    return [e.token_id for e in gen.tokens]


def rows_after_the_first_stop_after_two_tokens(stop: int):
    """A logits processor: from the third new token on, every row but the first can only choose ``stop``."""
    start: list[int] = []

    def end(input_ids, scores):
        start.append(start[0] if start else input_ids.shape[1])
        if input_ids.shape[1] - start[0] >= 2:
            scores = scores.clone()
            scores[1:, :] = float("-inf")
            scores[1:, stop] = 0.0
        return scores
    return end


def test_the_fast_engine_in_fp32_decodes_exactly_like_model_generate(exact, reference):
    fast, slow = exact.generate_one(QUESTION, P16), reference.generate_one(QUESTION, P16)
    assert ids(fast) == ids(slow)
    assert [e.logprob for e in fast.tokens] == pytest.approx([e.logprob for e in slow.tokens], abs=1e-3)


def test_a_left_padded_batch_decodes_each_row_as_it_would_alone(exact, reference):
    batch = exact.generate([QUESTION, OTHER], P16)
    assert [ids(g) for g in batch] == [ids(reference.generate_one(p, P16)) for p in (QUESTION, OTHER)]


def test_the_default_engine_on_a_cpu_is_fast_in_bf16_and_the_trace_says_so(smol_backend):
    from reflectnb.status import status_report

    assert smol_backend.describe() == "fast engine, bfloat16"
    assert "smollm2-135m (fast engine, bfloat16)" in status_report().loaded  # what %reflectnb shows
    gen = smol_backend.generate_one(OTHER, GenerationParams(max_new_tokens=4))
    assert (gen.params["engine"], gen.params["dtype"]) == ("fast", "bfloat16")
    plain = Plain().run(smol_backend, OTHER, GenerationParams(max_new_tokens=4))
    assert (plain.params["engine"], plain.params["dtype"]) == ("transformers", "float32")


def test_the_default_greedy_output_is_deterministic_and_mostly_agrees_with_fp32(smol_backend, reference):
    first = smol_backend.generate_one(QUESTION, P16)
    smol_backend.fast.forget()
    assert ids(smol_backend.generate_one(QUESTION, P16)) == ids(first)
    agree = sum(a == b for a, b in zip(ids(first), ids(reference.generate_one(QUESTION, P16))))
    assert agree >= 8, f"only {agree} of 16 greedy tokens agree with fp32 generate"


def test_a_prompt_extending_the_last_one_reuses_its_kv_cache_and_decodes_the_same(exact):
    round1 = exact.generate_one(QUESTION, P16)
    round2 = QUESTION + [Message("assistant", round1.text), Message("user", "Check your answer.")]
    reused = exact.generate_one(round2, P16)
    assert exact.fast.stats.last_reused > len(exact.encode([QUESTION])["input_ids"][0]) // 2
    exact.fast.forget()
    fresh = exact.generate_one(round2, P16)
    assert exact.fast.stats.last_reused == 0
    assert ids(reused) == ids(fresh)


def test_a_batch_prefills_its_shared_prompt_prefix_once_and_decodes_each_row_as_alone(exact, reference):
    engine, fed = exact.fast.engine, []
    prefill = engine.prefill

    def spy(cache, input_ids, mask=None):
        fed.append(tuple(input_ids.shape))
        return prefill(cache, input_ids, mask)

    engine.prefill = spy
    exact.fast.forget()
    try:
        mixed = exact.generate([QUESTION, OTHER, QUESTION, QUESTION], P16)
        exact.fast.forget()
        same = exact.generate([OTHER] * 3, P16)
    finally:
        del engine.prefill
    system = _common_prefix(*(exact.encode([p])["input_ids"][0].tolist() for p in (QUESTION, OTHER)))
    other = len(exact.encode([OTHER])["input_ids"][0])
    question = len(exact.encode([QUESTION])["input_ids"][0])
    # the chat template's system part once, then the four tails (left-padded to the longest); then (nothing kept)
    # one prompt three times: all but its last token once, then one token per row
    assert system >= MIN_SHARED
    assert fed == [(1, system), (4, question - system), (1, other - 1), (3, 1)]
    question, other = ids(reference.generate_one(QUESTION, P16)), ids(reference.generate_one(OTHER, P16))
    assert [ids(g) for g in mixed] == [question, other, question, question]
    assert [ids(g) for g in same] == [other] * 3


def test_each_row_of_a_batch_continues_from_its_own_last_conversation(exact, reference):
    """Round 2 of a batched loop: every row's prompt extends its round-1 conversation, whose cached keys and
    values (decoded tokens included) are reused row by row, also for a row that left the batch early."""
    engine, fed = exact.fast.engine, []
    prefill = engine.prefill

    def spy(cache, input_ids, mask=None):
        fed.append(int(mask.sum()) if mask is not None else input_ids.numel())
        return prefill(cache, input_ids, mask)

    exact.fast.forget()
    end = rows_after_the_first_stop_after_two_tokens(exact.tokenizer.eos_token_id)
    first = exact.generate([QUESTION, OTHER, OTHER], GenerationParams(max_new_tokens=16, repetition_stop=False,
                                                                      logits_processors=(end,)))
    assert [g.finish_reason for g in first] == ["length", "stop", "stop"]  # rows 1 and 2 left the batch early
    check = Message("user", "Check your answer.")
    round2 = [[*p, Message("assistant", g.text), check] for p, g in zip((QUESTION, OTHER, OTHER), first)]
    before = exact.fast.stats.row_reused_tokens
    new_cache = engine.new_cache

    def poisoned(batch, capacity):  # a column never written stays NaN, and NaN reaches the logits if it is read
        cache = new_cache(batch, capacity)
        cache.k.fill_(float("nan"))
        cache.v.fill_(float("nan"))
        return cache

    engine.prefill, engine.new_cache = spy, poisoned
    try:
        again = exact.generate(round2, P16)
    finally:
        del engine.prefill, engine.new_cache
    lengths = [len(exact.encode([p])["input_ids"][0]) for p in round2]
    reused = exact.fast.stats.row_reused_tokens - before
    assert reused > sum(len(exact.encode([p])["input_ids"][0]) for p in (QUESTION, OTHER, OTHER))
    assert fed == [sum(lengths) - reused]  # one prefill of the tails only
    assert [ids(g) for g in again] == [ids(reference.generate_one(p, P16)) for p in round2]


def test_a_single_prompt_after_a_batch_continues_from_the_kept_row_it_extends(exact, reference):
    """A debate's next round, a judge reading one candidate: one prompt extending one row of the last batch starts
    from that row's keys and values (copied, compacted past the row's left padding), and decodes as it would alone."""
    exact.fast.forget()
    first = exact.generate([QUESTION, OTHER], P16)  # OTHER is the shorter prompt: its row has left padding
    round2 = [*OTHER, Message("assistant", first[1].text), Message("user", "Check your answer.")]
    new_cache = exact.fast.engine.new_cache

    def poisoned(batch, capacity):  # a column never written stays NaN, and NaN reaches the logits if it is read
        cache = new_cache(batch, capacity)
        cache.k.fill_(float("nan"))
        cache.v.fill_(float("nan"))
        return cache

    exact.fast.engine.new_cache = poisoned
    try:
        again = exact.generate_one(round2, P16)
    finally:
        del exact.fast.engine.new_cache
    assert exact.fast.stats.last_reused > len(exact.encode([OTHER])["input_ids"][0])  # its prompt and answer
    assert ids(again) == ids(reference.generate_one(round2, P16))


def test_a_one_token_prefill_is_a_decode_step(smol_backend):
    """Feeding one token per row (what prefix reuse often leaves) runs as a decode step: the same logits and the same
    cache bookkeeping as ``step``, without the torch path's per-layer ops."""
    engine = smol_backend.fast.engine
    prompt = torch.tensor([[1, 2, 3, 4, 5], [0, 0, 3, 4, 5]])
    mask = (prompt > 0).long()
    caches = [engine.new_cache(2, 16), engine.new_cache(2, 16)]
    for cache in caches:
        engine.prefill(cache, prompt, mask)
    fed, stepped = engine.prefill(caches[0], torch.tensor([[7], [8]])), engine.step(caches[1], torch.tensor([7, 8]))
    assert torch.equal(fed, stepped)
    # and it is what the torch path gives for the same token, up to rounding (a padding column forces that path)
    torch_path = engine.prefill(engine.new_cache(2, 16), torch.tensor([[1, 2, 3, 4, 5, 0, 7], [0, 0, 3, 4, 5, 0, 8]]),
                                torch.tensor([[1, 1, 1, 1, 1, 0, 1], [0, 0, 1, 1, 1, 0, 1]]))
    # (the C step keeps queries in fp32 where the torch path rounds them to bf16: ~2 % of the logits' range here)
    assert (torch_path - fed).abs().max() < 0.05 * (fed.max() - fed.min())
    assert torch.equal(torch_path.argmax(-1), fed.argmax(-1))
    a, b = caches
    assert (a.length, a.ids, a.all_valid) == (b.length, b.ids, b.all_valid)
    assert torch.equal(a.positions, b.positions) and torch.equal(a.valid, b.valid)
    assert torch.equal(a.k[:, :, :, :a.length], b.k[:, :, :, :b.length])


def test_a_padded_batch_feeds_only_its_real_tokens_to_the_products(exact):
    engine = exact.fast.engine
    layer, rows = engine.layers[0], []
    product = layer.wqkv

    class Spy:
        def __call__(self, x):
            rows.append(x.numel() // x.shape[-1])
            return product(x)

    prompt = torch.tensor([[0, 0, 7, 8, 9, 10], [5, 6, 7, 8, 9, 10], [0, 0, 0, 0, 9, 11]])
    layer.wqkv = Spy()
    try:
        logits = engine.prefill(engine.new_cache(3, 16), prompt, (prompt > 0).long())
    finally:
        layer.wqkv = product
    assert rows == [12]  # 18 columns, 6 of them padding
    for row, tokens in zip(logits, prompt):
        alone = engine.prefill(engine.new_cache(1, 16), tokens[tokens > 0][None])[0]
        assert torch.allclose(row, alone, atol=1e-3) and torch.equal(row.argmax(), alone.argmax())  # fp32 rounding
    with pytest.raises(ValueError, match="at least one real token"):
        engine.prefill(engine.new_cache(2, 16), prompt[:2, :2], (prompt[:2, :2] > 0).long())


def test_a_batch_too_large_to_keep_is_not_kept(exact, monkeypatch):
    from reflectnb.backends import engine_loop

    monkeypatch.setattr(engine_loop, "MAX_KEPT_BYTES", 0)
    exact.fast.forget()
    before = exact.fast.stats.row_reused_tokens
    first = exact.generate([QUESTION, OTHER], P16)
    round2 = [[*p, Message("assistant", g.text), Message("user", "Check your answer.")]
              for p, g in zip((QUESTION, OTHER), first)]
    exact.generate(round2, P16)
    assert exact.fast.stats.row_reused_tokens == before  # nothing was kept to reuse


def test_row_reuse_that_would_not_fit_the_model_context_falls_back_to_a_plain_prefill(exact, reference):
    """One row reusing a long conversation beside a long new prompt would need more columns than the model has:
    the batch is prefilled the usual way instead, and decodes as each row would alone."""
    engine = exact.fast.engine
    exact.fast.forget()
    first = exact.generate([QUESTION, OTHER], P16)
    long_new = [Message("user", "Describe the water cycle: evaporation, condensation, precipitation and "
                                "collection, with one example of each from everyday life, in plain words.")]
    round2 = [[*QUESTION, Message("assistant", first[0].text), Message("user", "Check your answer.")], long_new]
    lengths = [len(exact.encode([p])["input_ids"][0]) for p in round2]
    system = _common_prefix(*(exact.encode([p])["input_ids"][0].tolist() for p in round2))
    reused = lengths[0] - 1 - 8  # at least this much of row 0 is its round-1 conversation (prompt and answer)
    assert reused + (lengths[1] - system) + 16 > max(lengths) + 16 + 8  # the reuse layout is the wider one
    before, limit = exact.fast.stats.row_reused_tokens, engine.max_positions
    engine.max_positions = max(lengths) + 16 + 8  # room for a plain prefill, not for the reuse layout
    try:
        again = exact.generate(round2, P16)
    finally:
        engine.max_positions = limit
    assert exact.fast.stats.row_reused_tokens == before
    assert [ids(g) for g in again] == [ids(reference.generate_one(p, P16)) for p in round2]


def test_rows_that_finish_leave_the_batch_and_the_rest_decode_as_they_would_alone(exact, reference):
    engine, stop = exact.fast.engine, exact.tokenizer.eos_token_id
    step, sizes = engine.step, []

    def spy(cache, tokens, threads=None):
        sizes.append(tokens.shape[0])
        return step(cache, tokens, threads=threads)

    engine.step = spy
    end = rows_after_the_first_stop_after_two_tokens(stop)
    try:
        rows = exact.generate([QUESTION] * 4, GenerationParams(max_new_tokens=16, repetition_stop=False,
                                                               logits_processors=(end,)))
    finally:
        del engine.step
    alone = ids(reference.generate_one(QUESTION, P16))
    assert ids(rows[0]) == alone and [ids(r) for r in rows[1:]] == [alone[:2]] * 3
    assert sizes == [4, 4] + [1] * 13  # after two steps of four rows, one row: the cache dropped the other three


def test_processors_see_the_real_tokens_so_far_under_left_padding(exact):
    seen = []

    def spy(input_ids, scores):
        seen.append(input_ids.clone())
        return scores

    prompt_ids = exact.encode([QUESTION, OTHER])["input_ids"]
    gens = exact.generate([QUESTION, OTHER], P16.with_(max_new_tokens=5, logits_processors=(spy,)))
    assert torch.equal(seen[0], prompt_ids)
    assert [s.shape[1] for s in seen] == [prompt_ids.shape[1] + i for i in range(5)]
    assert seen[-1][0, prompt_ids.shape[1]:].tolist() == ids(gens[0])[:4]


def test_a_processor_steers_the_fast_engine_and_top_alternatives_are_recorded(smol_backend):
    target = smol_backend.tokenizer(" banana", add_special_tokens=False)["input_ids"][0]

    def force(input_ids, scores):
        out = torch.full_like(scores, -1e4)
        out[:, target] = 0.0
        return out

    gen = smol_backend.generate_one(OTHER, GenerationParams(max_new_tokens=3, logits_processors=(force,),
                                                            top_logprobs=2, repetition_stop=False))
    assert ids(gen) == [target] * 3
    assert gen.tokens[0].top[0] == (" banana", pytest.approx(0.0))


def test_sampling_with_a_seed_repeats_and_stop_strings_cut_the_text(smol_backend):
    params = GenerationParams(max_new_tokens=12, temperature=0.9, top_k=40, top_p=0.9, seed=7)
    assert smol_backend.generate_one(OTHER, params).text == smol_backend.generate_one(OTHER, params).text
    full = smol_backend.generate_one(QUESTION, P16).text
    stop = full.split()[2]
    cut = smol_backend.generate_one(QUESTION, P16.with_(stop=(stop,)))
    assert (cut.text, cut.finish_reason) == (full[: full.index(stop)], "stop")


def test_ctrl_c_from_on_token_keeps_the_partial_output_and_torch_threads(smol_backend):
    def stop_after_three(event):
        if event.position == 2:
            raise KeyboardInterrupt

    threads = torch.get_num_threads()
    with pytest.raises(GenerationInterrupted) as err:
        smol_backend.generate([QUESTION], P16, on_token=stop_after_three)
    partial = err.value.partial[0]
    assert (partial.completion_tokens, partial.finish_reason) == (3, "interrupted")
    assert torch.get_num_threads() == threads  # the decode loop's one-thread section is undone


def test_between_decode_steps_torch_runs_on_one_thread_and_the_count_comes_back(smol_backend):
    seen = []

    def spy(input_ids, scores):
        seen.append(torch.get_num_threads())
        return scores

    threads = torch.get_num_threads()
    smol_backend.generate_one(OTHER, P16.with_(max_new_tokens=3, logits_processors=(spy,)))
    assert seen == [1, 1, 1] and torch.get_num_threads() == threads


@pytest.mark.parametrize("engine", ["fast", "transformers"])
def test_a_looping_row_stops_for_repetition_on_both_engines(smol_backend, engine):
    backend = LocalBackend(smol_backend.model, smol_backend.tokenizer, engine=engine, repetition_default=True) \
        if engine == "transformers" else smol_backend
    line = smol_backend.tokenizer("The answer is 12.\n", add_special_tokens=False)["input_ids"]

    def loop(input_ids, scores):  # force the same line again and again
        step = input_ids.shape[1] - loop.prompt_len
        out = torch.full_like(scores, -1e4)
        out[:, line[step % len(line)]] = 0.0
        return out

    loop.prompt_len = backend.encode([OTHER])["input_ids"].shape[1]
    params = GenerationParams(max_new_tokens=60, logits_processors=(loop,))  # the default: on
    gen = backend.generate_one(OTHER, params)
    assert gen.finish_reason == "repetition"
    assert gen.text.startswith("The answer is 12.\n" * 3) and gen.completion_tokens < 4 * len(line)
    off = backend.generate_one(OTHER, params.with_(repetition_stop=False))
    assert (off.finish_reason, off.completion_tokens) == ("length", 60)


def test_the_repetition_stop_is_on_by_default_for_the_embedded_model_only(smol_backend, reference):
    assert (smol_backend.repetition_default, reference.repetition_default) == (True, False)
    custom = RepetitionStop(line_repeats=2)
    gen = smol_backend.generate_one(OTHER, GenerationParams(max_new_tokens=2, repetition_stop=custom))
    assert gen.params["repetition_stop"]["line_repeats"] == 2
