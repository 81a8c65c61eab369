/* kernels: dtype conversion, matvec and tiled GEMM over stored-dtype weights. See kernels.h.
 * The AVX-512 (here) and AVX2 (kernels_avx2.c) paths are chosen at run time (cpuid, or the
 * `kernels` setting), so one binary runs on any x86-64. */
#include "engine/kernels.h"
#include "base/util.h"
#include "engine/blasenv.h"
#include "engine/kernels_x86.h"
#include <stdio.h>
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>


float xl_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
  if (exp == 0) {
    if (!man) u = sign;
    else {   /* subnormal: normalise */
      int e = -1;
      do { e++; man <<= 1; } while (!(man & 0x400));
      u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) u = sign | 0x7f800000u | (man << 13);
  else u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  union { uint32_t u; float f; } v = {u};
  return v.f;
}

uint16_t xl_f32_to_bf16(float f) {
  union { float f; uint32_t u; } v = {f};
  if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);   /* NaN stays NaN */
  uint32_t r = v.u + 0x7fffu + ((v.u >> 16) & 1);
  return (uint16_t)(r >> 16);
}

uint16_t xl_f32_to_f16(float f) {
  union { float f; uint32_t u; } v = {f};
  uint32_t sign = (v.u >> 16) & 0x8000, a = v.u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00);
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);   /* rounds to inf */
  if (a < 0x38800000u) {                                    /* subnormal or zero */
    float m = fabsf(f) * 16777216.0f;                       /* 2^24: units of the smallest subnormal */
    return (uint16_t)(sign | (uint32_t)lrintf(m));
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1);
  return (uint16_t)(sign | ((r - (112u << 23)) >> 13));
}

/* ---- variants ---- */

static const char *const kernel_names[XL_KERNELS_COUNT] = {"auto", "avx512", "avx2", "scalar", "avx512bf16"};

const char *xl_kernels_name(xl_kernels k) { return (unsigned)k < XL_KERNELS_COUNT ? kernel_names[k] : "?"; }

int xl_kernels_parse(const char *s, xl_kernels *k) {
  for (int i = 0; i < XL_KERNELS_COUNT; i++)
    if (!strcmp(s, kernel_names[i])) { *k = (xl_kernels)i; return 0; }
  return -1;
}

int xl_kernels_supported(xl_kernels k) {
  switch (k) {
  case XL_KERNELS_AVX512: return __builtin_cpu_supports("avx512f");
  case XL_KERNELS_AVX512BF16: {
    xl_cpu_feats f;
    xl_cpu_features(&f);
    return f.avx512bf16;
  }
  case XL_KERNELS_AVX2: {
    xl_cpu_feats f;   /* cpuid + the OS's saved YMM state */
    xl_cpu_features(&f);
    return f.avx2 && f.fma && f.f16c;
  }
  default: return 1;
  }
}

xl_kernels xl_kernels_best(void) {
  if (xl_kernels_supported(XL_KERNELS_AVX512BF16)) return XL_KERNELS_AVX512BF16;
  if (xl_kernels_supported(XL_KERNELS_AVX512)) return XL_KERNELS_AVX512;
  if (xl_kernels_supported(XL_KERNELS_AVX2)) return XL_KERNELS_AVX2;
  return XL_KERNELS_SCALAR;
}

static int active = -1;   /* xl_kernels, resolved on first use */

static inline xl_kernels kset(void) {
  if (active < 0) active = (int)xl_kernels_best();
  return (xl_kernels)active;
}

int xl_kernels_select(xl_kernels k, char *err, size_t errlen) {
  if (k == XL_KERNELS_AUTO) k = xl_kernels_best();
  if (!xl_kernels_supported(k)) {
    snprintf(err, errlen, "--kernels %s: this CPU lacks the %s instructions (best here: %s)", xl_kernels_name(k),
             k == XL_KERNELS_AVX512 ? "AVX-512" : k == XL_KERNELS_AVX512BF16 ? "AVX512-BF16" : "AVX2/FMA/F16C",
             xl_kernels_name(xl_kernels_best()));
    return -1;
  }
  active = (int)k;
  return 0;
}

xl_kernels xl_kernels_active(void) { return kset(); }

static inline int use_avx512(void) { return kset() == XL_KERNELS_AVX512 || kset() == XL_KERNELS_AVX512BF16; }

/* Widening 16 at a time (the GEMM tiles convert millions of weights per segment). */
__attribute__((target("avx512f"))) static void to_f32_avx512(st_dtype t, const uint16_t *s, float *dst, size_t n) {
  size_t i = 0;
  if (t == ST_BF16)
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i))), 16)));
  else
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))));
  for (; i < n; i++) dst[i] = t == ST_BF16 ? xl_bf16_to_f32(s[i]) : xl_f16_to_f32(s[i]);
}

void xl_to_f32(st_dtype t, const void *src, float *dst, size_t n) {
  if (t == ST_F32) { memcpy(dst, src, n * sizeof(float)); return; }
  if (use_avx512()) { to_f32_avx512(t, src, dst, n); return; }
  if (kset() == XL_KERNELS_AVX2) { xl_to_f32_avx2(t, src, dst, n); return; }
  const uint16_t *s = src;
  if (t == ST_BF16) for (size_t i = 0; i < n; i++) dst[i] = xl_bf16_to_f32(s[i]);
  else for (size_t i = 0; i < n; i++) dst[i] = xl_f16_to_f32(s[i]);
}

void xl_mat_row(const xl_mat *w, int row, float *dst) {
  size_t es = st_dtype_size(w->dtype);
  xl_to_f32(w->dtype, (const char *)w->data + (size_t)row * w->cols * es, dst, (size_t)w->cols);
}

/* ---- dot products: one row of W against x ---- */

static float dot_f32_scalar(const float *w, const float *x, int n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int j = 0;
  for (; j + 4 <= n; j += 4) { s0 += w[j] * x[j]; s1 += w[j + 1] * x[j + 1]; s2 += w[j + 2] * x[j + 2]; s3 += w[j + 3] * x[j + 3]; }
  for (; j < n; j++) s0 += w[j] * x[j];
  return (s0 + s1) + (s2 + s3);
}
static float dot_bf16_scalar(const uint16_t *w, const float *x, int n) {
  float s0 = 0, s1 = 0;
  int j = 0;
  for (; j + 2 <= n; j += 2) { s0 += xl_bf16_to_f32(w[j]) * x[j]; s1 += xl_bf16_to_f32(w[j + 1]) * x[j + 1]; }
  for (; j < n; j++) s0 += xl_bf16_to_f32(w[j]) * x[j];
  return s0 + s1;
}
static float dot_f16_scalar(const uint16_t *w, const float *x, int n) {
  float s = 0;
  for (int j = 0; j < n; j++) s += xl_f16_to_f32(w[j]) * x[j];
  return s;
}

__attribute__((target("avx512f"))) static float dot_f32_avx512(const float *w, const float *x, int n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int j = 0;
  for (; j + 32 <= n; j += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j + 16), _mm512_loadu_ps(x + j + 16), a1);
  }
  for (; j + 16 <= n; j += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), a0);
  if (j < n) {
    __mmask16 m = (__mmask16)((1u << (n - j)) - 1);
    a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + j), _mm512_maskz_loadu_ps(m, x + j), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}
__attribute__((target("avx512f"))) static inline __m512 bf16x16(const uint16_t *p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
__attribute__((target("avx512f"))) static float dot_bf16_avx512(const uint16_t *w, const float *x, int n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int j = 0;
  for (; j + 32 <= n; j += 32) {
    a0 = _mm512_fmadd_ps(bf16x16(w + j), _mm512_loadu_ps(x + j), a0);
    a1 = _mm512_fmadd_ps(bf16x16(w + j + 16), _mm512_loadu_ps(x + j + 16), a1);
  }
  for (; j + 16 <= n; j += 16) a0 = _mm512_fmadd_ps(bf16x16(w + j), _mm512_loadu_ps(x + j), a0);
  float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
  for (; j < n; j++) s += xl_bf16_to_f32(w[j]) * x[j];
  return s;
}
__attribute__((target("avx512f"))) static float dot_f16_avx512(const uint16_t *w, const float *x, int n) {
  __m512 a0 = _mm512_setzero_ps();
  int j = 0;
  for (; j + 16 <= n; j += 16)
    a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + j))), _mm512_loadu_ps(x + j), a0);
  float s = _mm512_reduce_add_ps(a0);
  for (; j < n; j++) s += xl_f16_to_f32(w[j]) * x[j];
  return s;
}

/* ---- multi-row matvec kernels (AVX-512) ----
 * Decode is bound by reading the weights once per token, so the kernels work on 4 rows at a
 * time: each x vector loaded from L1 feeds 4 FMAs, 4 independent weight streams keep the
 * memory system busy, and the horizontal sums are paid once per 4 rows.
 * BF16: a 512-bit load holds 32 weights; shifting each 32-bit lane left by 16 gives the even
 * elements as fp32 and masking the low half gives the odd ones, so no cross-lane widening
 * is needed. x is permuted once per call into the matching even/odd layout (xp). */

enum { XP_MAX = 1 << 16 };
/* Software prefetch distance in weights (512 bytes = 8 lines ahead on each of the 4 rows):
 * worth ~5-10% of single-core bandwidth here on top of the hardware prefetcher. */
#ifndef XL_PF
#define XL_PF 256
#endif   /* columns up to which xp lives on the stack (256 KB) */

__attribute__((target("avx512f"))) static void permute_even_odd(const float *x, float *xp, int nb) {
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int j = 0; j < nb; j += 32) {
    __m512 a = _mm512_loadu_ps(x + j), b = _mm512_loadu_ps(x + j + 16);
    _mm512_storeu_ps(xp + j, _mm512_permutex2var_ps(a, ie, b));
    _mm512_storeu_ps(xp + j + 16, _mm512_permutex2var_ps(a, io, b));
  }
}

__attribute__((target("avx512f"))) static inline void bf16_pair(__m512i w, __m512 *even, __m512 *odd) {
  *even = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  *odd = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xffff0000u)));
}

__attribute__((target("avx512f"))) static void matvec_bf16_avx512(const uint16_t *W, int n, const float *x, float *y, int r0, int r1) {
  int nb = n & ~31;
  if (n > XP_MAX) {
    for (int r = r0; r < r1; r++) y[r] = dot_bf16_avx512(W + (size_t)r * n, x, n);
    return;
  }
  float xp[nb > 0 ? nb : 1];
  permute_even_odd(x, xp, nb);
  int r = r0;
  for (; r + 4 <= r1; r += 4) {
    const uint16_t *w0 = W + (size_t)r * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int j = 0; j < nb; j += 32) {
      __m512 xe = _mm512_loadu_ps(xp + j), xo = _mm512_loadu_ps(xp + j + 16), e, o;
#if XL_PF > 0
      _mm_prefetch((const char *)(w0 + j + XL_PF), _MM_HINT_T0); _mm_prefetch((const char *)(w1 + j + XL_PF), _MM_HINT_T0);
      _mm_prefetch((const char *)(w2 + j + XL_PF), _MM_HINT_T0); _mm_prefetch((const char *)(w3 + j + XL_PF), _MM_HINT_T0);
#endif
      bf16_pair(_mm512_loadu_si512(w0 + j), &e, &o);
      a0 = _mm512_fmadd_ps(e, xe, a0); b0 = _mm512_fmadd_ps(o, xo, b0);
      bf16_pair(_mm512_loadu_si512(w1 + j), &e, &o);
      a1 = _mm512_fmadd_ps(e, xe, a1); b1 = _mm512_fmadd_ps(o, xo, b1);
      bf16_pair(_mm512_loadu_si512(w2 + j), &e, &o);
      a2 = _mm512_fmadd_ps(e, xe, a2); b2 = _mm512_fmadd_ps(o, xo, b2);
      bf16_pair(_mm512_loadu_si512(w3 + j), &e, &o);
      a3 = _mm512_fmadd_ps(e, xe, a3); b3 = _mm512_fmadd_ps(o, xo, b3);
    }
    float s[4] = {_mm512_reduce_add_ps(_mm512_add_ps(a0, b0)), _mm512_reduce_add_ps(_mm512_add_ps(a1, b1)),
                  _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)), _mm512_reduce_add_ps(_mm512_add_ps(a3, b3))};
    for (int j = nb; j < n; j++) {
      s[0] += xl_bf16_to_f32(w0[j]) * x[j]; s[1] += xl_bf16_to_f32(w1[j]) * x[j];
      s[2] += xl_bf16_to_f32(w2[j]) * x[j]; s[3] += xl_bf16_to_f32(w3[j]) * x[j];
    }
    y[r] = s[0]; y[r + 1] = s[1]; y[r + 2] = s[2]; y[r + 3] = s[3];
  }
  for (; r < r1; r++) {
    const uint16_t *w0 = W + (size_t)r * n;
    __m512 a0 = _mm512_setzero_ps(), b0 = a0, e, o;
    for (int j = 0; j < nb; j += 32) {
      bf16_pair(_mm512_loadu_si512(w0 + j), &e, &o);
      a0 = _mm512_fmadd_ps(e, _mm512_loadu_ps(xp + j), a0);
      b0 = _mm512_fmadd_ps(o, _mm512_loadu_ps(xp + j + 16), b0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
    for (int j = nb; j < n; j++) s += xl_bf16_to_f32(w0[j]) * x[j];
    y[r] = s;
  }
}

__attribute__((target("avx512f"))) static void matvec_f32_avx512(const float *W, int n, const float *x, float *y, int r0, int r1) {
  int nb = n & ~15, r = r0;
  __mmask16 tm = (__mmask16)((1u << (n - nb)) - 1);
  for (; r + 4 <= r1; r += 4) {
    const float *w0 = W + (size_t)r * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int j = 0; j < nb; j += 16) {
      __m512 xv = _mm512_loadu_ps(x + j);
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + j), xv, a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + j), xv, a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + j), xv, a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + j), xv, a3);
    }
    if (tm) {
      __m512 xv = _mm512_maskz_loadu_ps(tm, x + nb);
      a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w0 + nb), xv, a0);
      a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w1 + nb), xv, a1);
      a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w2 + nb), xv, a2);
      a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w3 + nb), xv, a3);
    }
    y[r] = _mm512_reduce_add_ps(a0); y[r + 1] = _mm512_reduce_add_ps(a1);
    y[r + 2] = _mm512_reduce_add_ps(a2); y[r + 3] = _mm512_reduce_add_ps(a3);
  }
  for (; r < r1; r++) y[r] = dot_f32_avx512(W + (size_t)r * n, x, n);
}

__attribute__((target("avx512f"))) static void matvec_f16_avx512(const uint16_t *W, int n, const float *x, float *y, int r0, int r1) {
  int nb = n & ~15, r = r0;
  for (; r + 4 <= r1; r += 4) {
    const uint16_t *w0 = W + (size_t)r * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int j = 0; j < nb; j += 16) {
      __m512 xv = _mm512_loadu_ps(x + j);
      a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w0 + j))), xv, a0);
      a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w1 + j))), xv, a1);
      a2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w2 + j))), xv, a2);
      a3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w3 + j))), xv, a3);
    }
    float s[4] = {_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2), _mm512_reduce_add_ps(a3)};
    for (int j = nb; j < n; j++) {
      s[0] += xl_f16_to_f32(w0[j]) * x[j]; s[1] += xl_f16_to_f32(w1[j]) * x[j];
      s[2] += xl_f16_to_f32(w2[j]) * x[j]; s[3] += xl_f16_to_f32(w3[j]) * x[j];
    }
    y[r] = s[0]; y[r + 1] = s[1]; y[r + 2] = s[2]; y[r + 3] = s[3];
  }
  for (; r < r1; r++) y[r] = dot_f16_avx512(W + (size_t)r * n, x, n);
}

void xl_matvec_rows(const xl_mat *w, const float *x, float *y, int r0, int r1) {
  int n = w->cols;
  if (r1 <= r0) return;
  if (use_avx512()) {
    if (w->dtype == ST_F32) matvec_f32_avx512(w->data, n, x, y, r0, r1);
    else if (w->dtype == ST_BF16) matvec_bf16_avx512(w->data, n, x, y, r0, r1);
    else matvec_f16_avx512(w->data, n, x, y, r0, r1);
    return;
  }
  if (kset() == XL_KERNELS_AVX2) {
    if (w->dtype == ST_F32) xl_matvec_f32_avx2(w->data, n, x, y, r0, r1);
    else if (w->dtype == ST_BF16) xl_matvec_bf16_avx2(w->data, n, x, y, r0, r1);
    else xl_matvec_f16_avx2(w->data, n, x, y, r0, r1);
    return;
  }
  if (w->dtype == ST_F32) {
    const float *W = w->data;
    for (int r = r0; r < r1; r++) y[r] = dot_f32_scalar(W + (size_t)r * n, x, n);
  } else if (w->dtype == ST_BF16) {
    const uint16_t *W = w->data;
    for (int r = r0; r < r1; r++) y[r] = dot_bf16_scalar(W + (size_t)r * n, x, n);
  } else {
    const uint16_t *W = w->data;
    for (int r = r0; r < r1; r++) y[r] = dot_f16_scalar(W + (size_t)r * n, x, n);
  }
}

/* ---- GEMM ---- */

#ifndef XL_TILE_FLOATS
#define XL_TILE_FLOATS (1 << 20)   /* 4 MB of converted weights per tile: amortises the conversion */
#endif
enum { TILE_FLOATS = XL_TILE_FLOATS };

int xl_gemm_tile_rows(const xl_mat *w) {
  int r = TILE_FLOATS / (w->cols ? w->cols : 1);
  if (r < 16) r = 16;
  if (r > w->rows) r = w->rows;
  return r;
}
size_t xl_gemm_tile_floats(const xl_mat *w) {
  return w->dtype == ST_F32 ? 0 : (size_t)xl_gemm_tile_rows(w) * (size_t)w->cols;
}

void xl_gemm_rows(const xl_mat *w, const float *X, int T, int ldx, float *Y, int ldy, int r0, int r1, float *tile) {
  if (r1 <= r0 || T <= 0) return;
  if (w->dtype == ST_F32) {
    const float *W = (const float *)w->data + (size_t)r0 * w->cols;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, r1 - r0, w->cols, 1.0f, X, ldx, W, w->cols, 0.0f, Y + r0, ldy);
    return;
  }
  if (T <= XL_SMALL_T) {
    /* a block of 32 rows stays in L2 while each token's matvec reads it */
    for (int a = r0; a < r1; a += 32) {
      int b = a + 32 < r1 ? a + 32 : r1;
      for (int t = 0; t < T; t++) xl_matvec_rows(w, X + (size_t)t * ldx, Y + (size_t)t * ldy, a, b);
    }
    return;
  }
  int tr = xl_gemm_tile_rows(w);
  size_t es = st_dtype_size(w->dtype);
  for (int a = r0; a < r1; a += tr) {
    int b = a + tr < r1 ? a + tr : r1;
    xl_to_f32(w->dtype, (const char *)w->data + (size_t)a * w->cols * es, tile, (size_t)(b - a) * w->cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, b - a, w->cols, 1.0f, X, ldx, tile, w->cols, 0.0f, Y + a, ldy);
  }
}

__attribute__((target("avx512f"))) static void round_bf16_avx512(float *x, size_t n) {
  const __m512i lsb = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff), hi = _mm512_set1_epi32((int)0xffff0000u),
                abs = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000), quiet = _mm512_set1_epi32(0x400000);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i u = _mm512_castps_si512(_mm512_loadu_ps(x + i));
    __m512i r = _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(u, half), _mm512_and_si512(_mm512_srli_epi32(u, 16), lsb)), hi);
    __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, abs), inf);
    r = _mm512_mask_or_epi32(r, nan, _mm512_and_si512(u, hi), quiet);
    _mm512_storeu_ps(x + i, _mm512_castsi512_ps(r));
  }
  for (; i < n; i++) x[i] = xl_bf16_to_f32(xl_f32_to_bf16(x[i]));
}

void xl_round_bf16(float *x, size_t n) {
  if (use_avx512()) { round_bf16_avx512(x, n); return; }
  if (kset() == XL_KERNELS_AVX2) { xl_round_bf16_avx2(x, n); return; }
  for (size_t i = 0; i < n; i++) x[i] = xl_bf16_to_f32(xl_f32_to_bf16(x[i]));
}

/* ---- the cell step's state update (see kernels.h) ---- */

static void cell_cols_scalar(int DK, int DV, float fa, float ia, float qscale, const float *q, const float *k, const float *v, float *C,
                             float *h, int d0, int d1) {
  memset(h + d0, 0, sizeof(float) * (size_t)(d1 - d0));
  for (int j = 0; j < DK; j++) {
    float kj = ia * k[j], qj = q[j] * qscale, *Cj = C + (size_t)j * DV;
    for (int d = d0; d < d1; d++) {
      Cj[d] = fa * Cj[d] + kj * v[d];
      h[d] += qj * Cj[d];
    }
  }
}

/* 16 columns at a time, h in registers across the j loop; _mm512_mul/add (not fmadd): the
 * scalar code's roundings */
__attribute__((target("avx512f"), optimize("fp-contract=off"))) static void cell_cols_avx512(int DK, int DV, float fa, float ia, float qscale, const float *q,
                                                               const float *k, const float *v, float *C, float *h, int d0, int d1) {
  int d = d0;
  __m512 vfa = _mm512_set1_ps(fa);
  for (; d + 32 <= d1; d += 32) {
    __m512 h0 = _mm512_setzero_ps(), h1 = h0, v0 = _mm512_loadu_ps(v + d), v1 = _mm512_loadu_ps(v + d + 16);
    for (int j = 0; j < DK; j++) {
      float *Cj = C + (size_t)j * DV + d;
      __m512 kj = _mm512_set1_ps(ia * k[j]), qj = _mm512_set1_ps(q[j] * qscale);
      __m512 c0 = _mm512_add_ps(_mm512_mul_ps(vfa, _mm512_loadu_ps(Cj)), _mm512_mul_ps(kj, v0));
      __m512 c1 = _mm512_add_ps(_mm512_mul_ps(vfa, _mm512_loadu_ps(Cj + 16)), _mm512_mul_ps(kj, v1));
      _mm512_storeu_ps(Cj, c0);
      _mm512_storeu_ps(Cj + 16, c1);
      h0 = _mm512_add_ps(h0, _mm512_mul_ps(qj, c0));
      h1 = _mm512_add_ps(h1, _mm512_mul_ps(qj, c1));
    }
    _mm512_storeu_ps(h + d, h0);
    _mm512_storeu_ps(h + d + 16, h1);
  }
  for (; d + 16 <= d1; d += 16) {
    __m512 h0 = _mm512_setzero_ps(), v0 = _mm512_loadu_ps(v + d);
    for (int j = 0; j < DK; j++) {
      float *Cj = C + (size_t)j * DV + d;
      __m512 c0 = _mm512_add_ps(_mm512_mul_ps(vfa, _mm512_loadu_ps(Cj)), _mm512_mul_ps(_mm512_set1_ps(ia * k[j]), v0));
      _mm512_storeu_ps(Cj, c0);
      h0 = _mm512_add_ps(h0, _mm512_mul_ps(_mm512_set1_ps(q[j] * qscale), c0));
    }
    _mm512_storeu_ps(h + d, h0);
  }
  if (d < d1) cell_cols_scalar(DK, DV, fa, ia, qscale, q, k, v, C, h, d, d1);
}

void xl_cell_state_cols(int DK, int DV, float fa, float ia, float qscale, const float *q, const float *k, const float *v, float *C,
                        float *h, int d0, int d1) {
  if (d1 <= d0) return;
  if (use_avx512()) cell_cols_avx512(DK, DV, fa, ia, qscale, q, k, v, C, h, d0, d1);
  else if (kset() == XL_KERNELS_AVX2) xl_cell_cols_avx2(DK, DV, fa, ia, qscale, q, k, v, C, h, d0, d1);
  else cell_cols_scalar(DK, DV, fa, ia, qscale, q, k, v, C, h, d0, d1);
}

void xl_mean_rstd(const float *x, int n, float eps, float *mu, float *rstd) {
  double mean = 0, var = 0;
  for (int i = 0; i < n; i++) mean += x[i];
  mean /= n;
  for (int i = 0; i < n; i++) { double d = x[i] - mean; var += d * d; }
  var /= n;
  *rstd = 1.0f / sqrtf((float)var + eps);
  *mu = (float)mean;
}
