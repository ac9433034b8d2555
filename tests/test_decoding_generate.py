"""Processors inside real ``generate`` calls of the embedded model (short generations)."""

from __future__ import annotations

import pytest
import torch

from reflectnb.backends.base import GenerationParams
from reflectnb.decoding import CyclicReflexProcessor, ReflectionVocab, ScheduleProcessor, flag_reflection
from reflectnb.decoding.schedules import Constant, Cyclic

pytestmark = pytest.mark.model

PROMPTS = ["The capital of France is", "Write one short sentence about a long afternoon spent reading by the sea"]


class PositionLog:
    """A pass-through processor that records each step's (positions, values) of another processor."""

    def __init__(self, watched):
        self.watched, self.steps = watched, []

    def __call__(self, input_ids, scores):
        self.steps.append((self.watched.last_positions.tolist(), self.watched.last_values.tolist()))
        return scores


def test_positions_count_generated_tokens_from_zero_under_left_padding(smol_backend):
    proc = CyclicReflexProcessor(smol_backend.tokenizer, amplitude=5.0, period=8)
    log = PositionLog(proc)
    inputs = smol_backend.encode(PROMPTS)
    assert (inputs["attention_mask"][0] == 0).any()  # the shorter prompt really is left-padded
    proc.set_prompt_len(inputs["input_ids"].shape[1])
    with torch.inference_mode():
        smol_backend.model.generate(**inputs, max_new_tokens=6, min_new_tokens=6, do_sample=False,
                                    logits_processor=[proc, log], pad_token_id=smol_backend.tokenizer.pad_token_id)
    expected = Cyclic(5.0, 8).value(range(6)).tolist()
    assert log.steps == [([t, t], [v, v]) for t, v in enumerate(expected)]


def test_the_backend_records_each_tokens_schedule_value(smol_backend):
    proc = CyclicReflexProcessor(smol_backend.tokenizer, amplitude=5.0, period=8)
    gens = smol_backend.generate(PROMPTS, GenerationParams(max_new_tokens=8, logits_processors=(proc,)))
    for gen in gens:
        assert gen.tokens, "no tokens generated"
        assert [t.schedule_value for t in gen.tokens] == Cyclic(5.0, 8).value(
            [t.position for t in gen.tokens]).tolist()


def test_a_large_positive_bias_makes_the_model_emit_reflection_tokens(smol_backend):
    vocab = ReflectionVocab(smol_backend.tokenizer, variants="exact+space")
    plain = smol_backend.generate_one(PROMPTS[0], GenerationParams(max_new_tokens=4))
    biased = smol_backend.generate_one(PROMPTS[0], GenerationParams(
        max_new_tokens=4, logits_processors=(ScheduleProcessor(vocab, Constant(40.0)),)))
    assert not flag_reflection([t.token_id for t in plain.tokens], vocab).all()
    assert flag_reflection([t.token_id for t in biased.tokens], vocab).all()
