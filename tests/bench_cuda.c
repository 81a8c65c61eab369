/* bench_cuda: speed of one checkpoint on the GPU through the CUDA device's API
 * (lib/engine/cuda/cuda.h), one NDJSON record per measurement on stdout:
 *   cuda_device   provenance: GPU, driver, runtime, clocks
 *   cuda_upload   weights on the GPU, upload seconds
 *   cuda_prefill  prompts of --prefill tokens (default 2048,16384) from the empty state:
 *                 median and best ms over --reps runs, tok/s, time to first token, and the
 *                 roofline: --tflops / FLOPs per token (2 x block weights + the chunkwise
 *                 cell's products as computed: per head 4 DK DV + 2 ck (DK + DV))
 *   cuda_decode   --steps greedy tokens (step graph replay + GPU argmax, one 4-byte copy
 *                 back per token) after --short-ctx (128) and after the longest prompt;
 *                 roofline: --bw / bytes per token (every matrix once in its stored dtype,
 *                 one embedding row, the C state read and written)
 *   cuda_decode_ctx_ratio   long-context decode speed over short-context
 *   cuda_memory   peak device bytes this module allocated and the device's use (cudaMemGetInfo),
 *                 against the weights
 *   cuda_decode_tune  with --mv-tune 1,3,5: decode after --short-ctx with each matrix-vector
 *                 kernel variant (lib/engine/cuda/decode.cu; best of three), after the rest
 * Usage: bench_cuda DIR [--bw GB/s] [--tflops T] [--prefill 2048,16384] [--steps 128]
 *                   [--short-ctx 128] [--chunk 256,64] [--fp32] [--segment N] [--reps 3]
 *                   [--mv-tune V,...]
 * Decode is measured with the first chunk size's session only (it does not depend on it).
 * Exits 77 without a GPU (or without the CUDA device in this build).
 * Not for: correctness (test_cuda.c). */
#include <stdio.h>
#ifndef XL_HAVE_CUDA
int main(void) {
  printf("skipped: this build has no CUDA device\n");
  return 77;
}
#else
#include "base/util.h"
#include "engine/cuda/cuda.h"
#include "engine/engine.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int parse_list(const char *s, long *out, int max) {
  int n = 0;
  while (*s && n < max) {
    char *e;
    long v = strtol(s, &e, 10);
    if (e == s || v <= 0) return -1;
    out[n++] = v;
    s = *e == ',' ? e + 1 : e;
    if (*e && *e != ',') return -1;
  }
  return n;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  const char *dir;
  double bw, tflops;
  long prefill[8];
  int nprefill, steps, short_ctx, reps, fp32, segment;
  long chunks[8];
  int nchunks;
  long tune[8];   /* --mv-tune variants */
  int ntune;
} opts;

static void usage(void) {
  fprintf(stderr, "usage: bench_cuda DIR [--bw GB/s] [--tflops T] [--prefill 2048,16384] [--steps 128] [--short-ctx 128]\n"
                  "                  [--chunk 64,128] [--fp32] [--segment N] [--reps 3] [--mv-tune V,...]\n");
  exit(2);
}

static void parse(int argc, char **argv, opts *o) {
  memset(o, 0, sizeof *o);
  o->prefill[0] = 2048, o->prefill[1] = 16384, o->nprefill = 2;
  o->steps = 128, o->short_ctx = 128, o->reps = 3;
  o->chunks[0] = 256, o->chunks[1] = 64, o->nchunks = 2;   /* the GPU's best, the checkpoint default */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--fp32")) { o->fp32 = 1; continue; }
    if (a[0] != '-') { o->dir = a; continue; }
    if (!v) usage();
    i++;
    if (!strcmp(a, "--bw")) o->bw = atof(v);
    else if (!strcmp(a, "--tflops")) o->tflops = atof(v);
    else if (!strcmp(a, "--prefill")) { if ((o->nprefill = parse_list(v, o->prefill, 8)) <= 0) usage(); }
    else if (!strcmp(a, "--chunk")) { if ((o->nchunks = parse_list(v, o->chunks, 8)) <= 0) usage(); }
    else if (!strcmp(a, "--steps")) o->steps = atoi(v);
    else if (!strcmp(a, "--short-ctx")) o->short_ctx = atoi(v);
    else if (!strcmp(a, "--reps")) o->reps = atoi(v);
    else if (!strcmp(a, "--segment")) o->segment = atoi(v);
    else if (!strcmp(a, "--mv-tune")) {
      if ((o->ntune = parse_list(v, o->tune, 8)) <= 0) usage();
    } else usage();
  }
  if (!o->dir || o->steps < 1 || o->reps < 1 || o->short_ctx < 1) usage();
}

/* FLOPs per prefill token: 2 x every block matrix, plus the cell's products as computed. */
static double prefill_flops(const xl_config *c, int ck) {
  double D = c->D, QK = c->qk_dim, VD = c->v_dim, F = c->ffn, NH = c->n_heads, DK = c->dk, DV = c->dv;
  double mats = D * (2 * QK + 2 * VD + 2 * NH) + D * VD + 3 * D * F;
  double cell = NH * (4 * DK * DV + 2.0 * ck * (DK + DV));
  return c->n_blocks * (2 * mats + 2 * cell);
}

/* Bytes a decode step must move: every matrix once (stored dtype), one embedding row, C twice. */
static double decode_bytes(const xl_model *m, size_t dev_weights) {
  const xl_config *c = &m->cfg;
  double emb = (double)c->vocab * c->D * (m->embed.dtype == ST_F32 ? 4 : 2);
  double tied = m->lm_head.data == m->embed.data;
  double w = (double)dev_weights - (tied ? 0 : emb) + (double)c->D * (m->embed.dtype == ST_F32 ? 4 : 2);
  double state = 2.0 * 4 * c->n_blocks * c->n_heads * (double)c->dk * c->dv;
  return w + state;
}

static unsigned rng_state = 12345;
static int32_t rnd_tok(int V) {
  rng_state = rng_state * 1664525u + 1013904223u;
  return (int32_t)((rng_state >> 8) % (unsigned)V);
}

/* ms of one prefill of n tokens from the empty state; -1 on failure */
static double time_prefill(xl_cuda_session *s, const int32_t *ids, long n) {
  xl_cuda_session_reset(s);
  double t0 = now();
  if (xl_cuda_prefill(s, ids, n, NULL, NULL)) return -1;
  return (now() - t0) * 1e3;
}

/* tok/s of `steps` greedy steps from the current state (graph replays) */
static double time_decode(xl_cuda_session *s, int steps) {
  int tok = 0;
  for (int i = 0; i < 4; i++)   /* warm-up: the first step captures the graph */
    if (xl_cuda_sample(s, 1, 1, 0, 1, 0, &tok) || xl_cuda_step(s, tok, NULL)) return -1;
  double t0 = now();
  for (int i = 0; i < steps; i++)
    if (xl_cuda_sample(s, 1, 1, 0, 1, 0, &tok) || xl_cuda_step(s, tok, NULL)) return -1;
  if (xl_cuda_sample(s, 1, 1, 0, 1, 0, &tok)) return -1;   /* waits for the last step */
  return steps / (now() - t0);
}

static void fail(const char *what) {
  printf("{\"bench\":\"cuda_error\",\"what\":\"%s\",\"error\":\"%s\"}\n", what, xl_cuda_last_error());
  fflush(stdout);
}

int main(int argc, char **argv) {
  opts o;
  parse(argc, argv, &o);
  char why[512], err[512], dev[512];
  if (xl_cuda_probe(0, why, sizeof why)) {
    printf("skipped: %s\n", why);
    return 77;
  }
  printf("{\"bench\":\"cuda_device\",\"device\":\"%s\",\"bw_gb_s\":%.1f,\"tflops\":%.1f}\n", xl_cuda_device_name(0, dev, sizeof dev), o.bw,
         o.tflops);
  fflush(stdout);
  double t0 = now();
  xl_model *m = xl_model_load(o.dir, err, sizeof err);
  if (!m) { fprintf(stderr, "bench_cuda: %s\n", err); return 1; }
  double t1 = now();
  xl_cuda_model *cm = xl_cuda_model_upload(m, 0, err, sizeof err);
  if (!cm) { fprintf(stderr, "bench_cuda: %s\n", err); return 1; }
  double t2 = now();
  const xl_config *c = &m->cfg;
  size_t wb = xl_cuda_model_bytes(cm);
  printf("{\"bench\":\"cuda_upload\",\"model\":\"%s\",\"weights_gb\":%.3f,\"file_gb\":%.3f,\"open_s\":%.2f,\"upload_s\":%.2f,"
         "\"D\":%d,\"blocks\":%d,\"heads\":%d,\"vocab\":%d}\n", o.dir, wb / 1e9, m->weight_bytes / 1e9, t1 - t0, t2 - t1, c->D,
         c->n_blocks, c->n_heads, c->vocab);
  fflush(stdout);
  long maxn = 0;
  for (int i = 0; i < o.nprefill; i++) if (o.prefill[i] > maxn) maxn = o.prefill[i];
  if (o.short_ctx > maxn) maxn = o.short_ctx;
  int32_t *ids = xl_malloc(sizeof(int32_t) * (size_t)maxn);
  for (long i = 0; i < maxn; i++) ids[i] = rnd_tok(c->vocab);
  double dbytes = decode_bytes(m, wb);
  int rc = 0;
  for (int ci = 0; ci < o.nchunks && !rc; ci++) {
    int ck = (int)o.chunks[ci];
    xl_cuda_opts co = {.chunk_size = ck, .matmul_bf16 = !o.fp32, .max_segment = o.segment};
    xl_cuda_session *s = xl_cuda_session_new(cm, &co, err, sizeof err);
    if (!s) { fprintf(stderr, "bench_cuda: %s\n", err); return 1; }
    /* warm-up: cuBLAS picks its kernels, the module loads */
    if (time_prefill(s, ids, o.short_ctx < 512 ? 512 : o.short_ctx) < 0) { fail("warm-up prefill"); rc = 1; break; }
    double flops = prefill_flops(c, ck), long_dec = 0, short_dec = 0;
    for (int pi = 0; pi < o.nprefill && !rc; pi++) {
      long n = o.prefill[pi];
      double ms[16];
      int reps = o.reps < 16 ? o.reps : 16;
      for (int r = 0; r < reps; r++)
        if ((ms[r] = time_prefill(s, ids, n)) < 0) { fail("prefill"); rc = 1; break; }
      if (rc) break;
      qsort(ms, reps, sizeof *ms, cmp_d);
      double med = reps % 2 ? ms[reps / 2] : (ms[reps / 2 - 1] + ms[reps / 2]) / 2, tps = n / (med / 1e3);
      double roof = o.tflops > 0 ? o.tflops * 1e12 / flops : 0;
      printf("{\"bench\":\"cuda_prefill\",\"tokens\":%ld,\"chunk\":%d,\"segment\":%d,\"matmul\":\"%s\",\"reps\":%d,\"ms\":%.2f,"
             "\"ms_best\":%.2f,\"tok_s\":%.1f,\"gflop_per_token\":%.3f,\"tflop_s\":%.1f,\"roofline_tok_s\":%.1f,\"efficiency\":%.3f}\n",
             n, ck, xl_cuda_session_segment(s), o.fp32 ? "fp32" : "bf16", reps, med, ms[0], tps, flops / 1e9, tps * flops / 1e12,
             roof, roof > 0 ? tps / roof : 0);
      fflush(stdout);
    }
    /* decode after the longest prompt (the state of its last run is there) */
    if (!rc && ci == 0) {
      long n = o.prefill[0];
      for (int pi = 1; pi < o.nprefill; pi++) if (o.prefill[pi] > n) n = o.prefill[pi];
      xl_cuda_session_reset(s);
      if (xl_cuda_prefill(s, ids, n, NULL, NULL) || (long_dec = time_decode(s, o.steps)) < 0) { fail("long decode"); rc = 1; }
      xl_cuda_session_reset(s);
      if (!rc && (xl_cuda_prefill(s, ids, o.short_ctx, NULL, NULL) || (short_dec = time_decode(s, o.steps)) < 0)) {
        fail("short decode");
        rc = 1;
      }
      /* the long context again, so both see the same clocks */
      xl_cuda_session_reset(s);
      double long2 = 0;
      if (!rc && !xl_cuda_prefill(s, ids, n, NULL, NULL)) long2 = time_decode(s, o.steps);
      if (long2 > long_dec) long_dec = long2;
      double roof = o.bw > 0 ? o.bw * 1e9 / dbytes : 0;
      long ctxs[2] = {o.short_ctx, n};
      double tps[2] = {short_dec, long_dec};
      for (int k = 0; k < 2 && !rc; k++)
        printf("{\"bench\":\"cuda_decode\",\"context\":%ld,\"steps\":%d,\"matmul\":\"%s\",\"tok_s\":%.2f,\"ms_per_token\":%.3f,"
               "\"gb_per_token\":%.3f,\"gb_s\":%.1f,\"roofline_tok_s\":%.1f,\"efficiency\":%.3f}\n",
               ctxs[k], o.steps, o.fp32 ? "fp32" : "bf16", tps[k], 1e3 / tps[k], dbytes / 1e9, tps[k] * dbytes / 1e9, roof,
               roof > 0 ? tps[k] / roof : 0);
      if (!rc)
        printf("{\"bench\":\"cuda_decode_ctx_ratio\",\"long_context\":%ld,\"short_context\":%d,\"ratio\":%.4f}\n", n, o.short_ctx,
               long_dec / short_dec);
      fflush(stdout);
    }
    /* where the time goes: the longest prefill and a few steps, phase by phase */
    if (!rc) {
      static char js[4096];
      long n = o.prefill[0];
      for (int pi = 1; pi < o.nprefill; pi++) if (o.prefill[pi] > n) n = o.prefill[pi];
      int tok = 0;
      xl_cuda_session_reset(s);
      if (!xl_cuda_profile(s, 1) && !xl_cuda_prefill(s, ids, n, NULL, NULL) && !xl_cuda_profile_json(s, js, sizeof js))
        printf("{\"bench\":\"cuda_profile\",\"what\":\"prefill\",\"tokens\":%ld,\"chunk\":%d,\"ms\":%s}\n", n, ck, js);
      int ok = !xl_cuda_profile(s, 1);
      for (int i = 0; ok && i < 16; i++) ok = !xl_cuda_sample(s, 1, 1, 0, 1, 0, &tok) && !xl_cuda_step(s, tok, NULL);
      if (ok && !xl_cuda_profile_json(s, js, sizeof js))
        printf("{\"bench\":\"cuda_profile\",\"what\":\"decode (kernels launched one by one)\",\"steps\":16,\"ms\":%s}\n", js);
      xl_cuda_profile(s, 0);
      fflush(stdout);
    }
    printf("{\"bench\":\"cuda_memory\",\"chunk\":%d,\"peak_gb\":%.3f,\"device_used_gb\":%.3f,\"weights_gb\":%.3f,"
           "\"session_gb\":%.3f,\"peak_over_weights_gb\":%.3f}\n",
           ck, xl_cuda_peak_bytes() / 1e9, xl_cuda_device_used_bytes(0) / 1e9, wb / 1e9, xl_cuda_session_bytes(s) / 1e9,
           (xl_cuda_peak_bytes() - (double)wb) / 1e9);
    fflush(stdout);
    xl_cuda_session_free(s);
  }
  /* decode with each matrix-vector variant, a session each (after the others: the memory
   * records above count one session) */
  for (int ti = 0; !rc && ti < o.ntune; ti++) {
    xl_cuda_opts to = {.chunk_size = (int)o.chunks[0], .matmul_bf16 = !o.fp32, .max_segment = o.segment, .mv_variant = (int)o.tune[ti]};
    xl_cuda_session *t = xl_cuda_session_new(cm, &to, err, sizeof err);
    if (!t) { fprintf(stderr, "bench_cuda: %s\n", err); rc = 1; break; }
    double best = 0;
    for (int r = 0; r < 3 && !rc; r++) {   /* best of three: the sweep compares kernels, not clocks */
      xl_cuda_session_reset(t);
      double tps = -1;
      if (xl_cuda_prefill(t, ids, o.short_ctx, NULL, NULL) || (tps = time_decode(t, o.steps)) < 0) { fail("tune decode"); rc = 1; }
      if (tps > best) best = tps;
    }
    double roof = o.bw > 0 ? o.bw * 1e9 / dbytes : 0;
    if (!rc)
      printf("{\"bench\":\"cuda_decode_tune\",\"mv_variant\":%ld,\"context\":%d,\"steps\":%d,\"tok_s\":%.2f,\"efficiency\":%.3f}\n",
             o.tune[ti], o.short_ctx, o.steps, best, roof > 0 ? best / roof : 0);
    fflush(stdout);
    xl_cuda_session_free(t);
  }
  free(ids);
  xl_cuda_model_free(cm);
  xl_model_free(m);
  return rc;
}
#endif
