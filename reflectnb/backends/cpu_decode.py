"""A whole Llama decode step in one C call, for the fast engine's bf16 and int8 weights.

Why: with ``cpu_gemv``'s loops the matrix products of a decode step read the
weights near one core's bandwidth, but the step still dispatched ~25 small torch
ops per layer from Python (norms, RoPE, cache writes, attention, SiLU, residual
adds: ~8 ms a token on this machine, a third of the step), and one core reads
only about half of what the machine's memory delivers. Here the step from the
embedded tokens to the logits runs in C, inside one OpenMP parallel region on
one thread or ``torch.get_num_threads()``, whichever :class:`ThreadChooser`
measures faster on this machine now: each product's output rows are split
between the threads, attention is split by (row, head), and the few elementwise
parts run on one thread between barriers (8 per layer).

Arithmetic (the same as ``engine.FastLlama``'s torch path, up to rounding and summation order):
fp32 residual stream, RMS norms, RoPE, SiLU and softmax; keys and values stored
in the cache as bf16 (round to nearest even, as ``.to(bf16)``), queries kept in
fp32 (the torch path rounds them to bf16 for SDPA). Products: int8 weights on
``cpu_gemv``'s loops (widened to fp32 in registers, fp32 activations); bf16
weights on the AVX512-BF16 dot product (``vdpbf16ps``) with the activations
rounded to bf16 first, as torch's bf16 ``F.linear`` (the prefill) rounds them.
Why: widening each bf16 weight to fp32 was what bounded a batched step (a batch
of 8 cost ~5 batch-1 steps); the instruction multiplies bf16 pairs as they lie,
twice the products per instruction, so a batch of 16 now costs ~3 batch-1
steps (docs/engine.md, round 4). Each (weight row, activation row) pair sums in
one order whatever the batch or thread count, so a row's logits do not depend
on either (tested). CPUs with AVX-512F but not AVX512-BF16 get the same pairs
widened to fp32 with two FMAs (bit-identical here on the AMD EPYC).

Built like ``cpu_gemv`` (the same ``build``; its loops are prepended to the
source), with ``-fopenmp``; the OpenMP runtime is the one torch already loaded
(``libgomp.so.1``), so there is one thread pool. Where it cannot be built the
engine keeps its torch path and :func:`unavailable_reason` says why.

Contract: ``Decoder(engine).step(x, positions, cache, start, most)`` with ``x`` the fp32
embeddings ``[B, hidden]`` (B <= ``engine.C_STEP_ROWS``; overwritten), the cache's
column ``start`` free; returns fp32 logits ``[B, vocab]``. The caller does the
cache bookkeeping (``valid``, ``positions``, ``length``) exactly as for the
torch path. :func:`attention` (``Decoder.attend``) runs the same ``attend`` for
every query of a prefill, causal, which the engine's torch path calls instead of
SDPA where the C step is built.
"""

from __future__ import annotations

import collections
import ctypes
import time

import torch

from reflectnb.backends import cpu_gemv

DECODE_SOURCE = r"""
#include <math.h>
#include <omp.h>

/* Per-layer pointer slots (an int64 table [layers, N_SLOTS] built in Python). */
enum { W_QKV, S_QKV, B_QKV, W_O, S_O, W_GU, S_GU, W_DOWN, S_DOWN, LN1, LN2, N_SLOTS };
/* Sizes: an int64 array in this order. */
enum { D_LAYERS, D_HIDDEN, D_HEADS, D_KV_HEADS, D_HEAD_DIM, D_INTER, D_VOCAB, D_INT8, D_CAP, N_DIMS };

static inline uint16_t to_bf16(float f) {  /* round to nearest even, NaN kept NaN (as torch) */
    union { float f; uint32_t u; } c; c.f = f;
    if ((c.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((c.u >> 16) | 0x40);
    c.u += 0x7fffu + ((c.u >> 16) & 1u);
    return (uint16_t)(c.u >> 16);
}

/* bf16 products: x rounded to bf16 (``xb``, as torch's bf16 F.linear rounds it) against bf16 weight rows on the
   AVX512-BF16 dot product (vdpbf16ps: pairs of bf16 products summed into fp32 lanes), NR weight rows (1-2) x NB
   activation rows (1-4) per tile. Every (weight row, activation row) pair sums its 32-wide chunks in the same order
   and reduces the same way whatever the tile, so a row's result depends neither on the batch nor on the threads. */
/* dot2(acc, a, b): acc + a[2i] b[2i] + a[2i+1] b[2i+1] per fp32 lane, a and b 32 bf16 each; pack16(x): 16 fp32 to
   bf16, round to nearest even. One instruction each with AVX512-BF16; without it (AVX-512F CPUs before it) the
   same pairs widened to fp32 with two FMAs, and the rounding done by hand (NaN kept NaN). */
#ifdef __AVX512BF16__
static inline __m512 dot2(__m512 acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}
static inline __m256i pack16(__m512 x) { return (__m256i)_mm512_cvtneps_pbh(x); }
#else
static inline __m512 dot2(__m512 acc, __m512i a, __m512i b) {
    __m512i high = _mm512_set1_epi32((int)0xffff0000);
    __m512 a_even = _mm512_castsi512_ps(_mm512_slli_epi32(a, 16)), b_even = _mm512_castsi512_ps(_mm512_slli_epi32(b, 16));
    __m512 a_odd = _mm512_castsi512_ps(_mm512_and_si512(a, high)), b_odd = _mm512_castsi512_ps(_mm512_and_si512(b, high));
    return _mm512_fmadd_ps(a_even, b_even, _mm512_fmadd_ps(a_odd, b_odd, acc));  /* odd first, as Intel specifies */
}
static inline __m256i pack16(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i even = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), even));
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
}
#endif

enum { PREFETCH_ROWS = 8 };  /* measured: 4, 8 and 16 within noise; 2 (the old reach of 2-row tiles) slower */

static inline __attribute__((always_inline)) void dot_tile(const uint16_t *xb, const uint16_t *w, float *y, long n,
                                                           long k, long r, long b, const int NR, const int NB) {
    __m512 acc[2][4];
    for (int q = 0; q < NR; q++) for (int j = 0; j < NB; j++) acc[q][j] = _mm512_setzero_ps();
    const uint16_t *wr = w + r * k, *xr = xb + b * k;
    long i = 0;
    for (; i + 32 <= k; i += 32) {
        __m512i wv[2];
        for (int q = 0; q < NR; q++) wv[q] = _mm512_loadu_si512(wr + q * k + i);
        /* ask for the rows PREFETCH_ROWS ahead (never faults): the hardware prefetcher alone runs short of them,
           on one stream as on two (round 6: 1.04-1.19x a one-thread step at batch 1-8, the same bits) */
        for (int q = 0; q < NR; q++) _mm_prefetch((const char *)(wr + (PREFETCH_ROWS + q) * k + i), _MM_HINT_T0);
        for (int j = 0; j < NB; j++) {
            __m512i xv = _mm512_loadu_si512(xr + j * k + i);
            for (int q = 0; q < NR; q++) acc[q][j] = dot2(acc[q][j], xv, wv[q]);
        }
    }
    if (i < k) {  /* the tail: masked loads read zeros past the row */
        __mmask32 tail = (__mmask32)((1u << (k - i)) - 1u);
        __m512i wv[2];
        for (int q = 0; q < NR; q++) wv[q] = _mm512_maskz_loadu_epi16(tail, wr + q * k + i);
        for (int j = 0; j < NB; j++) {
            __m512i xv = _mm512_maskz_loadu_epi16(tail, xr + j * k + i);
            for (int q = 0; q < NR; q++) acc[q][j] = dot2(acc[q][j], xv, wv[q]);
        }
    }
    for (int q = 0; q < NR; q++)
        for (int j = 0; j < NB; j++) y[(b + j) * n + r + q] = _mm512_reduce_add_ps(acc[q][j]);
}

#define DOT_NB(NR) switch (nb) { case 4: dot_tile(xb, w, y, n, k, r, b, NR, 4); break;                         \
                                 case 3: dot_tile(xb, w, y, n, k, r, b, NR, 3); break;                         \
                                 case 2: dot_tile(xb, w, y, n, k, r, b, NR, 2); break;                         \
                                 default: dot_tile(xb, w, y, n, k, r, b, NR, 1); }

/* y[:, r:r+nr] = xb @ w[r:r+nr].T for all m rows, nr <= 2. */
static void dot_rows(const uint16_t *xb, const uint16_t *w, float *y, long n, long k, long m, long r, long nr) {
    for (long b = 0; b < m; b += 4) {
        int nb = m - b < 4 ? (int)(m - b) : 4;
        if (nr == 2) { DOT_NB(2) } else { DOT_NB(1) }
    }
}

/* Weight rows per tile: up to 4 activation rows one weight row streams best from memory; above, two rows (with
   software prefetch) re-use each activation load: at 8 rows 1.33x faster than one, at 5 even, at 4 0.75x
   (measured on this machine, the same bits either way: docs/engine.md, round 5). */
static inline long tile_rows(long m) { return m > 4 ? 2 : 1; }

/* Round n fp32 values to bf16 (round to nearest even, as .to(torch.bfloat16)). */
static void round_bf16(const float *x, uint16_t *out, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), pack16(_mm512_loadu_ps(x + i)));
    for (; i < n; i++) out[i] = to_bf16(x[i]);
}

/* y[:, r] for the rows r this thread owns (static split: the same rows in every call with the same n); int8
   weights read the fp32 x, bf16 weights its bf16 copy xb. */
static void product(const float *x, const uint16_t *xb, const void *w, const float *s, float *y, long n, long k,
                    long m, int i8) {
    if (i8) {
        #pragma omp for schedule(static)
        for (long r = 0; r < n; r++) rows_i8(x, (const int8_t *)w, y, n, k, m, r, s[r]);
        return;
    }
    const long nr = tile_rows(m);
    #pragma omp for schedule(static)
    for (long r = 0; r < n; r += nr) dot_rows(xb, (const uint16_t *)w, y, n, k, m, r, n - r < nr ? n - r : nr);
}

/* x[:, r] += (a @ w.T)[:, r]; a must not alias x. */
static void product_add(const float *a, const uint16_t *ab, const void *w, const float *s, float *tmp, float *x,
                        long n, long k, long m, int i8) {
    const long nr = i8 ? 1 : tile_rows(m);
    #pragma omp for schedule(static)
    for (long r = 0; r < n; r += nr) {
        long rows = n - r < nr ? n - r : nr;
        if (i8) rows_i8(a, (const int8_t *)w, tmp, n, k, m, r, s[r]);
        else dot_rows(ab, (const uint16_t *)w, tmp, n, k, m, r, rows);
        for (long j = 0; j < m; j++)
            for (long c = r; c < r + rows; c++) x[j * n + c] += tmp[j * n + c];
    }
}

/* out = RMSNorm(x) * weight, and its bf16 copy in outb unless NULL. */
static void rms_norm(const float *x, const float *weight, float *out, uint16_t *outb, long m, long n, float eps) {
    for (long j = 0; j < m; j++) {
        const float *row = x + j * n;
        float ss = 0.0f;
        for (long i = 0; i < n; i++) ss += row[i] * row[i];
        float inv = 1.0f / sqrtf(ss / (float)n + eps);
        for (long i = 0; i < n; i++) out[j * n + i] = row[i] * inv * weight[i];
        if (outb) round_bf16(out + j * n, outb + j * n, n);
    }
}

/* transformers' rotate_half RoPE on one head, in place. */
static void rope(float *v, const float *cos, const float *sin, long d) {
    long half = d / 2;
    for (long i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        v[i] = a * cos[i] - b * sin[i];
        v[i + half] = b * cos[i + half] + a * sin[i + half];
    }
}

/* The sums of four accumulators' 16 lanes, each in the same fixed order: lanes (i, i+2) of each 128-bit quarter,
   then (i, i+1), then quarters (0, 2) with (1, 3), then the two halves. */
static inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512 u = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* e^x for 16 lanes: 2^n e^r with n = round(x log2 e) and a degree-6 polynomial for e^r (Cephes' expf; within
   1 ulp of glibc's expf over [-110, 90], denormals included); -inf gives 0 exactly, NaN stays NaN. */
static inline __m512 exp16(__m512 x) {
    __mmask16 zero = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
    /* clamped with x as the second operand: max/min return it when it is NaN, so NaN stays NaN (as in expf) */
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps((__mmask16)~zero, _mm512_scalef_ps(p, n));
}

/* act = SiLU(gate) * up = gate / (1 + e^-gate) * up, 16 lanes at a time. */
static void silu_mul(const float *gate, const float *up, float *act, long n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        __mmask16 lanes = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 g = _mm512_maskz_loadu_ps(lanes, gate + i), u = _mm512_maskz_loadu_ps(lanes, up + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
        _mm512_mask_storeu_ps(act + i, lanes, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), u));
    }
}

/* attend for a head of NV * 16 values (see attend). Each key's score is its own FMA chain over the head's 16-lane
   chunks, reduced four keys at a time by reduce4 (the same order wherever a key falls); softmax on exp16; the
   query and the weighted sum of the values stay in registers (summed key by key, in order). */
static inline __attribute__((always_inline)) void attend_regs(const float *q, const uint16_t *keys,
        const uint16_t *values, const uint8_t *valid, long end, float *scores, float *out, const int NV) {
    const long d = NV * 16;
    float top = -INFINITY, scale = 1.0f / sqrtf((float)d);
    __m512 qv[8];
    for (int i = 0; i < NV; i++) qv[i] = _mm512_loadu_ps(q + i * 16);
    for (long j = 0; j < end; j += 4) {
        __m512 acc[4];
        for (int u = 0; u < 4; u++) {
            acc[u] = _mm512_setzero_ps();
            if (j + u < end)
                for (int i = 0; i < NV; i++) acc[u] = _mm512_fmadd_ps(qv[i], load_bf16(keys + (j + u) * d + i * 16), acc[u]);
        }
        float four[4];
        _mm_storeu_ps(four, reduce4(acc[0], acc[1], acc[2], acc[3]));
        for (int u = 0; u < 4 && j + u < end; u++) {
            scores[j + u] = (valid && !valid[j + u]) ? -INFINITY : four[u] * scale;
            if (scores[j + u] > top) top = scores[j + u];
        }
    }
    float total = 0.0f;
    for (long j = 0; j < end; j += 16) {
        __mmask16 lanes = end - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (end - j)) - 1u);
        _mm512_mask_storeu_ps(scores + j, lanes, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, scores + j),
                                                                     _mm512_set1_ps(top))));
    }
    for (long j = 0; j < end; j++) total += scores[j];
    __m512 o[8];
    for (int i = 0; i < NV; i++) o[i] = _mm512_setzero_ps();
    for (long j = 0; j < end; j++) {
        if (scores[j] == 0.0f) continue;
        __m512 weight = _mm512_set1_ps(scores[j]);
        for (int i = 0; i < NV; i++) o[i] = _mm512_fmadd_ps(weight, load_bf16(values + j * d + i * 16), o[i]);
    }
    __m512 inv = _mm512_set1_ps(1.0f / total);
    for (int i = 0; i < NV; i++) _mm512_storeu_ps(out + i * 16, _mm512_mul_ps(o[i], inv));
}

/* One query head of one row against columns [0, end) of its key/value head (head_dim = 16 NV, NV <= 8). */
static void attend(const float *q, const uint16_t *keys, const uint16_t *values, const uint8_t *valid, long end,
                   long d, float *scores, float *out) {
    switch (d / 16) {
    case 1: attend_regs(q, keys, values, valid, end, scores, out, 1); return;
    case 2: attend_regs(q, keys, values, valid, end, scores, out, 2); return;
    case 3: attend_regs(q, keys, values, valid, end, scores, out, 3); return;
    case 4: attend_regs(q, keys, values, valid, end, scores, out, 4); return;
    case 5: attend_regs(q, keys, values, valid, end, scores, out, 5); return;
    case 6: attend_regs(q, keys, values, valid, end, scores, out, 6); return;
    case 7: attend_regs(q, keys, values, valid, end, scores, out, 7); return;
    default: attend_regs(q, keys, values, valid, end, scores, out, 8); return;
    }
}

/* attend for NQ query heads that share a key/value head and an end (a prefill's grouped heads at one position):
   each key and value is loaded once for all NQ queries. Every query's arithmetic is attend_regs's, in the same
   order (its scores four keys at a time by reduce4, its softmax, its values key by key skipping zero weights), so
   each output is the same bits as attend's for that query alone (tested). Scores: NQ rows, sstride apart. Why not
   one kernel for both: attend written as this with NQ = 1 made the decode step 5-9 % slower at 4-8 rows (same
   bits; old and new step alternating in one process), so the decode step keeps its own. */
static inline __attribute__((always_inline)) void attend_group_regs(const float *q, long qstride,
        const uint16_t *keys, const uint16_t *values, const uint8_t *valid, long end, float *scores, long sstride,
        float *out, long ostride, const int NQ, const int NV) {
    const long d = NV * 16;
    float scale = 1.0f / sqrtf((float)d), top[4], total[4];
    __m512 qv[4][8];
    for (int a = 0; a < NQ; a++) {
        top[a] = -INFINITY;
        total[a] = 0.0f;
        for (int i = 0; i < NV; i++) qv[a][i] = _mm512_loadu_ps(q + a * qstride + i * 16);
    }
    for (long j = 0; j < end; j += 4) {
        __m512 acc[4][4];
        for (int u = 0; u < 4; u++) {
            for (int a = 0; a < NQ; a++) acc[a][u] = _mm512_setzero_ps();
            if (j + u < end)
                for (int i = 0; i < NV; i++) {
                    __m512 key = load_bf16(keys + (j + u) * d + i * 16);
                    for (int a = 0; a < NQ; a++) acc[a][u] = _mm512_fmadd_ps(qv[a][i], key, acc[a][u]);
                }
        }
        for (int a = 0; a < NQ; a++) {
            float four[4], *sc = scores + a * sstride;
            _mm_storeu_ps(four, reduce4(acc[a][0], acc[a][1], acc[a][2], acc[a][3]));
            for (int u = 0; u < 4 && j + u < end; u++) {
                sc[j + u] = (valid && !valid[j + u]) ? -INFINITY : four[u] * scale;
                if (sc[j + u] > top[a]) top[a] = sc[j + u];
            }
        }
    }
    for (int a = 0; a < NQ; a++) {
        float *sc = scores + a * sstride;
        for (long j = 0; j < end; j += 16) {
            __mmask16 lanes = end - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (end - j)) - 1u);
            _mm512_mask_storeu_ps(sc + j, lanes, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, sc + j),
                                                                     _mm512_set1_ps(top[a]))));
        }
        for (long j = 0; j < end; j++) total[a] += sc[j];
    }
    __m512 o[4][8];
    for (int a = 0; a < NQ; a++)
        for (int i = 0; i < NV; i++) o[a][i] = _mm512_setzero_ps();
    for (long j = 0; j < end; j++) {
        __m512 v[8];
        for (int i = 0; i < NV; i++) v[i] = load_bf16(values + j * d + i * 16);
        for (int a = 0; a < NQ; a++) {
            float w = scores[a * sstride + j];
            if (w == 0.0f) continue;
            __m512 weight = _mm512_set1_ps(w);
            for (int i = 0; i < NV; i++) o[a][i] = _mm512_fmadd_ps(weight, v[i], o[a][i]);
        }
    }
    for (int a = 0; a < NQ; a++) {
        __m512 inv = _mm512_set1_ps(1.0f / total[a]);
        for (int i = 0; i < NV; i++) _mm512_storeu_ps(out + a * ostride + i * 16, _mm512_mul_ps(o[a][i], inv));
    }
}

#define ATTEND_GROUP_NV(NQ) \
    switch (d / 16) { \
    case 1: attend_group_regs(q, qstride, keys, values, valid, end, scores, sstride, out, ostride, NQ, 1); return; \
    case 2: attend_group_regs(q, qstride, keys, values, valid, end, scores, sstride, out, ostride, NQ, 2); return; \
    case 3: attend_group_regs(q, qstride, keys, values, valid, end, scores, sstride, out, ostride, NQ, 3); return; \
    case 4: attend_group_regs(q, qstride, keys, values, valid, end, scores, sstride, out, ostride, NQ, 4); return; \
    case 5: attend_group_regs(q, qstride, keys, values, valid, end, scores, sstride, out, ostride, NQ, 5); return; \
    case 6: attend_group_regs(q, qstride, keys, values, valid, end, scores, sstride, out, ostride, NQ, 6); return; \
    case 7: attend_group_regs(q, qstride, keys, values, valid, end, scores, sstride, out, ostride, NQ, 7); return; \
    default: attend_group_regs(q, qstride, keys, values, valid, end, scores, sstride, out, ostride, NQ, 8); return; \
    }

/* nq (1-4) query heads sharing keys, values and end; see attend_group_regs. */
static void attend_group(const float *q, long qstride, int nq, const uint16_t *keys, const uint16_t *values,
                         const uint8_t *valid, long end, long d, float *scores, long sstride, float *out,
                         long ostride) {
    switch (nq) {
    case 1: attend(q, keys, values, valid, end, d, scores, out); return;
    case 2: ATTEND_GROUP_NV(2)
    case 3: ATTEND_GROUP_NV(3)
    default: ATTEND_GROUP_NV(4)
    }
}

/* Attention of a prefill (or a torch-path step), one layer: query t of row b attends to its row's columns
   [0, start + t] (causal) where valid; a padding query (real[b, t] == 0) gets zeros. q: fp32 [B, T, NH, D],
   rotated; keys / values: the layer's bf16 [B, KVH, CAP, D]; valid: [B, CAP], this call's columns included; out:
   fp32 [B, T, NH, D]. The decode step's attend, for the query heads of a key/value head together (attend_group:
   the same bits as attend, each key loaded once for the group). Tasks are (row, key/value head, part of its group,
   query), the query innermost, so a head's keys stay in cache across its queries; later queries see more keys,
   hence dynamic scheduling. scores: [threads, 4, CAP]. */
void prefill_attend(const float *q, const uint16_t *keys, const uint16_t *values, const uint8_t *valid,
                    const uint8_t *real, long B, long T, long NH, long KVH, long D, long CAP, long start,
                    float *out, float *scores, int threads) {
    const long GROUP = NH / KVH, PARTS = (GROUP + 3) / 4;  /* a group's query heads, at most 4 at a time */
    #pragma omp parallel num_threads(threads)
    {
        float *my_scores = scores + (long)omp_get_thread_num() * 4 * CAP;
        #pragma omp for schedule(dynamic, 16)
        for (long task = 0; task < B * KVH * PARTS * T; task++) {
            long t = task % T, part = (task / T) % PARTS, g = (task / (T * PARTS)) % KVH, b = task / (T * PARTS * KVH);
            long first = g * GROUP + part * 4, nq = GROUP - part * 4 < 4 ? GROUP - part * 4 : 4;
            float *o = out + ((b * T + t) * NH + first) * D;
            if (!real[b * T + t]) {
                for (long i = 0; i < nq * D; i++) o[i] = 0.0f;
                continue;
            }
            long base = (b * KVH + g) * CAP * D;
            attend_group(q + ((b * T + t) * NH + first) * D, D, (int)nq, keys + base, values + base, valid + b * CAP,
                         start + t + 1, D, my_scores, CAP, o, D);
        }
    }
}

/* Buffers (fp32): h [m, hidden], qkv [m, (heads + 2 kv_heads) d], att [m, heads d], tmp [m, max(hidden, 2 inter)],
   act [m, inter], scores [threads, cap]; xb (bf16) [m, max(hidden, heads d, inter)]: the next bf16 product's
   input. keys/values: bf16 [layers, m, kv_heads, cap, d]. valid: [m, cap] or NULL. */
void decode_step(const long *dims, float eps, const int64_t *slots, const float *norm, const void *head,
                 const float *head_scale, const float *cos, const float *sin, float *x, long m, const long *pos,
                 uint16_t *keys, uint16_t *values, const uint8_t *valid, long start, float *h, float *qkv,
                 float *att, float *tmp, float *act, uint16_t *xb, float *scores, float *logits, int threads) {
    const long L = dims[D_LAYERS], H = dims[D_HIDDEN], NH = dims[D_HEADS], KVH = dims[D_KV_HEADS];
    const long D = dims[D_HEAD_DIM], I = dims[D_INTER], V = dims[D_VOCAB], CAP = dims[D_CAP];
    const int i8 = (int)dims[D_INT8];
    uint16_t *hb = i8 ? 0 : xb;  /* where the norms leave their bf16 copy (none for int8) */
    const long QKV = (NH + 2 * KVH) * D, GROUP = NH / KVH, end = start + 1;
    #pragma omp parallel num_threads(threads)
    {
        float *my_scores = scores + (long)omp_get_thread_num() * CAP;
        for (long l = 0; l < L; l++) {
            const int64_t *p = slots + l * N_SLOTS;
            uint16_t *lk = keys + l * m * KVH * CAP * D, *lv = values + l * m * KVH * CAP * D;
            #pragma omp single
            rms_norm(x, (const float *)p[LN1], h, hb, m, H, eps);
            product(h, xb, (const void *)p[W_QKV], (const float *)p[S_QKV], qkv, QKV, H, m, i8);
            #pragma omp single
            for (long b = 0; b < m; b++) {
                float *row = qkv + b * QKV;
                const float *bias = (const float *)p[B_QKV];
                if (bias) for (long i = 0; i < QKV; i++) row[i] += bias[i];
                const float *c = cos + pos[b] * D, *s = sin + pos[b] * D;
                for (long hh = 0; hh < NH + KVH; hh++) rope(row + hh * D, c, s, D);
                for (long g = 0; g < KVH; g++) {
                    long at = ((b * KVH + g) * CAP + start) * D;
                    for (long i = 0; i < D; i++) {
                        lk[at + i] = to_bf16(row[(NH + g) * D + i]);
                        lv[at + i] = to_bf16(row[(NH + KVH + g) * D + i]);
                    }
                }
            }
            #pragma omp for schedule(static)
            for (long t = 0; t < m * NH; t++) {
                long b = t / NH, hh = t % NH, g = hh / GROUP, base = (b * KVH + g) * CAP * D;
                float *out = att + b * NH * D + hh * D;
                attend(qkv + b * QKV + hh * D, lk + base, lv + base, valid ? valid + b * CAP : 0, end, D,
                       my_scores, out);
                if (!i8) round_bf16(out, xb + b * NH * D + hh * D, D);
            }
            product_add(att, xb, (const void *)p[W_O], (const float *)p[S_O], tmp, x, H, NH * D, m, i8);
            #pragma omp single
            rms_norm(x, (const float *)p[LN2], h, hb, m, H, eps);
            /* gate rows r.. and up rows I + r.. into tmp, then act = SiLU(gate) * up and its bf16 copy in xb (the down
               product's input; xb is free once every thread has passed the gate/up loop's barrier). */
            const long nr = i8 ? 1 : tile_rows(m);
            const void *wgu = (const void *)p[W_GU];
            const float *sgu = (const float *)p[S_GU];
            #pragma omp for schedule(static)
            for (long r = 0; r < I; r += nr) {
                long rows = I - r < nr ? I - r : nr;
                if (i8) {
                    rows_i8(h, (const int8_t *)wgu, tmp, 2 * I, H, m, r, sgu[r]);
                    rows_i8(h, (const int8_t *)wgu, tmp, 2 * I, H, m, I + r, sgu[I + r]);
                } else {
                    dot_rows(xb, (const uint16_t *)wgu, tmp, 2 * I, H, m, r, rows);
                    dot_rows(xb, (const uint16_t *)wgu, tmp, 2 * I, H, m, I + r, rows);
                }
            }
            #pragma omp for schedule(static)
            for (long b = 0; b < m; b++) {
                silu_mul(tmp + b * 2 * I, tmp + b * 2 * I + I, act + b * I, I);
                if (!i8) round_bf16(act + b * I, xb + b * I, I);
            }
            product_add(act, xb, (const void *)p[W_DOWN], (const float *)p[S_DOWN], tmp, x, H, I, m, i8);
        }
        #pragma omp single
        rms_norm(x, norm, h, hb, m, H, eps);
        product(h, xb, head, head_scale, logits, V, H, m, i8);
    }
}
"""

_state: dict = {}


def library() -> ctypes.CDLL | None:
    """The compiled decode step, built on first use; ``None`` where it cannot be (see :func:`unavailable_reason`)."""
    return cpu_gemv.load_once(_state, _load)


def _load(extra_flags: tuple[str, ...] = ()) -> ctypes.CDLL:
    """Build (once per flags) and bind the library; ``extra_flags`` e.g. ``("-mno-avx512bf16",)`` (tests)."""
    lib = ctypes.CDLL(str(cpu_gemv.build(cpu_gemv.SOURCE + DECODE_SOURCE, "decode", ("-fopenmp", *extra_flags))))
    p, n = ctypes.c_void_p, ctypes.c_long
    lib.decode_step.argtypes = [p, ctypes.c_float, p, p, p, p, p, p, p, n, p, p, p, p, n,
                                p, p, p, p, p, p, p, p, ctypes.c_int]
    lib.decode_step.restype = None
    lib.prefill_attend.argtypes = [p, p, p, p, p, n, n, n, n, n, n, n, p, p, ctypes.c_int]
    lib.prefill_attend.restype = None
    return lib


def unavailable_reason() -> str | None:
    """Why :func:`library` is ``None`` (``None`` when it is available)."""
    library()
    return _state["reason"]


class ThreadChooser:
    """Picks how many OpenMP threads run the C step, by timing it as it runs, and keeps timing.

    Why: on a quiet 2-core machine two threads read the weights almost twice as
    fast as one; on a busy one a descheduled thread stalls every barrier and two
    threads run at a third of one's speed (docs/engine.md). Neither can be
    assumed, and a shared machine changes within a run: a choice made from the
    first few steps and held (as round 3 did, for 256 steps) was often wrong
    for a whole debate. So the counts are compared in **pairs of adjacent
    steps of as many rows** (the context's growth and slow changes in load
    cancel within a pair): the first steps alternate the counts, then the
    faster one runs and every ``every`` steps one step takes the other count
    (every ``4 * every`` while the median ratio is beyond ``CLEAR``, so a clear
    choice costs ~1 % of steps). The choice follows the median of the last
    ``window`` pair ratios. Steps of a batch class that never come two in a
    row keep alternating; a generation's steps do come in runs, so this stays
    rare. The logits do not depend on the count (each output row is summed by
    one thread, in one order; tested), so switching is invisible in the output.
    """

    CLEAR = 1.3  # a median pair ratio beyond this (or below its inverse) is a clear choice: explore less often

    def __init__(self, most: int, probe: int = 3, every: int = 16, window: int = 6):
        self.options = [most, 1] if most > 1 else [1]
        self.probe, self.every = probe, every
        self.ratios: collections.deque[float] = collections.deque(maxlen=window)  # seconds on 1 ÷ on ``most``
        self.choice: int | None = self.options[0] if len(self.options) == 1 else None
        self.since = 0  # steps since the last one on the other count
        self._last: tuple | None = None  # (threads, seconds, step index, rows) of the last step timed

    def next(self) -> int:
        """The thread count for the next step."""
        if len(self.options) == 1:
            return 1
        if self.choice is None:  # probing: the other count than the last step's
            return self.options[1] if self._last is not None and self._last[0] == self.options[0] else self.options[0]
        median = self._median()
        if self.since >= (4 * self.every if max(median, 1 / median) >= self.CLEAR else self.every):
            return self.options[1] if self.choice == self.options[0] else self.options[0]
        return self.choice

    def record(self, threads: int, seconds: float, index: int | None = None, rows: int | None = None) -> None:
        """How long a step at ``threads`` took; ``index`` numbers the caller's steps and ``rows`` counts the step's
        rows (a pair must be adjacent steps of as many rows: a batch class spans several sizes)."""
        if len(self.options) == 1:
            return
        last, self._last = self._last, (threads, seconds, index, rows)
        self.since = 0 if threads != self.choice else self.since + 1
        if last is None or last[0] == threads or (index is not None and last[2] != index - 1) or last[3] != rows:
            return
        one, most = (seconds, last[1]) if threads == 1 else (last[1], seconds)
        self.ratios.append(max(one, 1e-9) / max(most, 1e-9))
        if self.choice is not None or len(self.ratios) >= self.probe:
            self.choice = self.options[0] if self._median() >= 1 else 1

    def _median(self) -> float:
        ordered = sorted(self.ratios)
        return ordered[len(ordered) // 2] if ordered else 1.0


def batch_class(rows: int) -> int:
    """Batches that share one thread-count measurement: 1 row (reads weights), up to 4 (1-row tiles), more (2-row
    tiles, ``tile_rows``). Why not one per size: a batch shrinks as its rows finish, and each new size would be
    probed anew."""
    return 1 if rows == 1 else 4 if rows <= 4 else 32


def _weights(weight, int8: bool) -> tuple:
    """An ``engine.Weight``'s matrix and scales as the C step reads them (int8 with scales, or bf16 and none)."""
    return (weight.q, weight.scale) if int8 else (weight.dense, None)


def _ptr(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.data_ptr()


class Decoder:
    """The C decode step bound to one ``FastLlama``'s weights (bf16 or int8 on ``cpu_gemv``'s loops)."""

    def __init__(self, engine, lib: ctypes.CDLL):
        self.lib, self.engine = lib, engine
        int8 = engine.dtype == torch.int8
        first = engine.layers[0]
        self.hidden = engine.embed.shape[1]
        self.inter = first.wdown.dense.shape[1] if first.wdown.dense is not None else first.wdown.q.shape[1]
        self.vocab = engine.head.out_features
        self.qkv = (engine.n_heads + 2 * engine.kv_heads) * engine.head_dim
        rows = [[_ptr(w) for w in self._slots(layer, int8)] for layer in engine.layers]
        self.slots = torch.tensor(rows, dtype=torch.int64)
        self.int8 = int8
        self.head = _weights(engine.head, int8)
        self._keep = (engine.layers, engine.head)  # the pointers above stay valid while these live
        self._choosers: dict[tuple[int, int], ThreadChooser] = {}  # per (batch_class(batch), most threads)
        self._last: ThreadChooser | None = None  # the chooser of the last step (``preferred``)
        self.fixed_threads: int | None = None  # set to skip the measuring (tests, benchmarks)
        self._steps = 0  # steps run, so a chooser pairs only adjacent steps

    @staticmethod
    def _slots(layer, int8: bool) -> list:
        return [*_weights(layer.wqkv, int8), layer.bqkv, *_weights(layer.wo, int8), *_weights(layer.wgu, int8),
                *_weights(layer.wdown, int8), layer.ln1, layer.ln2]

    def _scratch(self, m: int, cap: int, threads: int) -> dict:
        """Fresh work buffers for one step (a few hundred KB: microseconds, and two callers never share them)."""
        e = self.engine
        return {"h": torch.empty(m, self.hidden), "qkv": torch.empty(m, self.qkv),
                "att": torch.empty(m, e.n_heads * e.head_dim), "tmp": torch.empty(m, max(self.hidden, 2 * self.inter)),
                "act": torch.empty(m, self.inter), "scores": torch.empty(threads, cap),
                "xb": torch.empty(m, max(self.hidden, e.n_heads * e.head_dim, self.inter), dtype=torch.bfloat16)}

    def step(self, x: torch.Tensor, positions: torch.Tensor, cache, start: int,
             most: int | None = None) -> torch.Tensor:
        """Logits ``[B, vocab]`` after feeding embeddings ``x[B, hidden]`` at column ``start``; see the contract.

        ``most``: the most threads to use (default ``torch.get_num_threads()``).
        """
        e = self.engine
        m, cap = x.shape[0], cache.capacity
        most = max(1, most or torch.get_num_threads())
        chooser = self._choosers.setdefault((batch_class(m), most), ThreadChooser(most))
        if most > 1:  # a one-thread step (a prefill run as a step on the count preferred) leaves the preference be
            self._last = chooser
        threads = self.fixed_threads or chooser.next()
        self._steps += 1
        buf = self._scratch(m, cap, max(most, threads))  # a score row per OpenMP thread
        dims = torch.tensor([len(e.layers), self.hidden, e.n_heads, e.kv_heads, e.head_dim, self.inter, self.vocab,
                             int(self.int8), cap], dtype=torch.int64)
        positions = positions.to(torch.int64).contiguous()
        valid = None if cache.all_valid else cache.valid  # bool is one byte, 0 or 1: read as uint8
        logits = torch.empty(m, self.vocab)
        began = time.perf_counter()
        self.lib.decode_step(
            dims.data_ptr(), e.eps, self.slots.data_ptr(), e.norm.data_ptr(), *map(_ptr, self.head),
            e.cos.data_ptr(), e.sin.data_ptr(), x.data_ptr(), m, positions.data_ptr(),
            cache.k.data_ptr(), cache.v.data_ptr(), _ptr(valid), start,
            buf["h"].data_ptr(), buf["qkv"].data_ptr(), buf["att"].data_ptr(), buf["tmp"].data_ptr(),
            buf["act"].data_ptr(), buf["xb"].data_ptr(), buf["scores"].data_ptr(), logits.data_ptr(), threads)
        if not self.fixed_threads:
            chooser.record(threads, time.perf_counter() - began, self._steps, m)
        return logits

    def attend(self, q: torch.Tensor, cache, layer: int, start: int) -> torch.Tensor:
        """:func:`attention` over ``cache`` layer ``layer`` (a prefill's, or a torch-path step's)."""
        return attention(self.lib, q, cache.k[layer], cache.v[layer], cache.valid, start)

    def preferred(self, most: int) -> int:
        """The thread count last measured best with ``most`` allowed (``most`` until something is measured)."""
        last = self._last
        if last is None or last.options[0] != most or last.choice is None:
            return most
        return last.choice

    def threads(self, batch: int = 1) -> int | None:
        """The thread count chosen for ``batch`` rows so far (``None`` while still probing)."""
        chooser = self._choosers.get((batch_class(batch), max(1, torch.get_num_threads())))
        return chooser.choice if chooser is not None else None


def attention(lib: ctypes.CDLL, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, valid: torch.Tensor,
              start: int) -> torch.Tensor:
    """Causal attention of the queries of columns ``start .. start + T - 1``, in C; fp32 ``[B, T, heads * head_dim]``.

    ``q``: fp32 ``[B, T, heads, head_dim]``, rotated; ``keys`` / ``values``: one layer's bf16 cache
    ``[B, kv_heads, capacity, head_dim]`` (contiguous), those columns already written; ``valid``: ``[B, capacity]``
    bool, those columns marked (a column of the call not marked is a padding query: its output is zeros). Query
    ``t`` sees the valid columns up to its own. Why: torch's SDPA with a mask took a quarter of a prefill here
    (1.7 ms a layer for 250 queries over 355 keys, bf16); this is the decode step's own ``attend`` per query,
    on torch's thread count: a prefill 1.12-1.20x faster, and attention in fp32 on fp32 queries.
    """
    if not (keys.is_contiguous() and values.is_contiguous()):
        raise ValueError("attention reads keys and values as contiguous [B, kv_heads, capacity, head_dim] tensors")
    b, t, heads, d = q.shape
    capacity = keys.shape[2]
    threads = max(1, torch.get_num_threads())
    q, valid = q.contiguous(), valid.contiguous()
    real = valid[:, start:start + t].contiguous()
    out = torch.empty(b, t, heads * d)
    scores = torch.empty(threads, 4, capacity)  # a row per query head of a group's part
    lib.prefill_attend(q.data_ptr(), keys.data_ptr(), values.data_ptr(), valid.data_ptr(), real.data_ptr(),
                       b, t, heads, keys.shape[1], d, capacity, start, out.data_ptr(), scores.data_ptr(), threads)
    return out


def decoder(engine) -> Decoder | None:
    """A :class:`Decoder` for ``engine`` where the C step applies (bf16 / int8 on the loops; head_dim a multiple of 16
    up to 128, held in registers by ``attend``)."""
    if engine.kernels is None or engine.dtype not in (torch.bfloat16, torch.int8) or engine.head_dim % 16 \
            or engine.head_dim > 128:
        return None
    if engine.cache_dtype != torch.bfloat16:
        return None
    lib = library()
    return Decoder(engine, lib) if lib is not None else None
