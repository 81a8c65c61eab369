/* kernels_avx2: the AVX2+FMA (+F16C) variants of the matvec and conversion kernels, for
 * x86-64 CPUs without AVX-512 (AMD before Zen 4, Intel desktop parts). Compiled for the
 * baseline ISA with per-function target attributes, so one binary runs anywhere; kernels.c
 * calls them only when cpuid (and the OS's saved YMM state) says the CPU has the units, or
 * when --kernels avx2 asks for them. Same structure as the AVX-512 kernels: 4 rows at a time
 * (each x vector feeds 4 rows, 4 weight streams in flight, horizontal sums once per row),
 * two accumulators per row (8 independent FMA chains cover the FMA latency).
 * Not for: dispatch (kernels.c). */
#include "engine/kernels_x86.h"
#include "engine/kernels.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

#ifndef XL_PF
#define XL_PF 256   /* software prefetch distance in weights, as in the AVX-512 kernels */
#endif

AVX2 static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* 8 bf16 -> 8 fp32 (zero-extend, shift into the high half) */
AVX2 static inline __m256 bf16x8(const uint16_t *p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
AVX2 static inline __m256 f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

AVX2 void xl_to_f32_avx2(st_dtype t, const uint16_t *s, float *dst, size_t n) {
  size_t i = 0;
  if (t == ST_BF16)
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, bf16x8(s + i));
  else
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, f16x8(s + i));
  for (; i < n; i++) dst[i] = t == ST_BF16 ? xl_bf16_to_f32(s[i]) : xl_f16_to_f32(s[i]);
}

/* ---- F32 ---- */

AVX2 static float dot_f32(const float *w, const float *x, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j), _mm256_loadu_ps(x + j), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);
  }
  for (; j + 8 <= n; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j), _mm256_loadu_ps(x + j), a0);
  float s = hsum8(_mm256_add_ps(a0, a1));
  for (; j < n; j++) s += w[j] * x[j];
  return s;
}

AVX2 void xl_matvec_f32_avx2(const float *W, int n, const float *x, float *y, int r0, int r1) {
  int nb = n & ~15, r = r0;
  for (; r + 4 <= r1; r += 4) {
    const float *w0 = W + (size_t)r * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int j = 0; j < nb; j += 16) {
      __m256 xa = _mm256_loadu_ps(x + j), xb = _mm256_loadu_ps(x + j + 8);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j), xa, a0); b0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j + 8), xb, b0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j), xa, a1); b1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j + 8), xb, b1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j), xa, a2); b2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j + 8), xb, b2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j), xa, a3); b3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j + 8), xb, b3);
    }
    float s[4] = {hsum8(_mm256_add_ps(a0, b0)), hsum8(_mm256_add_ps(a1, b1)), hsum8(_mm256_add_ps(a2, b2)), hsum8(_mm256_add_ps(a3, b3))};
    for (int j = nb; j < n; j++) { s[0] += w0[j] * x[j]; s[1] += w1[j] * x[j]; s[2] += w2[j] * x[j]; s[3] += w3[j] * x[j]; }
    y[r] = s[0]; y[r + 1] = s[1]; y[r + 2] = s[2]; y[r + 3] = s[3];
  }
  for (; r < r1; r++) y[r] = dot_f32(W + (size_t)r * n, x, n);
}

/* ---- BF16 ----
 * A 256-bit load holds 16 weights; shifting each 32-bit lane left by 16 gives the even ones
 * as fp32 and masking the low half the odd ones, so no cross-lane widening per weight. x is
 * permuted once per call into blocks of 16: 8 even elements, then 8 odd (xp). */
enum { XP_MAX = 1 << 16 };   /* columns up to which xp lives on the stack (256 KB) */

AVX2 static void permute_even_odd(const float *x, float *xp, int nb) {
  for (int j = 0; j < nb; j += 16) {
    __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + 8);
    /* per 128-bit lane: a0 a2 b0 b2 | a4 a6 b4 b6, then 64-bit pieces reordered 0 2 1 3 */
    __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(xp + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
    _mm256_storeu_ps(xp + j + 8, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8)));
  }
}

AVX2 static inline void bf16_pair(__m256i w, __m256 *even, __m256 *odd) {
  *even = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  *odd = _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32((int)0xffff0000u)));
}

AVX2 static float dot_bf16(const uint16_t *w, const float *x, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    a0 = _mm256_fmadd_ps(bf16x8(w + j), _mm256_loadu_ps(x + j), a0);
    a1 = _mm256_fmadd_ps(bf16x8(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);
  }
  for (; j + 8 <= n; j += 8) a0 = _mm256_fmadd_ps(bf16x8(w + j), _mm256_loadu_ps(x + j), a0);
  float s = hsum8(_mm256_add_ps(a0, a1));
  for (; j < n; j++) s += xl_bf16_to_f32(w[j]) * x[j];
  return s;
}

AVX2 void xl_matvec_bf16_avx2(const uint16_t *W, int n, const float *x, float *y, int r0, int r1) {
  int nb = n & ~15;
  if (n > XP_MAX) {
    for (int r = r0; r < r1; r++) y[r] = dot_bf16(W + (size_t)r * n, x, n);
    return;
  }
  float xp[nb > 0 ? nb : 1];
  permute_even_odd(x, xp, nb);
  int r = r0;
  for (; r + 4 <= r1; r += 4) {
    const uint16_t *w0 = W + (size_t)r * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int j = 0; j < nb; j += 16) {
      __m256 xe = _mm256_loadu_ps(xp + j), xo = _mm256_loadu_ps(xp + j + 8), e, o;
#if XL_PF > 0
      if (!(j & 31)) {   /* one prefetch per 64-byte line of each row */
        _mm_prefetch((const char *)(w0 + j + XL_PF), _MM_HINT_T0); _mm_prefetch((const char *)(w1 + j + XL_PF), _MM_HINT_T0);
        _mm_prefetch((const char *)(w2 + j + XL_PF), _MM_HINT_T0); _mm_prefetch((const char *)(w3 + j + XL_PF), _MM_HINT_T0);
      }
#endif
      bf16_pair(_mm256_loadu_si256((const __m256i *)(w0 + j)), &e, &o);
      a0 = _mm256_fmadd_ps(e, xe, a0); b0 = _mm256_fmadd_ps(o, xo, b0);
      bf16_pair(_mm256_loadu_si256((const __m256i *)(w1 + j)), &e, &o);
      a1 = _mm256_fmadd_ps(e, xe, a1); b1 = _mm256_fmadd_ps(o, xo, b1);
      bf16_pair(_mm256_loadu_si256((const __m256i *)(w2 + j)), &e, &o);
      a2 = _mm256_fmadd_ps(e, xe, a2); b2 = _mm256_fmadd_ps(o, xo, b2);
      bf16_pair(_mm256_loadu_si256((const __m256i *)(w3 + j)), &e, &o);
      a3 = _mm256_fmadd_ps(e, xe, a3); b3 = _mm256_fmadd_ps(o, xo, b3);
    }
    float s[4] = {hsum8(_mm256_add_ps(a0, b0)), hsum8(_mm256_add_ps(a1, b1)), hsum8(_mm256_add_ps(a2, b2)), hsum8(_mm256_add_ps(a3, b3))};
    for (int j = nb; j < n; j++) {
      s[0] += xl_bf16_to_f32(w0[j]) * x[j]; s[1] += xl_bf16_to_f32(w1[j]) * x[j];
      s[2] += xl_bf16_to_f32(w2[j]) * x[j]; s[3] += xl_bf16_to_f32(w3[j]) * x[j];
    }
    y[r] = s[0]; y[r + 1] = s[1]; y[r + 2] = s[2]; y[r + 3] = s[3];
  }
  for (; r < r1; r++) {
    const uint16_t *w0 = W + (size_t)r * n;
    __m256 a0 = _mm256_setzero_ps(), b0 = a0, e, o;
    for (int j = 0; j < nb; j += 16) {
      bf16_pair(_mm256_loadu_si256((const __m256i *)(w0 + j)), &e, &o);
      a0 = _mm256_fmadd_ps(e, _mm256_loadu_ps(xp + j), a0);
      b0 = _mm256_fmadd_ps(o, _mm256_loadu_ps(xp + j + 8), b0);
    }
    float s = hsum8(_mm256_add_ps(a0, b0));
    for (int j = nb; j < n; j++) s += xl_bf16_to_f32(w0[j]) * x[j];
    y[r] = s;
  }
}

/* ---- F16 ---- */

AVX2 static float dot_f16(const uint16_t *w, const float *x, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    a0 = _mm256_fmadd_ps(f16x8(w + j), _mm256_loadu_ps(x + j), a0);
    a1 = _mm256_fmadd_ps(f16x8(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);
  }
  for (; j + 8 <= n; j += 8) a0 = _mm256_fmadd_ps(f16x8(w + j), _mm256_loadu_ps(x + j), a0);
  float s = hsum8(_mm256_add_ps(a0, a1));
  for (; j < n; j++) s += xl_f16_to_f32(w[j]) * x[j];
  return s;
}

AVX2 void xl_matvec_f16_avx2(const uint16_t *W, int n, const float *x, float *y, int r0, int r1) {
  int nb = n & ~15, r = r0;
  for (; r + 4 <= r1; r += 4) {
    const uint16_t *w0 = W + (size_t)r * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int j = 0; j < nb; j += 16) {
      __m256 xa = _mm256_loadu_ps(x + j), xb = _mm256_loadu_ps(x + j + 8);
      a0 = _mm256_fmadd_ps(f16x8(w0 + j), xa, a0); b0 = _mm256_fmadd_ps(f16x8(w0 + j + 8), xb, b0);
      a1 = _mm256_fmadd_ps(f16x8(w1 + j), xa, a1); b1 = _mm256_fmadd_ps(f16x8(w1 + j + 8), xb, b1);
      a2 = _mm256_fmadd_ps(f16x8(w2 + j), xa, a2); b2 = _mm256_fmadd_ps(f16x8(w2 + j + 8), xb, b2);
      a3 = _mm256_fmadd_ps(f16x8(w3 + j), xa, a3); b3 = _mm256_fmadd_ps(f16x8(w3 + j + 8), xb, b3);
    }
    float s[4] = {hsum8(_mm256_add_ps(a0, b0)), hsum8(_mm256_add_ps(a1, b1)), hsum8(_mm256_add_ps(a2, b2)), hsum8(_mm256_add_ps(a3, b3))};
    for (int j = nb; j < n; j++) {
      s[0] += xl_f16_to_f32(w0[j]) * x[j]; s[1] += xl_f16_to_f32(w1[j]) * x[j];
      s[2] += xl_f16_to_f32(w2[j]) * x[j]; s[3] += xl_f16_to_f32(w3[j]) * x[j];
    }
    y[r] = s[0]; y[r + 1] = s[1]; y[r + 2] = s[2]; y[r + 3] = s[3];
  }
  for (; r < r1; r++) y[r] = dot_f16(W + (size_t)r * n, x, n);
}

/* ---- rounding to bf16 (the operations of xl_f32_to_bf16, 8 at a time) ---- */

AVX2 void xl_round_bf16_avx2(float *x, size_t n) {
  const __m256i lsb = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff), hi = _mm256_set1_epi32((int)0xffff0000u),
                abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000), quiet = _mm256_set1_epi32(0x400000);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
    __m256i r = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(u, half), _mm256_and_si256(_mm256_srli_epi32(u, 16), lsb)), hi);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
    __m256i q = _mm256_or_si256(_mm256_and_si256(u, hi), quiet);
    _mm256_storeu_ps(x + i, _mm256_castsi256_ps(_mm256_blendv_epi8(r, q, nan)));
  }
  for (; i < n; i++) x[i] = xl_bf16_to_f32(xl_f32_to_bf16(x[i]));
}

/* ---- the cell step's state update, 16 columns at a time (multiplies and adds apart) ---- */

__attribute__((target("avx2,fma,f16c"), optimize("fp-contract=off"))) void xl_cell_cols_avx2(int DK, int DV, float fa, float ia, float qscale, const float *q, const float *k, const float *v, float *C,
                            float *h, int d0, int d1) {
  int d = d0;
  __m256 vfa = _mm256_set1_ps(fa);
  for (; d + 16 <= d1; d += 16) {
    __m256 h0 = _mm256_setzero_ps(), h1 = h0, v0 = _mm256_loadu_ps(v + d), v1 = _mm256_loadu_ps(v + d + 8);
    for (int j = 0; j < DK; j++) {
      float *Cj = C + (size_t)j * DV + d;
      __m256 kj = _mm256_set1_ps(ia * k[j]), qj = _mm256_set1_ps(q[j] * qscale);
      __m256 c0 = _mm256_add_ps(_mm256_mul_ps(vfa, _mm256_loadu_ps(Cj)), _mm256_mul_ps(kj, v0));
      __m256 c1 = _mm256_add_ps(_mm256_mul_ps(vfa, _mm256_loadu_ps(Cj + 8)), _mm256_mul_ps(kj, v1));
      _mm256_storeu_ps(Cj, c0);
      _mm256_storeu_ps(Cj + 8, c1);
      h0 = _mm256_add_ps(h0, _mm256_mul_ps(qj, c0));
      h1 = _mm256_add_ps(h1, _mm256_mul_ps(qj, c1));
    }
    _mm256_storeu_ps(h + d, h0);
    _mm256_storeu_ps(h + d + 8, h1);
  }
  for (; d < d1; d++) {   /* the rest, column by column in the same order */
    float hd = 0;
    for (int j = 0; j < DK; j++) {
      float *Cj = C + (size_t)j * DV;
      Cj[d] = fa * Cj[d] + (ia * k[j]) * v[d];
      hd += (q[j] * qscale) * Cj[d];
    }
    h[d] = hd;
  }
}
