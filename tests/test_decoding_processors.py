"""Logits processors on hand-built tensors: positions, gating, windows, exact deltas, no in-place edits.

A tiny *real* word-level tokenizer (the ``tokenizers`` library) stands in where a
processor needs a tokenizer; the embedded model's tokenizer is covered in
``test_decoding_vocab.py`` and end to end in ``test_decoding_generate.py``.
"""

from __future__ import annotations

import pytest
import torch

from reflectnb.decoding import (AdditiveReflectionBias, CyclicReflexProcessor, ScheduleProcessor,
                                SilverScheduleProcessor, ThoughtSwitchPenalty, build_processor)
from reflectnb.decoding.schedules import Constant, Cyclic, Silver
from reflectnb.errors import OptionError

WORDS = ["<unk>", "a", "b", "wait", "Wait", "but", "But", "Alternatively", "</think>", "x", "y", "z"]
V_HAT = [3, 4, 5, 6, 7]
END = 8
VOCAB_SIZE = len(WORDS)


@pytest.fixture(scope="module")
def word_tokenizer():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")


def ids(prompt_len: int, generated: list[int] | None = None, n_generated: int = 0, rows: int = 1) -> torch.Tensor:
    """input_ids ``[rows, prompt_len + n]``: prompt of 'a' (1), then ``generated`` or 'x' (9) tokens."""
    gen = generated if generated is not None else [9] * n_generated
    return torch.tensor([[1] * prompt_len + gen] * rows, dtype=torch.long)


def scores(rows: int = 1) -> torch.Tensor:
    return torch.arange(rows * VOCAB_SIZE, dtype=torch.float32).reshape(rows, VOCAB_SIZE) / 4


def test_delta_is_computed_at_the_generated_position_not_the_sequence_length():
    proc = ScheduleProcessor(V_HAT, Cyclic(5, 1200), prompt_len=37)
    out = proc(ids(37, n_generated=300), scores())
    assert proc.last_positions.tolist() == [300] and proc.last_values.tolist() == [5.0]
    assert (out - scores())[0, V_HAT].tolist() == [5.0] * 5  # δ(337) would be 4.383…


def test_only_reflection_ids_change_and_by_exactly_delta():
    before = scores()
    out = ScheduleProcessor(V_HAT, Cyclic(5, 1200), prompt_len=4)(ids(4, n_generated=150), before)
    changed = (out != before).nonzero()[:, 1].tolist()
    assert changed == V_HAT
    assert torch.equal(out[0, V_HAT], before[0, V_HAT] + torch.tensor(2.5))


def test_input_scores_are_not_modified_in_place():
    before = scores(2)
    copy = before.clone()
    out = ScheduleProcessor(V_HAT, Constant(2.0), prompt_len=3)(ids(3, n_generated=2, rows=2), before)
    assert torch.equal(before, copy) and out.data_ptr() != before.data_ptr()


def test_after_a_generated_end_token_the_scores_are_bitwise_unchanged():
    proc = ScheduleProcessor(V_HAT, Cyclic(5, 1200), end_token_id=END, prompt_len=3)
    before = scores()
    before[0, 3] = -0.0  # adding 0.0 would turn -0.0 into +0.0: gating must not touch the row at all
    out = proc(ids(3, [9] * 100 + [END] + [9] * 199), before)
    assert torch.equal(out, before) and out.view(torch.int32).equal(before.view(torch.int32))
    assert proc.last_values.tolist() == [0.0]


def test_an_end_token_inside_the_prompt_does_not_gate():
    proc = ScheduleProcessor(V_HAT, Cyclic(5, 1200), end_token_id=END, prompt_len=3)
    out = proc(torch.tensor([[1, END, 1] + [9] * 300]), scores())
    assert proc.last_values.tolist() == [5.0] and not torch.equal(out, scores())


def test_the_window_end_is_excluded():
    proc = ScheduleProcessor(V_HAT, Cyclic(5, 1200, windows=[(0, 8192)]), prompt_len=2)
    assert torch.equal(proc(ids(2, n_generated=8192), scores()), scores())
    assert not torch.equal(proc(ids(2, n_generated=8191), scores()), scores())


def test_rows_in_one_batch_keep_their_own_state():
    proc = ScheduleProcessor(V_HAT, Constant(1.5), end_token_id=END, prompt_len=2)
    batch = torch.tensor([[1, 1, 9, END, 9], [1, 1, 9, 9, 9]])
    out = proc(batch, scores(2))
    assert proc.last_values.tolist() == [0.0, 1.5]
    assert torch.equal(out[0], scores(2)[0]) and (out[1] - scores(2)[1])[V_HAT].tolist() == [1.5] * 5


def test_per_row_prompt_lengths_give_per_row_positions():
    proc = ScheduleProcessor(V_HAT, Cyclic(5, 1200), prompt_len=[40, 37])
    proc(ids(40, n_generated=297, rows=2), scores(2))
    assert proc.last_positions.tolist() == [297, 300]


def test_without_a_prompt_length_the_first_call_of_a_generation_defines_it():
    proc = ScheduleProcessor(V_HAT, Cyclic(5, 1200))
    for n in range(301):
        proc(ids(37, n_generated=n), scores())
    assert proc.last_positions.tolist() == [300] and proc.last_values.tolist() == [5.0]
    proc(ids(10), scores())  # a new, shorter prompt starts a new generation
    assert proc.last_positions.tolist() == [0]


def test_a_prompt_length_longer_than_the_sequence_is_an_error():
    proc = ScheduleProcessor(V_HAT, Constant(1), prompt_len=50)
    with pytest.raises(OptionError, match=r"`prompt_len` \[50\] is longer than the sequence \(10 ids\)"):
        proc(ids(10), scores())


def test_reset_replaces_the_prompt_length():
    proc = ScheduleProcessor(V_HAT, Cyclic(5, 1200), prompt_len=5)
    proc.reset(37)
    proc(ids(37, n_generated=300), scores())
    assert proc.last_positions.tolist() == [300]


def test_half_precision_scores_keep_their_dtype():
    out = ScheduleProcessor(V_HAT, Constant(2), prompt_len=1)(ids(1), scores().half())
    assert out.dtype == torch.float16 and out[0, 3].item() == scores()[0, 3].item() + 2


@pytest.mark.parametrize("make,match", [
    (lambda: ScheduleProcessor([], Constant(1)), "`vocab` is empty"),
    (lambda: ScheduleProcessor(V_HAT, "wobble"), "unknown kind 'wobble'"),
    (lambda: ScheduleProcessor(V_HAT, "none"), "`schedule` must be a schedule, got None"),
    (lambda: ScheduleProcessor(V_HAT, "tip(mode=paper)"), "use ThoughtSwitchPenalty"),
    (lambda: ScheduleProcessor(V_HAT, Constant(1), prompt_len=-1), "`prompt_len` must be a non-negative int"),
])
def test_bad_constructor_arguments_are_option_errors(make, match):
    with pytest.raises(OptionError, match=match):
        make()


def test_cyclicreflex_processor_resolves_words_and_gates_after_the_end_token(word_tokenizer):
    proc = CyclicReflexProcessor(word_tokenizer, amplitude=5.0, period=1200, prompt_len=2)
    assert proc.ids.tolist() == V_HAT and proc.end_token_id == END
    assert proc.gating == f"rows stop being modified once token {END} has been generated"
    assert torch.equal(proc(ids(2, [9, END, 9]), scores()), scores())


def test_without_a_single_end_token_gating_is_off_and_says_so(word_tokenizer):
    proc = CyclicReflexProcessor(word_tokenizer, end_token="<end_of_thought>", prompt_len=2)
    assert proc.end_token_id is None
    assert proc.gating == "no gating: '<end_of_thought>' is not a single token of this tokenizer"


def test_additive_bias_is_cyclicreflex_tip_a_fixed_delta_in_a_window(word_tokenizer):
    proc = AdditiveReflectionBias(word_tokenizer, -3.0, windows=[(0, 600)], prompt_len=1)
    proc(ids(1, n_generated=599), scores())
    assert proc.last_values.tolist() == [-3.0]
    assert torch.equal(proc(ids(1, n_generated=600), scores()), scores())


@pytest.mark.parametrize("position,delta", [(0, 0.25), (1, 0.5), (3, 1.0), (7, 2.0), (63, 16.0), (64, 0.25)])
def test_silver_processor_adds_the_silver_values(word_tokenizer, position, delta):
    proc = SilverScheduleProcessor(word_tokenizer, rho=2.0, modulus=64, prompt_len=1)
    out = proc(ids(1, n_generated=position), scores())
    assert (out - scores())[0, V_HAT].tolist() == [delta] * 5


def tip_ids(n: int, switch_at: int | None = 1000) -> torch.Tensor:
    gen = [9] * n
    if switch_at is not None and switch_at < n:
        gen[switch_at] = 4  # "Wait"
    return ids(1, gen)


@pytest.mark.parametrize("t,expected", [(599, -3.0), (600, 0.0), (1000, 0.0), (1001, -3.0), (1599, -3.0),
                                        (1600, 0.0)])
def test_tip_paper_mode_re_anchors_at_the_last_switch_token(word_tokenizer, t, expected):
    proc = ThoughtSwitchPenalty(word_tokenizer, alpha=3.0, beta=600, mode="paper", prompt_len=1)
    out = proc(tip_ids(t), scores())
    assert proc.last_values.tolist() == [expected]
    assert (out - scores())[0, V_HAT].tolist() == [expected] * 5


def test_tip_cyclicreflex_mode_is_a_fixed_window_from_zero(word_tokenizer):
    proc = ThoughtSwitchPenalty(word_tokenizer, mode="cyclicreflex", prompt_len=1)
    proc(tip_ids(1300), scores())
    assert proc.last_values.tolist() == [0.0]


def test_tip_rows_track_their_own_switches(word_tokenizer):
    proc = ThoughtSwitchPenalty(word_tokenizer, alpha=3.0, beta=600, prompt_len=1)
    batch = torch.cat([tip_ids(1300, switch_at=1000), tip_ids(1300, switch_at=None)])
    proc(batch, scores(2))
    assert proc.last_values.tolist() == [-3.0, 0.0]


def test_build_processor_maps_schedule_strings_to_processors(word_tokenizer):
    assert build_processor("none", word_tokenizer) is None
    tip = build_processor("tip(alpha=2, beta=50, mode=paper)", word_tokenizer, words=["Alternatively"])
    assert isinstance(tip, ThoughtSwitchPenalty) and tip.ids.tolist() == [7] and tip.schedule.alpha == 2
    wave = build_processor("cyclic(amplitude=5, period=600)", word_tokenizer)
    assert wave.schedule == Cyclic(5, 600) and wave.end_token_id == END and wave.ids.tolist() == V_HAT
    assert build_processor(Silver(), word_tokenizer, variants="exact+space").schedule == Silver()
