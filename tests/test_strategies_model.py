"""Each loop once on the real embedded model (few new tokens): the wiring, not the wisdom."""

from __future__ import annotations

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.strategies import RunContext, critique, debate_du, debate_mad, reflect
from reflectnb.trace import ListRecorder

pytestmark = pytest.mark.model
TINY = GenerationParams(max_new_tokens=8, temperature=0.0)


def test_reflect_on_the_real_model_records_token_rows_for_every_step(smol_backend):
    recorder = ListRecorder()
    result = reflect(RunContext(smol_backend, params=TINY, recorder=recorder), "Name a colour.", rounds=1)
    assert [s.kind for s in recorder.steps][:2] == ["draft", "feedback"]
    assert all(0 < s.generation.completion_tokens <= 8 and s.generation.tokens for s in recorder.steps)
    assert result.stop_reason in ("feedback_stop", "max_rounds") and result.answer


def test_critique_on_the_real_model_parses_whatever_the_critic_says(smol_backend):
    result = critique(RunContext(smol_backend, params=TINY), "What is 2 + 3?")
    assert [s.kind for s in result.steps] == ["answer", "critique", "revise"]
    assert len(result.critiques[0].steps) >= 1


def test_mad_on_the_real_model_ends_by_moderator_or_judge(smol_backend):
    result = debate_mad(RunContext(smol_backend, params=GenerationParams(max_new_tokens=6)), "Is 7 a prime number?",
                        max_rounds=1)
    assert result.stop_reason in ("moderator_decided", "judge")
    moderator = result.steps_of("moderator")[0]
    assert {"verdict"} <= set(moderator.attributes)


def test_du_on_the_real_model_batches_the_agents_of_a_round(smol_backend):
    turns = []
    ctx = RunContext(smol_backend, params=GenerationParams(max_new_tokens=6), on_turn=turns.append)
    result = debate_du(ctx, "What is 2 + 2?", n_agents=2, rounds=2)
    assert [s.kind for s in result.steps] == ["answer", "answer", "update", "update"]
    assert [t.agents for t in turns] == [("agent 1", "agent 2")] * 2  # one generate call per round
    assert all(s.generation.tokens for s in result.steps)
