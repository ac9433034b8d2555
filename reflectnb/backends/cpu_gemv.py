"""Matrix-vector products for small batches on an AVX-512 CPU: int8 or bf16 weights, fp32 activations.

Why: at batch 1 a decode step is a chain of matrix-vector products, and on this
machine torch's kernels read the weights far below the memory bandwidth
(oneDNN's bf16 GEMV ~8 GB/s, ``_weight_int8pack_mm`` ~6 GB/s, measured in
docs/engine.md). These loops read weights once per call, widen them to fp32 in
registers and accumulate in fp32 (~11-12 GB/s on one core), so int8 weights
cost half the time of bf16 ones. ``y[m, n] = x[m, k] @ w[n, k].T (* scale[n])``.

How: the C source below is compiled once with the system C compiler
(``cc -O3 -march=native``, under a second) into ``cache_dir()/kernels`` and
loaded with ``ctypes``; no torch headers, no build step at install time.
Where it cannot be built (no compiler, no AVX-512, not x86-64) :func:`kernels`
returns ``None`` and says why in :func:`unavailable_reason`; the engine then
uses torch's own kernels. Single-threaded on purpose: on a shared 2-core machine
a second thread waits on descheduled peers at every call (docs/engine.md).

Contract: ``x`` fp32 ``[m, k]`` contiguous, ``w`` int8 / bf16 ``[n, k]`` contiguous,
``scale`` fp32 ``[n]`` (int8 only); returns a new fp32 ``[m, n]``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

SOURCE = r"""
#include <immintrin.h>
#include <stdint.h>

static inline __m512 load_bf16(const uint16_t *w) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)w)), 16));
}
static inline __m512 load_i8(const int8_t *w) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)w)));
}
static inline float widen_bf16(uint16_t v) { union { uint32_t u; float f; } c; c.u = (uint32_t)v << 16; return c.f; }

/* One weight row against NB (1-4) activation rows; LOAD widens 16 weights, WIDEN one.
   Every activation row sums in the same order (two accumulators over alternate 16-wide blocks,
   then the tail), so a row's result does not depend on how many rows share the call. */
#define ROWS(NAME, T, LOAD, WIDEN)                                                              \
static inline __attribute__((always_inline)) void NAME##_nb(                                    \
        const float *x, const T *wr, float *y, long n, long k, long r, float s, const int NB) { \
    __m512 e[4], o[4];                                                                          \
    for (int j = 0; j < NB; j++) { e[j] = _mm512_setzero_ps(); o[j] = e[j]; }                   \
    long i = 0;                                                                                 \
    for (; i + 32 <= k; i += 32) {                                                              \
        __m512 v0 = LOAD(wr + i), v1 = LOAD(wr + i + 16);                                       \
        for (int j = 0; j < NB; j++) {                                                          \
            e[j] = _mm512_fmadd_ps(_mm512_loadu_ps(x + j * k + i), v0, e[j]);                   \
            o[j] = _mm512_fmadd_ps(_mm512_loadu_ps(x + j * k + i + 16), v1, o[j]);              \
        }                                                                                       \
    }                                                                                           \
    if (i + 16 <= k) {                                                                          \
        __m512 v0 = LOAD(wr + i);                                                               \
        for (int j = 0; j < NB; j++) e[j] = _mm512_fmadd_ps(_mm512_loadu_ps(x + j * k + i), v0, e[j]); \
        i += 16;                                                                                \
    }                                                                                           \
    for (int j = 0; j < NB; j++) {                                                              \
        float acc = _mm512_reduce_add_ps(_mm512_add_ps(e[j], o[j]));                            \
        for (long t = i; t < k; t++) acc += x[j * k + t] * WIDEN(wr[t]);                        \
        y[j * n + r] = acc * s;                                                                 \
    }                                                                                           \
}                                                                                               \
static void NAME(const float *x, const T *w, float *y, long n, long k, long m, long r, float s) { \
    const T *wr = w + r * k;                                                                    \
    long b = 0;                                                                                 \
    for (; b + 4 <= m; b += 4) NAME##_nb(x + b * k, wr, y + b * n, n, k, r, s, 4);              \
    switch (m - b) {                                                                            \
        case 3: NAME##_nb(x + b * k, wr, y + b * n, n, k, r, s, 3); break;                      \
        case 2: NAME##_nb(x + b * k, wr, y + b * n, n, k, r, s, 2); break;                      \
        case 1: NAME##_nb(x + b * k, wr, y + b * n, n, k, r, s, 1); break;                      \
    }                                                                                           \
}

ROWS(rows_i8, int8_t, load_i8, (float))
ROWS(rows_bf16, uint16_t, load_bf16, widen_bf16)

void gemv_i8(const float *x, const int8_t *w, const float *scale, float *y, long n, long k, long m) {
    for (long r = 0; r < n; r++) rows_i8(x, w, y, n, k, m, r, scale[r]);
}
void gemv_bf16(const float *x, const uint16_t *w, float *y, long n, long k, long m) {
    for (long r = 0; r < n; r++) rows_bf16(x, w, y, n, k, m, r, 1.0f);
}
"""

FLAGS = ["-O3", "-march=native", "-shared", "-fPIC"]
_state: dict = {}


class Kernels:
    """The loaded library; ``int8(x, w, scale)`` and ``bf16(x, w)`` per the module contract."""

    def __init__(self, lib: ctypes.CDLL):
        p, n = ctypes.c_void_p, ctypes.c_long
        lib.gemv_i8.argtypes = [p, p, p, p, n, n, n]
        lib.gemv_bf16.argtypes = [p, p, p, n, n, n]
        lib.gemv_i8.restype = lib.gemv_bf16.restype = None
        self._i8, self._bf16 = lib.gemv_i8, lib.gemv_bf16

    def int8(self, x: torch.Tensor, w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        m, k = x.shape
        y = torch.empty(m, w.shape[0], dtype=torch.float32)
        self._i8(x.data_ptr(), w.data_ptr(), scale.data_ptr(), y.data_ptr(), w.shape[0], k, m)
        return y

    def bf16(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        m, k = x.shape
        y = torch.empty(m, w.shape[0], dtype=torch.float32)
        self._bf16(x.data_ptr(), w.data_ptr(), y.data_ptr(), w.shape[0], k, m)
        return y


def kernels() -> Kernels | None:
    """The compiled kernels, built on first use; ``None`` where they cannot be (see :func:`unavailable_reason`)."""
    return load_once(_state, lambda: Kernels(ctypes.CDLL(str(build(SOURCE, "gemv")))))


def load_once(state: dict, make):
    """``state["lib"]``: ``make()`` on first call, or ``None`` with the reason in ``state["reason"]`` (shared with
    ``cpu_decode``)."""
    if "lib" not in state:
        try:
            state["lib"], state["reason"] = make(), None
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            state["lib"], state["reason"] = None, str(exc)
    return state["lib"]


def unavailable_reason() -> str | None:
    """Why :func:`kernels` is ``None`` (``None`` when they are available)."""
    kernels()
    return _state["reason"]


def build(source: str, stem: str, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile ``source`` once into ``cache_dir()/kernels/<stem>-<hash>.so`` (shared with ``cpu_decode``).

    Raises ``RuntimeError`` saying why where it cannot be built.
    """
    if os.environ.get("REFLECTNB_NO_KERNELS", "") not in ("", "0"):
        raise RuntimeError("REFLECTNB_NO_KERNELS is set")
    if platform.machine() not in ("x86_64", "AMD64") or "avx512f" not in _cpu_flags():
        raise RuntimeError("the CPU has no AVX-512 (avx512f); torch's kernels are used instead")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler found (install gcc, e.g. `apt-get install gcc`); torch's kernels are "
                           "used instead")
    from reflectnb.config import cache_dir

    flags = [*FLAGS, *extra_flags]
    key = hashlib.sha256((source + " ".join(flags) + _cpu_flags()).encode()).hexdigest()[:16]
    target = cache_dir() / "kernels" / f"{stem}-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src, out = Path(tmp) / f"{stem}.c", Path(tmp) / f"{stem}.so"
        src.write_text(source)
        done = subprocess.run([compiler, *flags, str(src), "-o", str(out)], capture_output=True, text=True,
                              check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"compiling the CPU kernels failed: {done.stderr.strip()[:500]}")
        os.replace(out, target)  # atomic: parallel first uses never load a half-written library
    return target


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return ""


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-row int8: ``w ≈ q * scale[:, None]``, ``scale`` fp32."""
    w = w.float()
    scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale.contiguous()
