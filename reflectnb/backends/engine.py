"""A minimal Llama decode step in plain torch, for the local backend's ``fast`` engine.

Why: ``model.generate`` spends most of a CPU step outside the matrix products
(per-step cache bookkeeping, mask building, many small fp32 ops), and fp32
weights read 538 MB per token of the embedded model. This module keeps only
what a decode step needs (nanoGPT style):

* weights copied once from the loaded ``LlamaForCausalLM``: q/k/v fused into one
  matrix, gate/up into another, in ``dtype``: ``torch.int8`` (weight-only, one
  fp32 scale per output row; a quarter of fp32's bytes), ``torch.bfloat16`` or
  ``torch.float32`` (the same math as fp32 ``generate``, token for token);
* small products (batch x new tokens <= ``SMALL_M``: every decode step up to a
  batch of 8) run on ``cpu_gemv``'s AVX-512 loops, which read int8 / bf16
  weights at about the machine's single-core bandwidth; larger ones (prefill)
  on torch's kernels, in bf16 for the int8 and bf16 engines (the int8 engine
  keeps a bf16 copy for them). Without the loops (no compiler, no AVX-512)
  every product runs on torch (int8 dequantized per call: slower, same role);
* the residual stream, the RMS norms and RoPE in fp32 (closer to fp32
  ``generate`` than transformers' all-bf16 path); attention in the C step's own
  loop on fp32 queries where the C step is built (``cpu_decode.attention``, also
  for prefill), else torch's SDPA (the fp32 engine: exact);
* a static, pre-allocated KV cache (:class:`KVCache`) and RoPE tables built once
  from the model's own rotary module (so any rope scaling it has is kept);
* left-padded batches: one shared column per step, a key-validity mask and
  positions per row.

Contract
--------
``prefill(cache, ids, mask)`` feeds ``ids[B, T]`` (left-padded; mask 1 = real
token) after whatever the cache already holds and returns the fp32 logits of
the last column ``[B, vocab]`` (the products skip the padding; one token per
row runs as a decode step); ``step(cache, token[B])`` feeds one token per row.
The cache's ``length`` counts columns filled. Nothing here samples or stops:
``engine_loop.py`` does that, with transformers' own processors and warpers.

Non-goals: hidden-state edits (SRGen keeps the transformers model), beams,
architectures other than Llama-style decoders (``supports`` says which).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SUPPORTED_TYPES = ("llama", "mistral", "qwen2")
DTYPES = (torch.float32, torch.bfloat16, torch.int8)
SMALL_M = 8  # rows (batch x new tokens) up to which a product runs on cpu_gemv's loops (measured)
C_STEP_ROWS = 32  # batch up to which a decode step runs in C (cpu_decode); it beat torch's GEMM at 16 and 32


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


class Weight:
    """One projection, called on fp32 ``x[..., k]``: ``cpu_gemv``'s loops for small products, else torch.

    ``dense`` is the fp32 or bf16 matrix torch multiplies (``None`` for int8 without
    the loops); ``q`` / ``scale`` hold the int8 weights of an int8 engine.
    """

    def __init__(self, w: torch.Tensor, dtype: torch.dtype, kernels):
        self.kernels, self.dtype = kernels, dtype
        self.q = self.scale = None
        if dtype == torch.int8:
            from reflectnb.backends.cpu_gemv import quantize_int8

            self.q, self.scale = quantize_int8(w)
            self.dense = w.to(torch.bfloat16).contiguous() if kernels is not None else None
        else:
            self.dense = w.to(dtype).contiguous()
        self.out_features = w.shape[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x[..., k]`` fp32 -> ``x @ w.T`` fp32."""
        lead = x.shape[:-1]
        m = x.numel() // x.shape[-1]
        if self.kernels is not None and m <= SMALL_M:
            x2 = x.reshape(m, x.shape[-1]).contiguous()
            y = self.kernels.int8(x2, self.q, self.scale) if self.q is not None else self.kernels.bf16(x2, self.dense)
            return y.view(*lead, self.out_features)
        if self.dense is None:  # int8 without the loops: dequantize (correct, slower)
            return F.linear(x.to(torch.bfloat16), (self.q.to(torch.bfloat16) * self.scale[:, None].to(torch.bfloat16))
                            ).float()
        return F.linear(x.to(self.dense.dtype), self.dense).float()


@dataclass
class Layer:
    wqkv: Weight
    bqkv: torch.Tensor | None
    wo: Weight
    wgu: Weight
    wdown: Weight
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
        self.all_valid = True  # no padding column so far: decode steps need no attention mask
        self.ids: list[list[int]] = [[] for _ in range(batch)]  # for prefix reuse (batch 1)

    @property
    def batch(self) -> int:
        return self.k.shape[1]

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def take_rows(self, index: torch.Tensor, capacity: int | None = None) -> KVCache:
        """A new cache whose row ``i`` is a copy of this cache's row ``index[i]``, ``capacity`` columns (default: as
        many as this one; at least ``length``). For a prompt prefix prefilled once for a whole batch."""
        capacity = self.capacity if capacity is None else max(capacity, self.length)
        out = KVCache.__new__(KVCache)
        out.k, out.v = self.k[:, index, :, :capacity], self.v[:, index, :, :capacity]  # advanced indexing copies
        if out.k.shape[3] < capacity:  # room beyond this cache's own
            grow = (*out.k.shape[:3], capacity - out.k.shape[3], out.k.shape[4])
            out.k = torch.cat([out.k, out.k.new_empty(grow)], 3)
            out.v = torch.cat([out.v, out.v.new_empty(grow)], 3)
        out.valid = torch.zeros(len(index), capacity, dtype=torch.bool)
        out.valid[:, :self.length] = self.valid[index, :self.length]
        out.positions = self.positions[index]
        out.length, out.all_valid = self.length, self.all_valid
        out.ids = [list(self.ids[int(i)]) for i in index]
        return out

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
        if dtype not in DTYPES:
            raise ValueError(f"the fast engine computes in {', '.join(str(d) for d in DTYPES)}; got {dtype}")
        cfg = model.config
        self.dtype = dtype
        self.cache_dtype = torch.float32 if dtype == torch.float32 else torch.bfloat16
        self.kernels = _kernels() if dtype != torch.float32 else None  # fp32 stays on torch: exact
        self.n_heads = cfg.num_attention_heads
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.max_positions = cfg.max_position_embeddings
        base = model.get_decoder()
        with torch.no_grad():
            self.embed = base.embed_tokens.weight.detach().float()
            self.norm = base.norm.weight.detach().float().clone()
            self.head = self._weight(model.get_output_embeddings().weight.detach())
            self.layers = [self._layer(block) for block in base.layers]
            self.cos, self.sin = self._rope_tables(base, self.max_positions)
        self.decoder = _decoder(self)  # the whole decode step in C where it builds (cpu_decode), else torch

    @property
    def kernel(self) -> str:
        """What runs a decode step: ``"cpu_decode"`` (one C call), ``"cpu_gemv"`` (its products) or ``"torch"``."""
        if self.decoder is not None:
            return "cpu_decode"
        return "cpu_gemv" if self.kernels is not None else "torch"

    def _weight(self, w: torch.Tensor) -> Weight:
        return Weight(w.detach(), self.dtype, self.kernels)

    def _layer(self, block) -> Layer:
        att, mlp = block.self_attn, block.mlp
        wqkv = self._fuse([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])
        bias = [att.q_proj.bias, att.k_proj.bias, att.v_proj.bias]
        bqkv = torch.cat(bias).float() if all(b is not None for b in bias) else None
        return Layer(wqkv=self._weight(wqkv), bqkv=bqkv, wo=self._weight(att.o_proj.weight),
                     wgu=self._weight(self._fuse([mlp.gate_proj.weight, mlp.up_proj.weight])),
                     wdown=self._weight(mlp.down_proj.weight),
                     ln1=block.input_layernorm.weight.float().clone(),
                     ln2=block.post_attention_layernorm.weight.float().clone())

    def _fuse(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Stack ``parts`` row-wise, already in the engine's dtype (bf16 / fp32).

        Why: ``torch.cat`` in fp32 then ``.to(bf16)`` writes (and page-faults) an
        fp32 copy that is thrown away; copying each part into one bf16 tensor
        writes a third of the bytes. The values are the same (rounding is per
        element). int8 quantizes from the fp32 rows, so it keeps ``torch.cat``.
        """
        if self.dtype == torch.int8:
            return torch.cat(parts)
        out = torch.empty(sum(p.shape[0] for p in parts), parts[0].shape[1], dtype=self.dtype)
        row = 0
        for part in parts:
            out[row:row + part.shape[0]].copy_(part)
            row += part.shape[0]
        return out

    def _rope_tables(self, base, n: int):
        """cos/sin ``[n, head_dim]`` fp32 from the model's own rotary module (scaling included)."""
        positions = torch.arange(n)[None, :]
        probe = torch.zeros(1, dtype=torch.float32)
        cos, sin = base.rotary_emb(probe, positions)
        return cos[0].float().contiguous(), sin[0].float().contiguous()

    # -- cache ---------------------------------------------------------------------------------
    def new_cache(self, batch: int, capacity: int) -> KVCache:
        capacity = min(capacity, self.max_positions)
        return KVCache(len(self.layers), batch, self.kv_heads, capacity, self.head_dim, self.cache_dtype)

    # -- forward -------------------------------------------------------------------------------
    @torch.inference_mode()
    def prefill(self, cache: KVCache, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Feed ``ids[B, T]`` after the cache's columns; logits of the last column ``[B, vocab]``.

        One token per row, none of it padding, is a decode step, and runs as one
        (the C step where it applies). Why: prefix reuse often leaves a single
        prompt token to feed (a debate's agents sharing one prompt, a round that
        only appends a turn's end), and the torch path's ~25 ops per layer cost
        about two C steps.
        """
        mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
        full = bool(mask.all())
        if ids.shape[1] == 1 and full:
            return self._step(cache, ids[:, 0], None)
        if not bool(mask.any(-1).all()):
            raise ValueError("every row of a prefill needs at least one real token (an empty prompt has no logits)")
        start, t = cache.length, ids.shape[1]
        self._check_room(cache, t)
        cache.valid[:, start:start + t] = mask
        cache.all_valid = cache.all_valid and full
        positions = cache.positions[:, None] + mask.long().cumsum(-1) - 1
        positions = positions.clamp(min=0)
        cache.positions = positions[:, -1] + 1
        attn = None if self.decoder is not None else _prefill_mask(cache, start, t)  # the C attention needs none
        for row, new in zip(cache.ids, ids.tolist()):
            row.extend(new)
        real = None if full else mask.flatten().nonzero().flatten()
        return self._forward(cache, ids, positions, attn, start, real)

    @torch.inference_mode()
    def step(self, cache: KVCache, tokens: torch.Tensor, threads: int | None = None) -> torch.Tensor:
        """Feed one token per row (``tokens[B]``); logits ``[B, vocab]``.

        ``threads``: the most threads the C step may use (default: torch's count now).
        """
        return self._step(cache, tokens, threads)

    def _step(self, cache: KVCache, tokens: torch.Tensor, threads: int | None) -> torch.Tensor:
        start = cache.length
        self._check_room(cache, 1)
        cache.valid[:, start] = True
        positions = cache.positions[:, None]
        cache.positions = cache.positions + 1
        for row, new in zip(cache.ids, tokens.tolist()):
            row.append(new)
        if self.decoder is not None and tokens.shape[0] <= C_STEP_ROWS:
            logits = self.decoder.step(self.embed[tokens], positions[:, 0], cache, start, threads)
            cache.length = start + 1
            return logits
        attn = cache.valid[:, None, None, :start + 1]
        if cache.all_valid:
            attn = None  # SDPA without a mask is faster, and nothing is masked
        return self._forward(cache, tokens[:, None], positions, attn, start)

    def _check_room(self, cache: KVCache, t: int) -> None:
        if cache.length + t > cache.capacity:
            raise ValueError(f"the KV cache holds {cache.capacity} columns; {cache.length + t} needed")

    def _forward(self, cache: KVCache, ids, positions, attn, start: int, real: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """The layers over ``ids[B, T]``; logits of each row's last real token.

        ``real``: the flat indices of the real tokens when some are padding. The
        residual stream and the products then hold those rows only, and only
        attention works on the padded ``[B, T]`` layout (its mask hides the
        padding). Why: a batch's prompts differ in length, and its left padding
        was a fifth to a quarter of the tokens an evaluation's batches fed.
        """
        b, t = ids.shape
        end = start + t
        x = self.embed[ids] if real is None else self.embed[ids.flatten()[real]]
        cos, sin = self.cos[positions][:, None], self.sin[positions][:, None]  # [B, 1, T, D]
        for i, layer in enumerate(self.layers):
            x = x + self._attention(i, layer, self._rms(x, layer.ln1), cos, sin, cache, attn, start, (b, t), real)
            gate, up = layer.wgu(self._rms(x, layer.ln2)).chunk(2, dim=-1)
            x = x + layer.wdown(F.silu(gate) * up)
        cache.length = end
        # each row's last real token (under left padding its last column), the row's last in the packed order
        last = x[:, -1] if real is None else x[(real // t).bincount(minlength=b).cumsum(0) - 1]
        return self.head(self._rms(last, self.norm))

    def _attention(self, i: int, layer: Layer, h, cos, sin, cache: KVCache, attn, start: int, shape: tuple[int, int],
                   real: torch.Tensor | None):
        (b, t), end = shape, start + shape[1]
        nq, nkv, d = self.n_heads * self.head_dim, self.kv_heads * self.head_dim, self.head_dim
        qkv = layer.wqkv(h)
        if layer.bqkv is not None:
            qkv = qkv + layer.bqkv
        if real is not None:  # the padded layout for attention; padding's keys and values are zeros (masked)
            qkv = qkv.new_zeros(b * t, qkv.shape[-1]).index_copy_(0, real, qkv).view(b, t, -1)
        # q and k rotated together: one RoPE over n_heads + kv_heads heads
        qk = _rope(qkv[..., :nq + nkv].view(b, t, self.n_heads + self.kv_heads, d).transpose(1, 2), cos, sin)
        v = qkv[..., nq + nkv:].view(b, t, self.kv_heads, d).transpose(1, 2)
        cache.k[i, :, :, start:end] = qk[:, self.n_heads:]
        cache.v[i, :, :, start:end] = v
        if self.decoder is not None:  # the C step's attention, per query, on the fp32 queries (see Decoder.attend)
            out = self.decoder.attend(qk[:, :self.n_heads].transpose(1, 2), cache, i, start)
        else:
            q = qk[:, :self.n_heads].to(self.cache_dtype)
            out = F.scaled_dot_product_attention(q, cache.k[i, :, :, :end], cache.v[i, :, :, :end],
                                                 attn_mask=attn, enable_gqa=self.kv_heads != self.n_heads)
            out = out.transpose(1, 2).reshape(b, t, nq).float()
        return layer.wo(out if real is None else out.reshape(b * t, nq)[real])

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """RMSNorm in fp32 (the same arithmetic as transformers' ``LlamaRMSNorm`` in fp32)."""
        return F.rms_norm(x, (x.shape[-1],), weight, self.eps)


ENV_DTYPE = "REFLECTNB_ENGINE_DTYPE"
_NAMES = {"int8": torch.int8, "bfloat16": torch.bfloat16, "float32": torch.float32}


def default_dtype(native_bf16: bool) -> torch.dtype:
    """The fast engine's weight dtype when none is asked for (``REFLECTNB_ENGINE_DTYPE`` overrides it).

    bf16 where the CPU multiplies it natively, else fp32 (emulated bf16 is slower
    than fp32). int8 only when asked: on ``cpu_gemv``'s loops it is ~10 % faster
    than bf16 at batch 1 but agrees with fp32 greedy on far fewer tokens (docs/engine.md).
    """
    import os

    name = os.environ.get(ENV_DTYPE, "").strip()
    if name:
        if name not in _NAMES:
            raise ValueError(f"{ENV_DTYPE} must be one of {', '.join(_NAMES)}; got {name!r}")
        return _NAMES[name]
    return torch.bfloat16 if native_bf16 else torch.float32


def _kernels():
    from reflectnb.backends.cpu_gemv import kernels

    return kernels()


def _decoder(engine):
    from reflectnb.backends.cpu_decode import decoder

    return decoder(engine)


def _prefill_mask(cache: KVCache, start: int, t: int) -> torch.Tensor:
    """SDPA's mask for ``t`` new columns from ``start``: causal, valid keys only ``[B, 1, t, start + t]``."""
    keys = cache.valid[:, None, None, :start + t]
    causal = torch.ones(t, start + t, dtype=torch.bool).tril(start)
    attn = keys & causal[None, None]
    # a padding query attends to itself, so no row of the softmax is empty (no NaN)
    attn[:, :, torch.arange(t), start + torch.arange(t)] = True
    return attn


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
