"""Cold load of the embedded model: the fast engine from the safetensors, the transformers model on first use."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from reflectnb.backends.checkpoint import open_checkpoint
from reflectnb.backends.local import LocalBackend, stop_ids

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.model
def test_the_embedded_model_loads_without_transformers_modeling_code_until_srgen_asks_for_the_model():
    code = """
import sys
from reflectnb.backends import load_model
from reflectnb.backends.base import GenerationParams
from reflectnb.controllers import SRGen
modeling = 'transformers.models.llama.modeling_llama'
backend = load_model('smollm2-135m')
print(backend.model_loaded, modeling in sys.modules, backend.describe())
gen = backend.generate_one('The capital of France is', GenerationParams(max_new_tokens=4))
print(backend.model_loaded, modeling in sys.modules, len(gen.tokens))
gen = SRGen(N=25, temperature=0).run(backend, 'The capital of France is', GenerationParams(max_new_tokens=3))
print(type(backend.model).__name__, backend.model_loaded, len(gen.tokens), gen.params['dtype'])
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded, generated, srgen = out.stdout.strip().splitlines()[-3:]
    assert loaded == "False False fast engine, bfloat16"
    assert generated == "False False 4"  # a greedy generation on the fast engine needs no transformers model
    assert srgen == "LlamaForCausalLM True 3 float32"  # SRGen edits hidden states: it loads the fp32 model


@pytest.mark.model
def test_the_engine_built_from_the_checkpoint_equals_the_one_built_from_the_transformers_model(smol_backend):
    from reflectnb.backends.engine import FastLlama

    lazy, eager = smol_backend.fast.engine, FastLlama(smol_backend.model, smol_backend.fast.engine.dtype)
    pairs = [(lazy.embed, eager.embed), (lazy.norm, eager.norm), (lazy.cos, eager.cos), (lazy.sin, eager.sin),
             (lazy.head.dense, eager.head.dense)]
    for mine, theirs in zip(lazy.layers, eager.layers):
        pairs += [(mine.wqkv.dense, theirs.wqkv.dense), (mine.wo.dense, theirs.wo.dense),
                  (mine.wgu.dense, theirs.wgu.dense), (mine.wdown.dense, theirs.wdown.dense),
                  (mine.ln1, theirs.ln1), (mine.ln2, theirs.ln2)]
    assert len(pairs) == 5 + 6 * len(eager.layers)
    assert all(a.dtype == b.dtype and torch.equal(a, b) for a, b in pairs)


@pytest.mark.model
def test_the_checkpoint_stand_in_ends_rows_on_the_same_ids_as_the_transformers_model(smol_backend, smol_path):
    weights = open_checkpoint(smol_path)
    assert weights is not None
    assert stop_ids(weights, smol_backend.tokenizer) == stop_ids(smol_backend.model, smol_backend.tokenizer)
    assert next(weights.parameters()).dtype == torch.float32


@pytest.mark.model
def test_two_threads_asking_for_the_model_at_once_load_it_once(smol_backend, smol_path):
    calls = []

    def loader():
        calls.append(threading.get_ident())
        time.sleep(0.2)  # both threads arrive while the first load is under way
        return smol_backend.model

    backend = LocalBackend(open_checkpoint(smol_path), smol_backend.tokenizer, engine="fast",
                           engine_dtype=torch.float32, model_loader=loader)
    assert not backend.model_loaded
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(backend.model)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and seen == [smol_backend.model, smol_backend.model]


@pytest.mark.model
def test_the_transformers_engine_loads_the_model_when_the_backend_is_built(smol_backend, smol_path):
    backend = LocalBackend(open_checkpoint(smol_path), smol_backend.tokenizer, engine="transformers",
                           model_loader=lambda: smol_backend.model)
    assert backend.model_loaded and backend.fast is None and backend.describe() == "transformers engine, float32"


@pytest.mark.model
@pytest.mark.parametrize("dtype, engine, env", [("bfloat16", None, ""), (None, "transformers", ""),
                                                (None, None, "transformers")])
def test_other_dtypes_and_the_transformers_engine_load_the_model_at_once(smol_path, monkeypatch, dtype, engine,
                                                                         env):
    from reflectnb.backends.local import checkpoint_weights

    monkeypatch.setenv("REFLECTNB_ENGINE", env)
    assert checkpoint_weights(str(smol_path), "cpu", dtype, engine) is None
    monkeypatch.setenv("REFLECTNB_ENGINE", "")
    assert checkpoint_weights(str(smol_path), "cpu", None, None) is not None


@pytest.mark.parametrize("change, files", [
    ({"rope_parameters": {"rope_theta": 10000.0, "rope_type": "linear", "factor": 2.0}}, ["model.safetensors"]),
    ({"model_type": "qwen2"}, ["model.safetensors"]),
    ({"rms_norm_eps": None}, ["model.safetensors"]),
    ({}, ["model-00001-of-00002.safetensors"]),
])
def test_a_checkpoint_it_cannot_read_exactly_as_transformers_does_is_left_to_transformers(tmp_path, change, files):
    config = {"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1,
              "rms_norm_eps": 1e-5, "max_position_embeddings": 16,
              "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}}
    config.update(change)
    config = {k: v for k, v in config.items() if v is not None}
    (tmp_path / "config.json").write_text(json.dumps(config))
    for name in files:
        (tmp_path / name).write_bytes(b"")  # never opened: the config or the file name rules it out first
    assert open_checkpoint(tmp_path) is None
