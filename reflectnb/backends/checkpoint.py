"""A Llama-style checkpoint read straight from its safetensors, without transformers' model classes.

Why: building ``LlamaForCausalLM`` costs ~1.5 s of imports on this machine
(transformers' modeling code pulls in ``torch._dynamo`` and ``torch.distributed``)
plus its own init, before the fast engine copies every weight again. The fast
engine needs only the tensors, the config and the RoPE tables, so the embedded
model's cold load reads those here and ``LocalBackend`` loads the transformers
model on first use of ``backend.model`` (SRGen, the controllers, the
transformers engine).

Contract
--------
:func:`open_checkpoint` returns a :class:`CheckpointModel`, or ``None`` when the
folder is one this module does not read exactly as transformers would (not one
``model.safetensors``, a model type other than Llama, a RoPE type other than
``default``, a config field missing whose default lives in transformers, an
untied head missing) — the caller then loads the transformers model as before.
A :class:`CheckpointModel` exposes the part of ``LlamaForCausalLM``'s attribute
tree that :class:`~reflectnb.backends.engine.FastLlama` and
:func:`~reflectnb.backends.local.stop_ids` read (``config``,
``generation_config.eos_token_id``, ``get_decoder()``, ``get_output_embeddings()``,
``parameters()``), holding the same fp32 tensors (memory-mapped) and computing
the same RoPE tables as transformers' ``LlamaRotaryEmbedding``.

Non-goals: running the model (no forward), dtypes other than fp32, other architectures.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch

WEIGHTS = "model.safetensors"
# Config fields FastLlama reads directly; without one of them the value would be transformers' default.
REQUIRED = ("hidden_size", "num_attention_heads", "num_hidden_layers", "rms_norm_eps", "max_position_embeddings")


def open_checkpoint(path: str | Path) -> CheckpointModel | None:
    """The weights of the Llama checkpoint in folder ``path``, or ``None`` when it needs transformers to load."""
    folder = Path(path)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    theta = _rope_theta(config)
    if (config.get("model_type") != "llama" or theta is None or not (folder / WEIGHTS).is_file()
            or any(key not in config for key in REQUIRED)):
        return None
    from safetensors import safe_open

    with safe_open(str(folder / WEIGHTS), framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    if any(t.dtype != torch.float32 for t in tensors.values()):
        return None
    if config.get("tie_word_embeddings", False):  # LlamaConfig's default; tied, the head *is* the embedding
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]
    elif "lm_head.weight" not in tensors:
        return None  # transformers would initialise a random head: leave that to it
    return CheckpointModel(config, tensors, theta, _eos_ids(folder, config))


def _rope_theta(config: dict) -> float | None:
    """The RoPE base when the rotation is transformers' ``default`` one, else ``None``."""
    params = config.get("rope_parameters")
    if params is None:  # an older config: rope_theta + rope_scaling at the top level
        if config.get("rope_scaling") or "rope_theta" not in config:
            return None
        return float(config["rope_theta"])
    if params.get("rope_type", "default") != "default" or "rope_theta" not in params:
        return None
    return float(params["rope_theta"])


def _eos_ids(folder: Path, config: dict):
    """``model.generation_config.eos_token_id``: generation_config.json's, else the model config's."""
    try:
        generation = json.loads((folder / "generation_config.json").read_text())
    except (OSError, ValueError):
        generation = {}
    return generation.get("eos_token_id", config.get("eos_token_id"))


class CheckpointModel:
    """A stand-in for ``LlamaForCausalLM`` that holds its weights and nothing else; see the module docstring."""

    def __init__(self, config: dict, tensors: dict[str, torch.Tensor], rope_theta: float, eos_token_id):
        self.config = SimpleNamespace(**config)
        self.generation_config = SimpleNamespace(eos_token_id=eos_token_id)
        self._tensors = tensors
        n_layers = config["num_hidden_layers"]
        head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        self._decoder = SimpleNamespace(
            embed_tokens=self._module("model.embed_tokens"), norm=self._module("model.norm"),
            layers=[self._block(f"model.layers.{i}") for i in range(n_layers)],
            rotary_emb=_DefaultRope(rope_theta, head_dim))

    def _module(self, prefix: str) -> SimpleNamespace:
        return SimpleNamespace(weight=self._tensors[f"{prefix}.weight"], bias=self._tensors.get(f"{prefix}.bias"))

    def _block(self, prefix: str) -> SimpleNamespace:
        att = {name: self._module(f"{prefix}.self_attn.{name}") for name in ("q_proj", "k_proj", "v_proj", "o_proj")}
        mlp = {name: self._module(f"{prefix}.mlp.{name}") for name in ("gate_proj", "up_proj", "down_proj")}
        return SimpleNamespace(self_attn=SimpleNamespace(**att), mlp=SimpleNamespace(**mlp),
                               input_layernorm=self._module(f"{prefix}.input_layernorm"),
                               post_attention_layernorm=self._module(f"{prefix}.post_attention_layernorm"))

    def get_decoder(self) -> SimpleNamespace:
        return self._decoder

    def get_output_embeddings(self) -> SimpleNamespace:
        return self._module("lm_head")

    def parameters(self):
        return iter(self._tensors.values())


class _DefaultRope:
    """transformers' ``LlamaRotaryEmbedding`` for the ``default`` RoPE type: the same arithmetic, op for op."""

    def __init__(self, theta: float, dim: int):
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))

    def __call__(self, x: torch.Tensor, position_ids: torch.Tensor):
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype=x.dtype), emb.sin().to(dtype=x.dtype)
