/* libgemm: BF16 GEMMs through OpenBLAS's cblas_sbgemm when the loaded library has it, else
 * oneDNN's matmul primitive; fp32 GEMMs through oneDNN's matmul (loaded with dlopen on
 * first use). See libgemm.h.
 * oneDNN: one primitive per shape and type (T, rows, cols, ldx, ldy, bf16 or fp32), created
 * once and cached (a session sees a handful: its projections x the segment lengths x the
 * last, shorter tile); weights are read in place as the transposed [cols, rows] operand
 * ("ba" strides), nothing is copied up front. Its OpenMP threads are set to the session's
 * workers before each product. */
#define _GNU_SOURCE
#include "engine/libgemm.h"
#include "engine/blasenv.h"
#include <dlfcn.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>
#define XL_HAVE_DNNL_HEADERS 1
#endif
#endif

/* cblas_sbgemm's signature (OpenBLAS cblas.h; looked up at run time) */
typedef void (*sbgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha, const uint16_t *A, int lda,
                          const uint16_t *B, int ldb, float beta, float *C, int ldc);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int ready;                 /* 1: a library is there and the CPU has BF16 */
static char why_not[256] = "not probed";
static char impl[128] = "none";
static sbgemm_fn sbgemm;

static pthread_once_t dnnl_once = PTHREAD_ONCE_INIT;
static int dnnl_ready;            /* 1: oneDNN loaded, with a CPU engine */
static char dnnl_why[256] = "not probed";
static char f32_impl[128] = "none";

#ifdef XL_HAVE_DNNL_HEADERS
/* the oneDNN functions used, resolved from libdnnl.so.2 */
#define DNNL_FNS(X)                                                                                     \
  X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_memory_desc_init_by_strides) X(dnnl_matmul_desc_init) \
  X(dnnl_primitive_desc_create) X(dnnl_primitive_desc_query) X(dnnl_primitive_desc_destroy)               \
  X(dnnl_primitive_create) X(dnnl_primitive_execute) X(dnnl_memory_create) X(dnnl_memory_destroy)         \
  X(dnnl_stream_wait) X(dnnl_get_effective_cpu_isa)
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static void (*omp_set_threads)(int);
#define DECL(f) static __typeof__(&f) p_##f;
DNNL_FNS(DECL)
#undef DECL
static dnnl_engine_t eng;
static dnnl_stream_t stream;

typedef struct { int T, rows, cols, ldx, ldy; dnnl_data_type_t dt; dnnl_primitive_t prim; dnnl_memory_desc_t a, b, c; } prim_entry;
enum { NPRIM = 64 };
static prim_entry prims[NPRIM];
static int nprims;

/* At exit, OpenMP's idle threads are ended (omp_pause_resource_all, omp_pause_hard = 2)
 * rather than left asleep: LeakSanitizer's exit check crashes while it stops them ("Tracer
 * caught signal 11", make check), and nothing else needs them then. */
static int (*omp_pause_all)(int);
static void release_omp_threads(void) { omp_pause_all(2); }

/* Loads oneDNN and makes its CPU engine (once per process; dnnl_ready says how it went). */
static void load_dnnl(void) {
  /* oneDNN runs on OpenMP (libgomp, loaded with it, reads this when it loads): threads that
   * sleep when a product ends, instead of spinning for a while, leave the cores to our pool
   * and OpenBLAS, which run between the products. The user's own setting wins. */
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  void *h = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!h) { snprintf(dnnl_why, sizeof dnnl_why, "oneDNN (libdnnl.so.2) cannot be loaded: %s", dlerror()); return; }
#define LOAD(f)                                                                                   \
  if (!(p_##f = (__typeof__(&f))dlsym(h, #f))) {                                                  \
    snprintf(dnnl_why, sizeof dnnl_why, "libdnnl.so.2 has no %s", #f);                            \
    return;                                                                                       \
  }
  DNNL_FNS(LOAD)
#undef LOAD
  if (p_dnnl_engine_create(&eng, dnnl_cpu, 0) || p_dnnl_stream_create(&stream, eng, dnnl_stream_default_flags)) {
    snprintf(dnnl_why, sizeof dnnl_why, "oneDNN: no CPU engine");
    return;
  }
  /* libgomp came with libdnnl; its omp_set_num_threads sets the calling thread's team size */
  void *g = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (g) {
    omp_set_threads = (void (*)(int))dlsym(g, "omp_set_num_threads");
    omp_pause_all = (int (*)(int))dlsym(g, "omp_pause_resource_all");
    if (omp_pause_all) atexit(release_omp_threads);
  }
  dnnl_ready = 1;
}

/* oneDNN for the BF16 products: loaded, and it sees BF16 instructions. 0 ok. */
static int dnnl_bf16_ready(void) {
  pthread_once(&dnnl_once, load_dnnl);
  if (!dnnl_ready) { snprintf(why_not, sizeof why_not, "%s", dnnl_why); return -1; }
  dnnl_cpu_isa_t isa = p_dnnl_get_effective_cpu_isa();
  if ((isa & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16) {
    snprintf(why_not, sizeof why_not, "oneDNN sees no BF16 instructions on this CPU (isa 0x%x)", (unsigned)isa);
    return -1;
  }
  snprintf(impl, sizeof impl, "onednn %s", (isa & 0x300) ? "amx-bf16" : "avx512-bf16");
  return 0;
}

/* The cached primitive for this shape and type (dt: the operands'; the result is fp32);
 * NULL if oneDNN refused it. Called under mu. */
static prim_entry *prim_for(dnnl_data_type_t dt, int T, int rows, int cols, int ldx, int ldy) {
  for (int i = 0; i < nprims; i++)
    if (prims[i].dt == dt && prims[i].T == T && prims[i].rows == rows && prims[i].cols == cols && prims[i].ldx == ldx &&
        prims[i].ldy == ldy)
      return &prims[i];
  if (nprims == NPRIM) return NULL;   /* every shape of a session fits many times over */
  prim_entry e = {T, rows, cols, ldx, ldy, dt, NULL, {0}, {0}, {0}};
  dnnl_dims_t ad = {T, cols}, as = {ldx, 1}, bd = {cols, rows}, bs = {1, cols}, cd = {T, rows}, cs = {ldy, 1};
  dnnl_matmul_desc_t md;
  dnnl_primitive_desc_t pd;
  if (p_dnnl_memory_desc_init_by_strides(&e.a, 2, ad, dt, as) || p_dnnl_memory_desc_init_by_strides(&e.b, 2, bd, dt, bs) ||
      p_dnnl_memory_desc_init_by_strides(&e.c, 2, cd, dnnl_f32, cs) || p_dnnl_matmul_desc_init(&md, &e.a, &e.b, NULL, &e.c) ||
      p_dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL))
    return NULL;
  const char *info = NULL;
  if (!p_dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info) && info) {
    if (dt == dnnl_f32) snprintf(f32_impl, sizeof f32_impl, "onednn %s", info);
    else if (!strncmp(impl, "onednn", 6)) snprintf(impl, sizeof impl, "onednn %s", info);
  }
  int rc = p_dnnl_primitive_create(&e.prim, pd);
  p_dnnl_primitive_desc_destroy(pd);
  if (rc) return NULL;
  prims[nprims] = e;
  return &prims[nprims++];
}

/* C [T, rows] (ldc) = A [T, cols] (lda) B^T with B [rows, cols] row-major, on `threads`
 * OpenMP threads. 0 ok. */
static int dnnl_product(dnnl_data_type_t dt, const void *A, int T, int lda, const void *B, int rows, int cols, float *C, int ldc,
                        int threads) {
  pthread_mutex_lock(&mu);
  prim_entry *e = prim_for(dt, T, rows, cols, lda, ldc);
  int rc = -1;
  if (e) {
    dnnl_memory_t a = NULL, b = NULL, c = NULL;
    if (!p_dnnl_memory_create(&a, &e->a, eng, (void *)A) && !p_dnnl_memory_create(&b, &e->b, eng, (void *)B) &&
        !p_dnnl_memory_create(&c, &e->c, eng, C)) {
      dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
      if (omp_set_threads) omp_set_threads(threads);
      rc = p_dnnl_primitive_execute(e->prim, stream, 3, args) || p_dnnl_stream_wait(stream) ? -1 : 0;
    }
    if (a) p_dnnl_memory_destroy(a);
    if (b) p_dnnl_memory_destroy(b);
    if (c) p_dnnl_memory_destroy(c);
  }
  pthread_mutex_unlock(&mu);
  return rc;
}
#endif

static void probe(void) {
  xl_cpu_feats f;
  xl_cpu_features(&f);
  if (!f.avx512bf16) { snprintf(why_not, sizeof why_not, "this CPU has no BF16 instructions (AVX512-BF16)"); return; }
  sbgemm = (sbgemm_fn)dlsym(RTLD_DEFAULT, "cblas_sbgemm");
  if (sbgemm) {
    snprintf(impl, sizeof impl, "openblas sbgemm");
    ready = 1;
    return;
  }
#ifdef XL_HAVE_DNNL_HEADERS
  if (dnnl_bf16_ready() == 0) ready = 1;
#else
  snprintf(why_not, sizeof why_not, "OpenBLAS has no cblas_sbgemm and this build has no oneDNN headers (libdnnl-dev)");
#endif
}

int xl_bf16gemm_available(char *why, size_t n) {
  pthread_once(&once, probe);
  if (!ready && why) snprintf(why, n, "%s", why_not);
  return ready;
}

const char *xl_bf16gemm_impl(void) {
  pthread_once(&once, probe);
  return impl;
}

int xl_bf16gemm(const xl_mat *w, const uint16_t *Xb, int T, int ldx, float *Y, int ldy, int threads) {
  if (!xl_bf16gemm_available(NULL, 0) || w->dtype != ST_BF16 || T <= 0) return -1;
  if (sbgemm) {   /* CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 */
    sbgemm(101, 111, 112, T, w->rows, w->cols, 1.0f, Xb, ldx, w->data, w->cols, 0.0f, Y, ldy);
    return 0;
  }
#ifdef XL_HAVE_DNNL_HEADERS
  return dnnl_product(dnnl_bf16, Xb, T, ldx, w->data, w->rows, w->cols, Y, ldy, threads);
#else
  (void)Xb, (void)ldx, (void)Y, (void)ldy, (void)threads;
  return -1;
#endif
}

int xl_onednn_sgemm_available(char *why, size_t n) {
#ifdef XL_HAVE_DNNL_HEADERS
  pthread_once(&dnnl_once, load_dnnl);
  if (!dnnl_ready && why) snprintf(why, n, "%s", dnnl_why);
  return dnnl_ready;
#else
  if (why) snprintf(why, n, "this build has no oneDNN headers (libdnnl-dev)");
  return 0;
#endif
}

const char *xl_onednn_sgemm_impl(void) { return f32_impl; }

int xl_onednn_sgemm(const float *X, int T, int ldx, const float *W, int rows, int cols, float *Y, int ldy, int threads) {
  if (!xl_onednn_sgemm_available(NULL, 0) || T <= 0) return -1;
#ifdef XL_HAVE_DNNL_HEADERS
  return dnnl_product(dnnl_f32, X, T, ldx, W, rows, cols, Y, ldy, threads);
#else
  (void)X, (void)ldx, (void)W, (void)rows, (void)cols, (void)Y, (void)ldy, (void)threads;
  return -1;
#endif
}

__attribute__((target("avx512f,avx512bw"))) static void high_halves_avx512(const float *x, uint16_t *y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(_mm512_loadu_ps(x + i)), 16)));
  for (; i < n; i++) {
    uint32_t u;
    memcpy(&u, x + i, 4);
    y[i] = (uint16_t)(u >> 16);
  }
}

void xl_bf16_high_halves(const float *x, uint16_t *y, size_t n) {
  if (__builtin_cpu_supports("avx512bw")) { high_halves_avx512(x, y, n); return; }
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, x + i, 4);
    y[i] = (uint16_t)(u >> 16);
  }
}
