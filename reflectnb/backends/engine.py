"""A minimal Llama decode step in plain torch, for the local backend's ``fast`` engine.

Why: ``model.generate`` spends most of a CPU step outside the matrix products
(per-step cache bookkeeping, mask building, many small fp32 ops), and fp32
weights read 538 MB per token of the embedded model. This module keeps only
what a decode step needs (nanoGPT style):

* weights copied once from the loaded ``LlamaForCausalLM``: q/k/v fused into one
  matrix, gate/up into another, in ``dtype`` (bf16 by default: this CPU's
  AVX512-BF16 multiplies it natively, and it halves the bytes read per token);
* the residual stream and the RMS norms in fp32 (closer to fp32 ``generate``
  than transformers' all-bf16 path);
* a static, pre-allocated KV cache (:class:`KVCache`) and RoPE tables built once
  from the model's own rotary module (so any rope scaling it has is kept);
* left-padded batches: one shared column per step, a key-validity mask and
  positions per row.

Contract
--------
``prefill(cache, ids, mask)`` feeds ``ids[B, T]`` (mask 1 = real token) after
whatever the cache already holds and returns the fp32 logits of the last
column ``[B, vocab]``; ``step(cache, token[B])`` feeds one token per row.
The cache's ``length`` counts columns filled. Nothing here samples or stops:
``fast_loop.py`` does that, with transformers' own processors and warpers.

Non-goals: hidden-state edits (SRGen keeps the transformers model), beams,
architectures other than Llama-style decoders (``supports`` says which).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SUPPORTED_TYPES = ("llama", "mistral", "qwen2")


def supports(model) -> str | None:
    """``None`` when ``model`` can run here, else the reason it cannot."""
    cfg = getattr(model, "config", None)
    kind = getattr(cfg, "model_type", None)
    if kind not in SUPPORTED_TYPES:
        return f"model type {kind!r} is not one of {', '.join(SUPPORTED_TYPES)}"
    device = next(model.parameters()).device
    if device.type != "cpu":
        return f"it runs on the CPU; the model is on {device}"
    if getattr(cfg, "mlp_bias", False):
        return "MLP biases are not supported"
    if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", kind == "mistral"):
        return "sliding-window attention is not supported"
    return None


@dataclass
class Layer:
    wqkv: torch.Tensor
    bqkv: torch.Tensor | None
    wo: torch.Tensor
    wgu: torch.Tensor
    wdown: torch.Tensor
    ln1: torch.Tensor
    ln2: torch.Tensor


class KVCache:
    """Keys and values of ``batch`` rows for up to ``capacity`` columns, plus key validity."""

    def __init__(self, n_layers: int, batch: int, kv_heads: int, capacity: int, head_dim: int,
                 dtype: torch.dtype):
        shape = (n_layers, batch, kv_heads, capacity, head_dim)
        self.k = torch.empty(shape, dtype=dtype)
        self.v = torch.empty(shape, dtype=dtype)
        self.valid = torch.zeros(batch, capacity, dtype=torch.bool)
        self.positions = torch.zeros(batch, dtype=torch.long)  # next position per row
        self.length = 0
        self.ids: list[list[int]] = [[] for _ in range(batch)]  # for prefix reuse (batch 1)

    @property
    def batch(self) -> int:
        return self.k.shape[1]

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def truncate(self, length: int) -> None:
        """Forget every column from ``length`` on (the kept ones stay valid)."""
        self.valid[:, length:] = False
        self.positions = self.valid[:, :length].sum(-1)
        self.length = length
        self.ids = [row[:length] for row in self.ids]


class FastLlama:
    """The decode step; see the module docstring."""

    def __init__(self, model, dtype: torch.dtype = torch.bfloat16):
        reason = supports(model)
        if reason is not None:
            raise ValueError(f"the fast engine cannot run this model: {reason}")
        cfg = model.config
        self.dtype = dtype
        self.n_heads = cfg.num_attention_heads
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.max_positions = cfg.max_position_embeddings
        base = model.get_decoder()
        with torch.no_grad():
            self.embed = base.embed_tokens.weight.detach().float()
            self.norm = base.norm.weight.detach().float().clone()
            self.head = model.get_output_embeddings().weight.detach().to(dtype)
            self.layers = [self._layer(block) for block in base.layers]
            self.cos, self.sin = self._rope_tables(base, self.max_positions)

    def _layer(self, block) -> Layer:
        att, mlp = block.self_attn, block.mlp
        wqkv = torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]).to(self.dtype)
        bias = [att.q_proj.bias, att.k_proj.bias, att.v_proj.bias]
        bqkv = torch.cat(bias).to(self.dtype) if all(b is not None for b in bias) else None
        return Layer(wqkv=wqkv.contiguous(), bqkv=bqkv, wo=att.o_proj.weight.to(self.dtype).contiguous(),
                     wgu=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).to(self.dtype).contiguous(),
                     wdown=mlp.down_proj.weight.to(self.dtype).contiguous(),
                     ln1=block.input_layernorm.weight.float().clone(),
                     ln2=block.post_attention_layernorm.weight.float().clone())

    def _rope_tables(self, base, n: int):
        """cos/sin ``[n, head_dim]`` from the model's own rotary module (scaling included)."""
        positions = torch.arange(n)[None, :]
        probe = torch.zeros(1, dtype=torch.float32)
        cos, sin = base.rotary_emb(probe, positions)
        return cos[0].to(self.dtype).contiguous(), sin[0].to(self.dtype).contiguous()

    # -- cache ---------------------------------------------------------------------------------
    def new_cache(self, batch: int, capacity: int) -> KVCache:
        capacity = min(capacity, self.max_positions)
        return KVCache(len(self.layers), batch, self.kv_heads, capacity, self.head_dim, self.dtype)

    # -- forward -------------------------------------------------------------------------------
    @torch.inference_mode()
    def prefill(self, cache: KVCache, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Feed ``ids[B, T]`` after the cache's columns; logits of the last column ``[B, vocab]``."""
        mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
        start, t = cache.length, ids.shape[1]
        self._check_room(cache, t)
        cache.valid[:, start:start + t] = mask
        positions = cache.positions[:, None] + mask.long().cumsum(-1) - 1
        positions = positions.clamp(min=0)
        cache.positions = positions[:, -1] + 1
        keys = cache.valid[:, None, None, :start + t]
        causal = torch.ones(t, start + t, dtype=torch.bool).tril(start)
        attn = keys & causal[None, None]
        # a padding query attends to itself, so no row of the softmax is empty (no NaN)
        attn[:, :, torch.arange(t), start + torch.arange(t)] = True
        for row, new in zip(cache.ids, ids.tolist()):
            row.extend(new)
        return self._forward(cache, ids, positions, attn, start)

    @torch.inference_mode()
    def step(self, cache: KVCache, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (``tokens[B]``); logits ``[B, vocab]``."""
        start = cache.length
        self._check_room(cache, 1)
        cache.valid[:, start] = True
        positions = cache.positions[:, None]
        cache.positions = cache.positions + 1
        for row, new in zip(cache.ids, tokens.tolist()):
            row.append(new)
        attn = cache.valid[:, None, None, :start + 1]
        return self._forward(cache, tokens[:, None], positions, attn, start)

    def _check_room(self, cache: KVCache, t: int) -> None:
        if cache.length + t > cache.capacity:
            raise ValueError(f"the KV cache holds {cache.capacity} columns; {cache.length + t} needed")

    def _forward(self, cache: KVCache, ids, positions, attn, start: int) -> torch.Tensor:
        end = start + ids.shape[1]
        x = self.embed[ids]
        cos, sin = self.cos[positions][:, None], self.sin[positions][:, None]  # [B, 1, T, D]
        for i, layer in enumerate(self.layers):
            x = x + self._attention(i, layer, self._rms(x, layer.ln1), cos, sin, cache, attn, start, end)
            gate, up = F.linear(self._rms(x, layer.ln2), layer.wgu).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer.wdown).float()
        cache.length = end
        return F.linear(self._rms(x[:, -1], self.norm), self.head).float()

    def _attention(self, i: int, layer: Layer, h, cos, sin, cache: KVCache, attn, start: int, end: int):
        b, t, _ = h.shape
        nq, nkv, d = self.n_heads * self.head_dim, self.kv_heads * self.head_dim, self.head_dim
        qkv = F.linear(h, layer.wqkv, layer.bqkv)
        q = qkv[..., :nq].view(b, t, self.n_heads, d).transpose(1, 2)
        k = qkv[..., nq:nq + nkv].view(b, t, self.kv_heads, d).transpose(1, 2)
        v = qkv[..., nq + nkv:].view(b, t, self.kv_heads, d).transpose(1, 2)
        q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        cache.k[i, :, :, start:end] = k
        cache.v[i, :, :, start:end] = v
        out = F.scaled_dot_product_attention(q, cache.k[i, :, :, :end], cache.v[i, :, :, :end],
                                             attn_mask=attn, enable_gqa=self.kv_heads != self.n_heads)
        return F.linear(out.transpose(1, 2).reshape(b, t, nq), layer.wo).float()

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """RMSNorm in fp32, cast to the weights' dtype for the next matrix product."""
        return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight).to(self.dtype)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
