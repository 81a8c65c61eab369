/* bench_limits: the machine's ceilings, measured in the same run as the model benchmarks
 * so rooflines use this machine today, not a datasheet:
 *   - memory bandwidth: a STREAM-style triad a[i] = b[i] + s*c[i] over three arrays far
 *     larger than the caches (bytes counted as STREAM does: 3 x 4 per element), and a
 *     read-only sum over the same bytes (what decode does to weights);
 *   - OpenBLAS SGEMM GFLOP/s at N^3 on 1 and on all threads, and oneDNN's fp32 matmul of
 *     the same shape where oneDNN loads (--gemm onednn's ceiling);
 *   - on a CPU with BF16 units and a library for them (engine/libgemm.h: oneDNN), the
 *     BF16 GEMM GFLOP/s of the same shape (bf16 x bf16 -> fp32), the ceiling of
 *     --matmul bf16's prefill.
 * Best of several repetitions, after a warm-up. One NDJSON record per measurement on
 * stdout (bench.sh adds provenance).
 * Usage: bench_limits [--mb MB_PER_ARRAY] [--reps N] [--gemm N] [--threads LIST]
 * Not for: model speed (bench_model.c). */
#include "engine/libgemm.h"
#include "engine/blasenv.h"
#include "base/util.h"
#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern void openblas_set_num_threads(int);

typedef struct { float *a, *b, *c; size_t lo, hi; int op; double sum; } part;

__attribute__((target("avx512f"))) static double read_sum(const float *p, size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(p + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(p + i + 48));
  }
  double s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  for (; i < n; i++) s += p[i];
  return s;
}
static double read_sum_plain(const float *p, size_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
  for (; i < n; i++) s0 += p[i];
  return (double)s0 + s1 + s2 + s3;
}

static void *work(void *arg) {
  part *w = arg;
  if (w->op == 0) {
    const float s = 3.0f;
    for (size_t i = w->lo; i < w->hi; i++) w->a[i] = w->b[i] + s * w->c[i];
  } else if (w->op == 1) {
    int v = __builtin_cpu_supports("avx512f");
    /* the three arrays back to back: the same bytes the triad touches */
    float *arr[3] = {w->a, w->b, w->c};
    w->sum = 0;
    for (int k = 0; k < 3; k++) w->sum += v ? read_sum(arr[k] + w->lo, w->hi - w->lo) : read_sum_plain(arr[k] + w->lo, w->hi - w->lo);
  } else {
    for (size_t i = w->lo; i < w->hi; i++) { w->a[i] = 1.0f; w->b[i] = 2.0f; w->c[i] = 0.5f; }
  }
  return NULL;
}

/* Runs op over [0, n) on nt threads; returns seconds. */
static double run(float *a, float *b, float *c, size_t n, int nt, int op, double *sum) {
  pthread_t th[64];
  part p[64];
  double t0 = xl_now();
  for (int i = 0; i < nt; i++) {
    p[i] = (part){a, b, c, n * (size_t)i / (size_t)nt, n * (size_t)(i + 1) / (size_t)nt, op, 0};
    if (i) pthread_create(&th[i], NULL, work, &p[i]);
  }
  work(&p[0]);
  for (int i = 1; i < nt; i++) pthread_join(th[i], NULL);
  double t = xl_now() - t0;
  if (sum) { *sum = 0; for (int i = 0; i < nt; i++) *sum += p[i].sum; }
  return t;
}

static void emit(const char *what, int threads, const char *unit, double best, double mean, int reps, const char *extra) {
  printf("{\"bench\":\"limits\",\"what\":\"%s\",\"threads\":%d,\"%s\":%.3f,\"mean\":%.3f,\"reps\":%d,\"blas_core\":\"%s\"%s}\n", what,
         threads, unit, best, mean, reps, xl_blas_core(), extra ? extra : "");
  fflush(stdout);
}

/* One n^3 product, A B^T (NoTrans x Trans: the layout of the prefill projections, X W^T),
 * by one library; a runner returns 0 when it ran. */
typedef struct { int n; const float *A, *B; float *C; const uint16_t *Ab; xl_mat Wb; } gemm_case;
typedef int (*gemm_runner)(const gemm_case *g, int threads);

static int run_sgemm(const gemm_case *g, int threads) {
  openblas_set_num_threads(threads);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->n, g->n, g->n, 1, g->A, g->n, g->B, g->n, 0, g->C, g->n);
  return 0;
}
static int run_onednn(const gemm_case *g, int threads) { return xl_onednn_sgemm(g->A, g->n, g->n, g->B, g->n, g->n, g->C, g->n, threads); }
static int run_bf16(const gemm_case *g, int threads) { return xl_bf16gemm(&g->Wb, g->Ab, g->n, g->n, g->C, g->n, threads); }

/* Times run after a warm-up, best of max(reps, 3), and emits the record (impl: what ran, may
 * be NULL). -1 if the warm-up failed (nothing emitted). */
static int time_gemm(const char *what, const char *(*impl)(void), gemm_runner run, const gemm_case *g, int threads, long reps) {
  if (run(g, threads)) return -1;
  double best = 1e30, tot = 0;
  int gr = reps < 3 ? 3 : (int)reps;
  for (int r = 0; r < gr; r++) {
    double t0 = xl_now();
    run(g, threads);
    double t = xl_now() - t0;
    tot += t; if (t < best) best = t;
  }
  double fl = 2.0 * g->n * g->n * (double)g->n;
  char extra[192];
  int k = snprintf(extra, sizeof extra, ",\"n\":%d", g->n);
  if (impl) snprintf(extra + k, sizeof extra - k, ",\"impl\":\"%s\"", impl());
  emit(what, threads, "gflop_s", fl / best / 1e9, fl / (tot / gr) / 1e9, gr, extra);
  return 0;
}

int main(int argc, char **argv) {
  xl_blas_setup(argc, argv);
  xl_set_progname("bench_limits");
  long mb = 512, reps = 5, gn = 2048;
  int threads[8] = {1, 2}, nthreads = 2;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("Usage: bench_limits [--mb MB_PER_ARRAY] [--reps N] [--gemm N] [--threads LIST]\n"
             "The machine's ceilings, one NDJSON record each: triad and read bandwidth over three\n"
             "arrays of MB_PER_ARRAY (default 512), SGEMM (OpenBLAS), oneDNN's fp32 matmul and the\n"
             "BF16 GEMM (where they run) at N^3 (default 2048), at each thread count of LIST\n"
             "(default 1,2); best of N repetitions (default 5; 3 at least for the GEMMs).\n");
      return 0;
    }
    if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = xl_flag_long("--mb", argv[++i], 1, 1 << 16);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = xl_flag_long("--reps", argv[++i], 1, 1000);
    else if (!strcmp(argv[i], "--gemm") && i + 1 < argc) gn = xl_flag_long("--gemm", argv[++i], 16, 16384);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      nthreads = 0;
      for (char *s = strtok(argv[++i], ","); s && nthreads < 8; s = strtok(NULL, ","))
        threads[nthreads++] = (int)xl_flag_long("--threads", s, 1, 64);
    } else xl_usage_error("unknown argument '%s'", argv[i]);
  }
  size_t n = (size_t)mb << 18;   /* floats per array */
  float *a = xl_malloc(n * 4), *b = xl_malloc(n * 4), *c = xl_malloc(n * 4);
  for (int ti = 0; ti < nthreads; ti++) {
    int nt = threads[ti];
    run(a, b, c, n, nt, 2, NULL);   /* first touch on the threads that will use the pages */
    double best = 1e30, tot = 0, best_r = 1e30, tot_r = 0, sink = 0;
    run(a, b, c, n, nt, 0, NULL);   /* warm-up */
    for (int r = 0; r < reps; r++) {
      double t = run(a, b, c, n, nt, 0, NULL);
      tot += t; if (t < best) best = t;
      double s;
      t = run(a, b, c, n, nt, 1, &s);
      sink += s;
      tot_r += t; if (t < best_r) best_r = t;
    }
    double bytes = 3.0 * 4.0 * (double)n;
    char extra[128];
    snprintf(extra, sizeof extra, ",\"bytes\":%.0f", bytes);
    emit("triad_bw", nt, "gb_s", bytes / best / 1e9, bytes / (tot / reps) / 1e9, (int)reps, extra);
    snprintf(extra, sizeof extra, ",\"bytes\":%.0f,\"check\":%.0f", bytes, sink / reps);
    emit("read_bw", nt, "gb_s", bytes / best_r / 1e9, bytes / (tot_r / reps) / 1e9, (int)reps, extra);
  }
  free(a); free(b); free(c);

  size_t gs = (size_t)gn * (size_t)gn;
  float *A = xl_malloc(gs * 4), *B = xl_malloc(gs * 4), *C = xl_malloc(gs * 4);
  for (size_t i = 0; i < gs; i++) { A[i] = (float)(i % 7) * 0.1f; B[i] = (float)(i % 5) * 0.1f; }
  gemm_case g = {(int)gn, A, B, C, NULL, {0}};
  for (int ti = 0; ti < nthreads; ti++) time_gemm("sgemm", NULL, run_sgemm, &g, threads[ti], reps);
  /* oneDNN's fp32 matmul on the same operands (--gemm onednn's ceiling) */
  for (int ti = 0; ti < nthreads && xl_onednn_sgemm_available(NULL, 0); ti++)
    if (time_gemm("onednn_sgemm", xl_onednn_sgemm_impl, run_onednn, &g, threads[ti], reps)) break;
  free(A); free(B); free(C);

  if (xl_kernels_supported(XL_KERNELS_AVX512BF16) && xl_bf16gemm_available(NULL, 0)) {
    uint16_t *Ab = xl_malloc(gs * 2), *Bb = xl_malloc(gs * 2);
    float *Cf = xl_malloc(gs * 4);
    for (size_t i = 0; i < gs; i++) { Ab[i] = xl_f32_to_bf16((float)(i % 7) * 0.1f); Bb[i] = xl_f32_to_bf16((float)(i % 5) * 0.1f); }
    gemm_case gb = {(int)gn, NULL, NULL, Cf, Ab, {ST_BF16, (int)gn, (int)gn, Bb}};
    for (int ti = 0; ti < nthreads; ti++)
      if (time_gemm("bf16_gemm", xl_bf16gemm_impl, run_bf16, &gb, threads[ti], reps)) break;
    free(Ab); free(Bb); free(Cf);
  }
  xl_finish_stdout();
  return 0;
}
