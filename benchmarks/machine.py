"""What the machine can do: CPU flags, measured read bandwidth, the bandwidth bound of a model.

Decoding one token at batch 1 reads every weight once, so tokens/s can never exceed
``read bandwidth ÷ weight bytes``. The benchmarks report that bound next to what an
engine reaches, and llama.cpp's rate on the same GGUF when ``llama-cpp-python`` is
installed, so "fast" is judged against the hardware, not against ourselves.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from pathlib import Path

BF16_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1, "int4": 0.5}


def cpu_info() -> dict:
    """The CPU model and which of the flags that decide bf16/int8 speed it has (Linux /proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    import torch

    return {"model": model, "cores": os.cpu_count(), "flags": {f: f in flags for f in BF16_FLAGS},
            "torch_threads": torch.get_num_threads(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


@functools.lru_cache(maxsize=1)
def read_bandwidth_gbs(megabytes: int = 1024, repeats: int = 5) -> float:
    """Best-of-``repeats`` GB/s of summing a buffer much larger than the caches (all torch threads)."""
    import torch

    buf = torch.ones(megabytes * 2**20 // 4, dtype=torch.float32)
    buf.sum()  # touch every page first
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        buf.sum()
        best = min(best, time.perf_counter() - start)
    return buf.numel() * 4 / best / 1e9


def bandwidth_bound(parameters: int, dtype: str, gbs: float | None = None) -> dict:
    """Tokens/s at batch 1 if decoding did nothing but read each weight once."""
    weight_bytes = parameters * DTYPE_BYTES[dtype]
    gbs = read_bandwidth_gbs() if gbs is None else gbs
    return {"dtype": dtype, "weight_mb": weight_bytes / 1e6, "read_gbs": gbs,
            "bound_tokens_per_s": gbs * 1e9 / weight_bytes}


def machine_summary() -> dict:
    """Stamped into every result file."""
    return {"cpu": cpu_info(), "machine": platform.machine(), "python": platform.python_version()}


def llamacpp_tokens_per_s(prompt: str, tokens: int = 64, threads: int | None = None) -> float | None:
    """llama.cpp's batch-1 greedy rate on the embedded GGUF (None when llama-cpp-python is not installed)."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    from reflectnb.backends.embedded import gguf_path

    llm = Llama(model_path=str(gguf_path()), n_ctx=1024, n_threads=threads or os.cpu_count(), verbose=False)
    messages = [{"role": "user", "content": prompt}]
    llm.create_chat_completion(messages, max_tokens=4, temperature=0.0)  # warm-up
    start = time.perf_counter()
    out = llm.create_chat_completion(messages, max_tokens=tokens, temperature=0.0)
    seconds = time.perf_counter() - start
    return out["usage"]["completion_tokens"] / seconds
