"""On the real embedded model: schedules move the rate of reflection tokens in the expected direction."""

from __future__ import annotations

import pytest

from reflectnb.api import params_for
from reflectnb.trace import Message

pytestmark = pytest.mark.model

PROMPTS = [[Message("user", q)] for q in (
    "Is it a good idea to learn to drive at 16? Think about both sides.",
    "Should cities ban cars from their centres? Consider arguments for and against.",
    "Is coffee good for you? Weigh the evidence.",
    "Was the invention of social media positive overall?",
)]


def reflection_rate(backend, schedule) -> float:
    """Reflection tokens per 1,000 generated tokens, over 4 prompts x 2 seeds, sampled at T=1."""
    flagged = total = 0
    for seed in (1, 2):
        params = params_for(backend, temperature=1.0, max_tokens=48, seed=seed, schedule=schedule,
                            variants="all_case_space")
        for gen in backend.generate(PROMPTS, params):
            flagged += sum(t.is_reflection for t in gen.tokens)
            total += len(gen.tokens)
    return 1000 * flagged / total


def test_a_strongly_positive_schedule_raises_and_a_negative_one_lowers_the_reflection_rate(smol_backend):
    none = reflection_rate(smol_backend, None)
    up = reflection_rate(smol_backend, "constant(6)")
    down = reflection_rate(smol_backend, "constant(-20)")
    print(f"reflection tokens per 1000: none {none:.1f}, +6 {up:.1f}, -20 {down:.1f}")
    assert up > none > down


def test_the_token_trace_records_the_schedule_value_at_each_position(smol_backend):
    params = params_for(smol_backend, max_tokens=12, schedule="linear(start=0, end=11, span=11)")
    gen = smol_backend.generate_one(PROMPTS[0], params)
    assert [t.schedule_value for t in gen.tokens] == pytest.approx([float(t.position) for t in gen.tokens])
