"""The store with the real embedded model: token rows match the generation, Ctrl-C keeps streamed tokens."""

from __future__ import annotations

import pytest

from reflectnb.backends.base import GenerationInterrupted, GenerationParams
from reflectnb.store import open_store
from reflectnb.trace import Step

pytestmark = pytest.mark.model
PARAMS = GenerationParams(max_new_tokens=8, temperature=0.0)


def test_a_traced_generation_stores_one_token_row_per_generated_token(smol_backend, trace_file):
    store = open_store()
    with store.run("generate", smol_backend.name, PARAMS.to_dict()) as run:
        gen = smol_backend.generate(["The capital of France is"], PARAMS, on_token=run.on_token)[0]
        run.on_step(Step("generation", gen.text, generation=gen))
    stored = store.sql("SELECT position, token_id, text, logprob, entropy FROM tokens WHERE run_id = $r "
                       "ORDER BY position", {"r": run.run_id})
    assert stored["token_id"].tolist() == [t.token_id for t in gen.tokens]
    assert "".join(stored["text"]) == "".join(t.text for t in gen.tokens)
    assert stored["logprob"].notna().all() and (stored["entropy"] >= 0).all()
    assert store.sql("SELECT completion_tokens FROM runs WHERE run_id = $r", {"r": run.run_id}).iloc[0, 0] == len(gen.tokens)


def test_ctrl_c_during_a_real_generation_keeps_the_streamed_tokens_as_an_interrupted_generation(
        smol_backend, trace_file):
    store = open_store()

    def on_token(event):
        run.on_token(event)
        if event.position == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with store.run("generate", smol_backend.name, PARAMS.to_dict()) as run:
            smol_backend.generate(["Count: one, two,"], PARAMS, on_token=on_token)
    assert issubclass(GenerationInterrupted, KeyboardInterrupt)
    row = store.sql("SELECT status FROM runs WHERE run_id = $r", {"r": run.run_id}).iloc[0]
    assert row["status"] == "interrupted"
    gens = store.sql("SELECT finish_reason, step_index FROM generations WHERE run_id = $r", {"r": run.run_id})
    assert gens["finish_reason"].tolist() == ["interrupted"] and gens["step_index"].isna().all()
    positions = store.sql("SELECT position FROM tokens WHERE run_id = $r ORDER BY position", {"r": run.run_id})
    assert positions["position"].tolist() == [0, 1, 2, 3]
