/* Every CPU kernel variant this machine runs (AVX-512, AVX2+FMA, plain C), forced one at a
 * time through xl_kernels_select / the `kernels` setting, against references:
 *   conversion: every one of the 65536 BF16 and F16 bit patterns, at odd lengths and
 *     offsets, bit-identical to the scalar decoders (NaN stays NaN);
 *   matvec (xl_matvec_rows) and GEMM (xl_gemm_rows: the short-prompt matvec path and the
 *     fp32 tile path) for F32, BF16 and F16 weights of odd shapes, full and partial row
 *     ranges (rows outside the range untouched), against a double-precision reference
 *     computed from the same (decoded) weights: max |y - ref| / sum_j |w_j x_j| <= 1e-6
 *     (16 units of fp32 rounding; a dropped or doubled element costs >= 1/cols >= 2e-4);
 *     and every SIMD variant against the scalar variant with the same bound;
 *   the engine: the golden logits of the default model and of every fixture (both
 *     architectures) under each variant, chunkwise prefill and token steps, within the
 *     golden tolerances (max |diff| <= 2e-3, mean <= 2e-4; docs/xlstm-math.md).
 * A variant this CPU lacks is reported as skipped. */
#include "engine/engine.h"
#include "engine/libgemm.h"
#include "engine/kernels.h"
#include "io/safetensors.h"
#include "goldenlib.h"
#include "testlib.h"
#include "base/util.h"
#include <math.h>

#ifdef __SANITIZE_ADDRESS__
/* Under make check: oneDNN (dlopen'd for the BF16-unit GEMMs) leaves OpenMP threads whose
 * dynamic TLS LeakSanitizer (GCC 12's) misreads at exit and crashes on ("Tracer caught
 * signal 11", DTLS of a garbage range). Leak scanning skips TLS in this program, and the two
 * blocks glibc keeps for dlerror() (a failed dlsym of cblas_sbgemm) are not leaks. */
const char *__lsan_default_options(void);
const char *__lsan_default_suppressions(void);
const char *__lsan_default_options(void) { return "use_tls=0"; }
const char *__lsan_default_suppressions(void) { return "leak:_dlerror_run\nleak:_dl_exception_create\n"; }
#endif

static const xl_kernels variants[] = {XL_KERNELS_SCALAR, XL_KERNELS_AVX2, XL_KERNELS_AVX512, XL_KERNELS_AVX512BF16};
enum { NVAR = sizeof variants / sizeof *variants };

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static float urand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }   /* [-1, 1] */

static int same_bits_or_nan(float a, float b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  return !memcmp(&a, &b, sizeof a);
}

static void select_or_die(xl_kernels k) {
  char err[256];
  if (xl_kernels_select(k, err, sizeof err)) { printf("not ok - select %s: %s\n", xl_kernels_name(k), err); exit(1); }
}

/* ---- conversion ---- */

static void test_convert(xl_kernels k) {
  enum { N = 65536 + 37 };
  uint16_t *src = xl_malloc(sizeof(uint16_t) * N);
  float *got = xl_malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) src[i] = (uint16_t)(i * 40503u);   /* odd multiplier: a permutation of all patterns */
  for (int dt = 0; dt < 2; dt++) {
    st_dtype t = dt ? ST_F16 : ST_BF16;
    int bad = 0;
    const size_t lens[] = {N, 1, 7, 15, 17, 33, 1001};
    const size_t offs[] = {0, 3, 1, 5, 0, 9, 11};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
      size_t n = lens[li], off = offs[li];
      if (off + n > N) n = N - off;
      for (size_t i = 0; i < n + 1 && off + i < N; i++) got[off + i] = -12345.0f;   /* sentinel past the end */
      xl_to_f32(t, src + off, got + off, n);
      for (size_t i = 0; i < n; i++) {
        float ref = t == ST_BF16 ? xl_bf16_to_f32(src[off + i]) : xl_f16_to_f32(src[off + i]);
        if (!same_bits_or_nan(got[off + i], ref)) bad++;
      }
      if (off + n < N && got[off + n] != -12345.0f) bad++;
    }
    CHECK(!bad, "%s: %s -> f32 of all 65536 patterns at odd lengths/offsets bit-identical to the scalar decoder (%d wrong)",
          xl_kernels_name(k), dt ? "F16" : "BF16", bad);
  }
  free(src);
  free(got);
}

/* rounding to bf16: every variant gives xl_f32_to_bf16's bits, for random values of every
 * magnitude and the special ones (ties, denormals, infinities, NaNs, overflow to inf) */
static void test_round(xl_kernels k) {
  enum { N = 200003 };
  float *x = xl_malloc(sizeof(float) * N), *y = xl_malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) {
    uint32_t u = rnd() << 16 ^ rnd();
    if (i % 7 == 0) u = (u & 0xffff0000u) | 0x8000u;   /* exact ties */
    if (i % 11 == 0) u &= 0x807fffffu;                /* denormals */
    memcpy(&x[i], &u, 4);
  }
  const uint32_t special[] = {0x7f800000u, 0xff800000u, 0x7fc00001u, 0x7f800001u, 0xffffffffu, 0x7f7fffffu, 0xff7fffffu, 0, 0x80000000u, 0x00008000u, 0x3f808000u, 0x3f818000u};
  for (size_t i = 0; i < sizeof special / sizeof *special; i++) memcpy(&x[i * 13 + 1], &special[i], 4);
  memcpy(y, x, sizeof(float) * N);
  xl_round_bf16(y, N);
  int bad = 0;
  for (int i = 0; i < N; i++) {
    float r = xl_bf16_to_f32(xl_f32_to_bf16(x[i]));
    if (memcmp(&r, &y[i], 4)) bad++;
  }
  CHECK(!bad, "%s: xl_round_bf16 of %d values (ties, denormals, inf, NaN, overflow) bit-identical to xl_f32_to_bf16 (%d differ)",
        xl_kernels_name(k), N, bad);
  free(x), free(y);
}

/* the cell step's state update over column ranges: the scalar variant's bits, for odd sizes
 * and column ranges, C and h both */
static void test_cell_cols(xl_kernels k) {
  const int dims[][2] = {{1, 1}, {3, 17}, {32, 64}, {7, 33}, {64, 100}, {256, 512}};
  int bad = 0, outside = 0;
  for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
    int DK = dims[di][0], DV = dims[di][1];
    float *q = xl_malloc(sizeof(float) * DK), *kk = xl_malloc(sizeof(float) * DK), *v = xl_malloc(sizeof(float) * DV);
    float *C0 = xl_malloc(sizeof(float) * DK * DV), *C1 = xl_malloc(sizeof(float) * DK * DV), *C2 = xl_malloc(sizeof(float) * DK * DV);
    float *h1 = xl_malloc(sizeof(float) * DV), *h2 = xl_malloc(sizeof(float) * DV);
    for (int j = 0; j < DK; j++) q[j] = urand(), kk[j] = urand();
    for (int d = 0; d < DV; d++) v[d] = urand();
    for (int i = 0; i < DK * DV; i++) C0[i] = urand();
    const int ranges[][2] = {{0, DV}, {1, DV}, {DV / 3, DV - DV / 5}, {DV - 1, DV}};
    for (int r = 0; r < 4; r++) {
      int d0 = ranges[r][0], d1 = ranges[r][1];
      if (d0 < 0 || d0 > d1) continue;
      memcpy(C1, C0, sizeof(float) * DK * DV), memcpy(C2, C0, sizeof(float) * DK * DV);
      for (int d = 0; d < DV; d++) h1[d] = h2[d] = 555.0f;
      select_or_die(XL_KERNELS_SCALAR);
      xl_cell_state_cols(DK, DV, 0.93f, 0.37f, 0.125f, q, kk, v, C1, h1, d0, d1);
      select_or_die(k);
      xl_cell_state_cols(DK, DV, 0.93f, 0.37f, 0.125f, q, kk, v, C2, h2, d0, d1);
      bad += memcmp(C1, C2, sizeof(float) * DK * DV) != 0 || memcmp(h1, h2, sizeof(float) * DV) != 0;
      for (int d = 0; d < DV; d++) if ((d < d0 || d >= d1) && h2[d] != 555.0f) outside++;
      for (int j = 0; j < DK; j++)
        for (int d = 0; d < DV; d++) if ((d < d0 || d >= d1) && C2[(size_t)j * DV + d] != C0[(size_t)j * DV + d]) outside++;
    }
    free(q), free(kk), free(v), free(C0), free(C1), free(C2), free(h1), free(h2);
  }
  CHECK(!bad && !outside, "%s: cell state update over column ranges (6 shapes x 4 ranges) bit-identical to the scalar code (%d differ, %d written outside)",
        xl_kernels_name(k), bad, outside);
}

/* ---- matvec / GEMM ---- */

typedef struct {
  st_dtype t;
  int R, Cn;
  void *data;     /* stored weights */
  double *wd;     /* the same weights decoded, [R, Cn] */
  xl_mat m;
} tmat;

static void tmat_make(tmat *a, st_dtype t, int R, int Cn) {
  a->t = t, a->R = R, a->Cn = Cn;
  size_t n = (size_t)R * Cn;
  a->data = xl_malloc(n * (t == ST_F32 ? 4 : 2) + 64);
  a->wd = xl_malloc(sizeof(double) * n);
  for (size_t i = 0; i < n; i++) {
    float v = urand();
    if (t == ST_F32) { ((float *)a->data)[i] = v; a->wd[i] = v; }
    else if (t == ST_BF16) { uint16_t h = xl_f32_to_bf16(v); ((uint16_t *)a->data)[i] = h; a->wd[i] = xl_bf16_to_f32(h); }
    else { uint16_t h = xl_f32_to_f16(v); ((uint16_t *)a->data)[i] = h; a->wd[i] = xl_f16_to_f32(h); }
  }
  a->m = (xl_mat){t, R, Cn, a->data};
}
static void tmat_free(tmat *a) { free(a->data); free(a->wd); }

/* the worst |y - ref| / sum |w x| over rows [r0, r1) of token row x */
static double rel_err(const tmat *a, const float *x, const float *y, int r0, int r1) {
  double worst = 0;
  for (int r = r0; r < r1; r++) {
    double s = 0, mag = 0;
    for (int j = 0; j < a->Cn; j++) { double p = a->wd[(size_t)r * a->Cn + j] * x[j]; s += p; mag += fabs(p); }
    double e = fabs(y[r] - s) / (mag > 0 ? mag : 1e-30);
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

static double rel_vs(const float *a, const float *b, const tmat *w, const float *x, int r0, int r1) {
  double worst = 0;
  for (int r = r0; r < r1; r++) {
    double mag = 0;
    for (int j = 0; j < w->Cn; j++) mag += fabs(w->wd[(size_t)r * w->Cn + j] * x[j]);
    double e = fabs((double)a[r] - b[r]) / (mag > 0 ? mag : 1e-30);
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

static const char *dname(st_dtype t) { return t == ST_F32 ? "F32" : t == ST_BF16 ? "BF16" : "F16"; }

static const int shapes[][2] = {{1, 1}, {3, 5}, {4, 16}, {7, 17}, {13, 31}, {9, 32}, {33, 100}, {67, 257}, {130, 1000}, {5, 4099}, {21, 2048}};
enum { NSHAPE = sizeof shapes / sizeof *shapes };
static const double BOUND = 1e-6;

static void test_matvec(xl_kernels k) {
  const st_dtype dts[] = {ST_F32, ST_BF16, ST_F16};
  for (int di = 0; di < 3; di++) {
    double worst = 0, worst_vs = 0;
    int outside = 0;
    for (int si = 0; si < NSHAPE; si++) {
      tmat a;
      tmat_make(&a, dts[di], shapes[si][0], shapes[si][1]);
      float *x = xl_malloc(sizeof(float) * a.Cn), *y = xl_malloc(sizeof(float) * a.R), *ys = xl_malloc(sizeof(float) * a.R);
      for (int j = 0; j < a.Cn; j++) x[j] = urand();
      select_or_die(XL_KERNELS_SCALAR);
      xl_matvec_rows(&a.m, x, ys, 0, a.R);
      select_or_die(k);
      xl_matvec_rows(&a.m, x, y, 0, a.R);
      worst = fmax(worst, rel_err(&a, x, y, 0, a.R));
      worst_vs = fmax(worst_vs, rel_vs(y, ys, &a, x, 0, a.R));
      /* partial ranges, odd starts: only [r0, r1) written */
      const int rr[][2] = {{1, a.R}, {0, a.R / 2}, {a.R / 3, a.R - a.R / 4}, {a.R - 1, a.R}};
      for (int q = 0; q < 4; q++) {
        int r0 = rr[q][0], r1 = rr[q][1];
        if (r0 < 0 || r1 > a.R || r0 > r1) continue;
        for (int r = 0; r < a.R; r++) y[r] = 777.0f;
        xl_matvec_rows(&a.m, x, y, r0, r1);
        for (int r = 0; r < a.R; r++) if ((r < r0 || r >= r1) && y[r] != 777.0f) outside++;
        worst = fmax(worst, rel_err(&a, x, y, r0, r1));
      }
      free(x), free(y), free(ys);
      tmat_free(&a);
    }
    CHECK(worst <= BOUND && !outside, "%s: matvec %s, %d odd shapes, full and partial row ranges: max rel err %.2e <= %.0e, rows outside the range untouched (%d written)",
          xl_kernels_name(k), dname(dts[di]), NSHAPE, worst, BOUND, outside);
    CHECK(worst_vs <= BOUND, "%s: matvec %s against the scalar variant: max rel diff %.2e <= %.0e", xl_kernels_name(k), dname(dts[di]),
          worst_vs, BOUND);
  }
}

static void test_gemm(xl_kernels k) {
  const st_dtype dts[] = {ST_F32, ST_BF16, ST_F16};
  const int Ts[] = {1, 5, XL_SMALL_T, XL_SMALL_T + 1, 37};
  for (int di = 0; di < 3; di++) {
    double worst = 0;
    int outside = 0;
    for (int si = 0; si < NSHAPE; si++) {
      tmat a;
      tmat_make(&a, dts[di], shapes[si][0], shapes[si][1]);
      float *tile = xl_malloc(sizeof(float) * (xl_gemm_tile_floats(&a.m) + 1));
      for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++) {
        int T = Ts[ti], ldx = a.Cn + 3, ldy = a.R + 5;
        float *X = xl_malloc(sizeof(float) * (size_t)T * ldx), *Y = xl_malloc(sizeof(float) * (size_t)T * ldy);
        for (size_t i = 0; i < (size_t)T * ldx; i++) X[i] = urand();
        for (size_t i = 0; i < (size_t)T * ldy; i++) Y[i] = 777.0f;
        int r0 = a.R > 2 ? 1 : 0, r1 = a.R;
        select_or_die(k);
        xl_gemm_rows(&a.m, X, T, ldx, Y, ldy, r0, r1, tile);
        for (int t = 0; t < T; t++) {
          worst = fmax(worst, rel_err(&a, X + (size_t)t * ldx, Y + (size_t)t * ldy, r0, r1));
          for (int r = 0; r < ldy; r++)
            if ((r < r0 || r >= r1) && Y[(size_t)t * ldy + r] != 777.0f) outside++;
        }
        free(X), free(Y);
      }
      free(tile);
      tmat_free(&a);
    }
    CHECK(worst <= BOUND && !outside, "%s: gemm %s (T = 1..37: matvec and tile paths), %d odd shapes: max rel err %.2e <= %.0e, nothing outside the rows written (%d)",
          xl_kernels_name(k), dname(dts[di]), NSHAPE, worst, BOUND, outside);
  }
}

/* ---- the engine's golden logits under each variant ---- */

/* gemm: the prefill's fp32 GEMM library (--gemm); its logits are held to the same bounds */
static void golden_model(const char *name, const char *model_dir, const char *gdir, xl_kernels k, xl_gemm gemm) {
  char err[512], path[4096];
  xl_model *m = xl_model_load(model_dir, err, sizeof err);
  CHECK(m != NULL, "%s: %s loads (%s)", xl_kernels_name(k), name, m ? "ok" : err);
  if (!m) return;
  snprintf(path, sizeof path, "%s/golden.safetensors", gdir);
  st_set g;
  if (st_open_file(&g, path, err, sizeof err)) { CHECK(0, "%s: golden file opens (%s)", name, err); xl_model_free(m); return; }
  snprintf(path, sizeof path, "%s/golden.json", gdir);
  gcase cases[16];
  int nc = load_cases(path, cases, 16), V = m->cfg.vocab;
  CHECK(nc > 0, "%s: %d golden cases", name, nc);
  for (int w = 1; w <= 2; w++) {
    xl_runopts o;
    xl_runopts_default(&o, m);
    o.kernels = k;
    o.workers = w;
    o.gemm = gemm;
    xl_session *s = xl_session_new(m, &o, err, sizeof err);
    CHECK(s != NULL && xl_kernels_active() == k, "%s: session with --kernels %s (%s)", name, xl_kernels_name(k), s ? "ok" : err);
    if (!s) continue;
    double pmx = 0, pmean = 0, smx = 0, smean = 0;
    int missing = 0;
    for (int ci = 0; ci < nc; ci++) {
      int T = cases[ci].n;
      char nm[64];
      snprintf(nm, sizeof nm, "case%d.logits", ci);
      const float *ref = golden(&g, nm, (int64_t)T * V);
      snprintf(nm, sizeof nm, "case%d.step_logits", ci);
      const float *sref = golden(&g, nm, (int64_t)T * V);
      if (!ref || !sref) { missing++; continue; }
      float *lg = xl_malloc(sizeof(float) * (size_t)T * V);
      double mx, mean;
      xl_session_reset(s);
      xl_prefill(s, cases[ci].ids, T, lg);
      diff(lg, ref, (size_t)T * V, &mx, &mean);
      pmx = fmax(pmx, mx), pmean = fmax(pmean, mean);
      xl_session_reset(s);
      for (int t = 0; t < T; t++) {
        xl_step(s, cases[ci].ids[t]);
        diff(xl_session_logits(s), sref + (size_t)t * V, (size_t)V, &mx, &mean);
        smx = fmax(smx, mx), smean = fmax(smean, mean);
      }
      free(lg);
    }
    CHECK(!missing && pmx <= 2e-3 && pmean <= 2e-4 && smx <= 2e-3 && smean <= 2e-4,
          "%s --kernels %s --workers %d%s: %d cases, chunkwise logits max %.2e mean %.2e, step logits max %.2e mean %.2e",
          name, xl_kernels_name(k), w, gemm == XL_GEMM_ONEDNN ? " --gemm onednn" : "", nc, pmx, pmean, smx, smean);
    xl_session_free(s);
  }
  for (int ci = 0; ci < nc; ci++) free(cases[ci].ids);
  st_close(&g);
  xl_model_free(m);
}

/* --matmul bf16 against fp32 on the golden cases: the logit difference and how often the
 * greedy (argmax) token agrees, for the emulated path (fp32 SGEMM on bf16 values) and, on a
 * CPU with BF16 units and oneDNN, the units' path. The two bf16 paths differ in fp32
 * summation order only, but each activation is rounded to bf16 before the next product, so
 * a last-bit difference can move a rounding by a bf16 step (2^-8): the units' path is held
 * to the emulated path's distance from fp32 (mean |diff| within 1.5x) and greedy agreement
 * (>= 90%), not to fp32 rounding. */
static float *prefill_logits(xl_model *m, const gcase *gc, int bf16, xl_kernels k) {
  char err[256];
  xl_runopts o;
  xl_runopts_default(&o, m);
  o.matmul_bf16 = bf16, o.kernels = k, o.workers = 2;
  xl_session *s = xl_session_new(m, &o, err, sizeof err);
  if (!s) return NULL;
  float *lg = xl_malloc(sizeof(float) * (size_t)gc->n * m->cfg.vocab);
  xl_prefill(s, gc->ids, gc->n, lg);
  xl_session_free(s);
  return lg;
}

static int argmax(const float *x, int n) {
  int b = 0;
  for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
  return b;
}

static void test_bf16_report(const char *name, const char *model_dir, const char *gdir) {
  char err[512], path[4096];
  xl_model *m = xl_model_load(model_dir, err, sizeof err);
  if (!m) { CHECK(0, "%s loads (%s)", name, err); return; }
  snprintf(path, sizeof path, "%s/golden.json", gdir);
  gcase cases[16];
  int nc = load_cases(path, cases, 16), V = m->cfg.vocab, units = xl_kernels_supported(XL_KERNELS_AVX512BF16) && xl_bf16gemm_available(NULL, 0);
  xl_kernels emu = xl_kernels_supported(XL_KERNELS_AVX512) ? XL_KERNELS_AVX512 : xl_kernels_best();
  double e_mean = 0, e_max = 0, u_mean = 0, u_max = 0, ue_max = 0, ue_mean = 0;
  long agree_e = 0, agree_u = 0, rows = 0;
  for (int ci = 0; ci < nc; ci++) {
    int T = cases[ci].n;
    float *f = prefill_logits(m, &cases[ci], 0, emu), *e = prefill_logits(m, &cases[ci], 1, emu);
    float *u = units ? prefill_logits(m, &cases[ci], 1, XL_KERNELS_AVX512BF16) : NULL;
    double mx, mean;
    diff(e, f, (size_t)T * V, &mx, &mean);
    e_max = fmax(e_max, mx), e_mean += mean * T;
    if (u) {
      diff(u, f, (size_t)T * V, &mx, &mean);
      u_max = fmax(u_max, mx), u_mean += mean * T;
      diff(u, e, (size_t)T * V, &mx, &mean);
      ue_max = fmax(ue_max, mx), ue_mean = fmax(ue_mean, mean);
    }
    for (int t = 0; t < T; t++) {
      int g = argmax(f + (size_t)t * V, V);
      agree_e += argmax(e + (size_t)t * V, V) == g;
      if (u) agree_u += argmax(u + (size_t)t * V, V) == g;
    }
    rows += T;
    free(f), free(e), free(u);
  }
  printf("# bf16 vs fp32 %s: emulated (SGEMM on bf16 values): mean |diff| %.3e, max %.3e, greedy agreement %.4f (%ld positions)\n", name,
         e_mean / rows, e_max, (double)agree_e / rows, rows);
  if (units)
    printf("# bf16 vs fp32 %s: BF16 units (%s): mean |diff| %.3e, max %.3e, greedy agreement %.4f\n", name, xl_bf16gemm_impl(),
           u_mean / rows, u_max, (double)agree_u / rows);
  CHECK(rows > 0 && (double)agree_e / rows >= 0.9, "%s: --matmul bf16 (emulated) picks the fp32 greedy token at %.1f%% of %ld positions (>= 90%%)",
        name, 100.0 * agree_e / rows, rows);
  if (units)
    CHECK(u_mean <= 1.5 * e_mean && (double)agree_u / rows >= 0.9,
          "%s: --matmul bf16 on the BF16 units (%s): mean |diff| from fp32 %.3e <= 1.5 x the emulated path's %.3e, greedy agreement %.1f%% >= 90%% (units vs emulated: max %.2e, mean %.2e)",
          name, xl_bf16gemm_impl(), u_mean / rows, e_mean / rows, 100.0 * agree_u / rows, ue_max, ue_mean);
  else
    printf("ok - %s: --matmul bf16 on BF16 units # SKIP no BF16 units or no oneDNN here\n", name);
  for (int ci = 0; ci < nc; ci++) free(cases[ci].ids);
  xl_model_free(m);
}

static void test_golden(xl_kernels k, xl_gemm gemm) {
  char md[4096], gd[4096];
  const char *fx[] = {"fixtures/m128-f32", "fixtures/m128-bias-bf16-sharded", "fixtures/m256-fused", "fixtures-v1/v1-m-only",
                      "fixtures-v1/v1-m-s-m-s"};
  for (size_t i = 0; i < sizeof fx / sizeof *fx; i++) {
    snprintf(md, sizeof md, "%s/%s", tl_golden_dir(), fx[i]);
    golden_model(fx[i], md, md, k, gemm);
  }
  const char *root = getenv("XL_ROOT");
  snprintf(md, sizeof md, "%s/models/xlstm-tiny-pydocs", root ? root : ".");
  snprintf(gd, sizeof gd, "%s/xlstm-tiny-pydocs", tl_golden_dir());
  golden_model("xlstm-tiny-pydocs", md, gd, k, gemm);
}

int main(void) {
  xl_kernels k;
  int names_ok = 1;
  for (int i = 0; i < XL_KERNELS_COUNT; i++)
    names_ok &= !xl_kernels_parse(xl_kernels_name((xl_kernels)i), &k) && k == (xl_kernels)i;
  CHECK(names_ok && xl_kernels_parse("sse", &k) != 0, "variant names parse back; unknown names are refused");
  xl_kernels best = xl_kernels_best();
  CHECK(xl_kernels_supported(best) && best != XL_KERNELS_AUTO, "auto picks %s here", xl_kernels_name(best));
  char err[256];
  CHECK(!xl_kernels_select(XL_KERNELS_AUTO, err, sizeof err) && xl_kernels_active() == best, "selecting auto runs %s", xl_kernels_name(best));
  for (int vi = 0; vi < NVAR; vi++) {
    xl_kernels v = variants[vi];
    if (!xl_kernels_supported(v)) {
      CHECK(xl_kernels_select(v, err, sizeof err) != 0 && strstr(err, xl_kernels_name(v)), "%s refused here: %s", xl_kernels_name(v), err);
      printf("ok - %s kernels # SKIP this CPU lacks them\n", xl_kernels_name(v));
      continue;
    }
    select_or_die(v);
    test_convert(v);
    test_round(v);
    test_cell_cols(v);
    test_matvec(v);
    test_gemm(v);
    test_golden(v, XL_GEMM_OPENBLAS);
  }
  /* --gemm onednn: oneDNN's fp32 matmul for the prefill products (F32 weights directly, BF16
   * and F16 weights through the fp32 tiles), with the best kernels */
  char why[256];
  if (xl_onednn_sgemm_available(why, sizeof why)) {
    select_or_die(best);
    test_golden(best, XL_GEMM_ONEDNN);
    CHECK(!strncmp(xl_onednn_sgemm_impl(), "onednn ", 7), "--gemm onednn ran oneDNN's matmul (%s)", xl_onednn_sgemm_impl());
  } else {
    printf("ok - --gemm onednn golden logits # SKIP %s\n", why);
  }
  {
    char md[4096], gd[4096];
    snprintf(md, sizeof md, "%s/fixtures/m128-bias-bf16-sharded", tl_golden_dir());
    test_bf16_report("fixtures/m128-bias-bf16-sharded", md, md);
    const char *root = getenv("XL_ROOT");
    snprintf(md, sizeof md, "%s/models/xlstm-tiny-pydocs", root ? root : ".");
    snprintf(gd, sizeof gd, "%s/xlstm-tiny-pydocs", tl_golden_dir());
    test_bf16_report("xlstm-tiny-pydocs", md, gd);
  }
  return tl_done();
}
