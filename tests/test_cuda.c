/* Golden tests of the CUDA device through its C API (lib/engine/cuda/cuda.h), on every
 * checkpoint under tests/golden (the three fixtures and the trained default model):
 *   - fp32 (no TF32): chunkwise prefill with chunk sizes 1, 7, 64 and short segments, and
 *     token steps, against the reference's logits, step logits and final states, with the
 *     engine's tolerances (logits max |diff| <= 2e-3, mean <= 2e-4; states 2e-3 relative);
 *   - state files are device-independent: a state made on the CPU, loaded into the GPU
 *     session (and the reverse), continues with the same greedy tokens as the CPU;
 *   - bf16 (tensor cores): mean |logit diff| against the reference and greedy agreement
 *     (argmax per position), reported, and held to agreement >= 0.9, mean diff < BF16_MEAN;
 *   - sampling on the GPU (greedy = CPU argmax; top-k/top-p pick from the right set);
 *   - errors come back as -1 with a message.
 * Exits 77 (skipped) when this build has no CUDA device or no GPU is present. */
#include "testlib.h"
#include <stdio.h>
#ifndef XL_HAVE_CUDA
int main(void) {
  printf("skipped: this build has no CUDA device (nvcc was not found at build time)\n");
  return 77;
}
#else
#include "base/util.h"
#include "engine/cuda/cuda.h"
#include "engine/engine.h"
#include "engine/sampler.h"
#include "goldenlib.h"
#include "io/safetensors.h"
#include <math.h>
#include <string.h>

#define BF16_MEAN 0.05   /* bound on bf16's mean |logit diff| against the reference */

static double reldiff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs(b[i]));
    if (!(d <= m)) m = d;
  }
  return m;
}

typedef struct {
  const char *name;
  xl_model *m;
  xl_cuda_model *cm;
  st_set g;
  gcase cases[16];
  int nc, V, L, NH, DK, DV;
} fixture;

static size_t nC(const fixture *f) { return (size_t)f->L * f->NH * f->DK * f->DV; }
static size_t nN(const fixture *f) { return (size_t)f->L * f->NH * f->DK; }
static size_t nM(const fixture *f) { return (size_t)f->L * f->NH; }

/* The GPU session's final state against case ci's golden states. */
static void check_states(const fixture *f, xl_cuda_session *s, const char *label, int ci) {
  float *C = xl_malloc(nC(f) * 4), *n = xl_malloc(nN(f) * 4), *m = xl_malloc(nM(f) * 4);
  int rc = xl_cuda_state_read(s, C, n, m);
  double worst = rc ? 1e9 : 0;
  int missing = 0;
  size_t lc = (size_t)f->NH * f->DK * f->DV, ln = (size_t)f->NH * f->DK, lm = f->NH;
  for (int l = 0; !rc && l < f->L; l++) {
    char nm[96];
    snprintf(nm, sizeof nm, "case%d.layer%d.C", ci, l);
    const float *gC = golden(&f->g, nm, (int64_t)lc);
    snprintf(nm, sizeof nm, "case%d.layer%d.n", ci, l);
    const float *gn = golden(&f->g, nm, (int64_t)ln);
    snprintf(nm, sizeof nm, "case%d.layer%d.m", ci, l);
    const float *gm = golden(&f->g, nm, (int64_t)lm);
    if (!gC || !gn || !gm) { missing = 1; continue; }
    worst = fmax(worst, reldiff(C + l * lc, gC, lc));
    worst = fmax(worst, reldiff(n + l * ln, gn, ln));
    worst = fmax(worst, reldiff(m + l * lm, gm, lm));
  }
  CHECK(!missing && worst <= 2e-3, "%s case %d: final C/n/m rel diff %.2e <= 2e-3", label, ci, worst);
  free(C), free(n), free(m);
}

static xl_cuda_session *gpu_session(fixture *f, int ck, int bf16, int seg) {
  char err[512];
  xl_cuda_opts o = {.chunk_size = ck, .matmul_bf16 = bf16, .max_segment = seg};
  xl_cuda_session *s = xl_cuda_session_new(f->cm, &o, err, sizeof err);
  CHECK(s != NULL, "%s: session ck=%d bf16=%d seg=%d opens (%s)", f->name, ck, bf16, seg, s ? "ok" : err);
  return s;
}

/* fp32 chunkwise prefill against case logits and states. */
static void prefill_fp32(fixture *f, int ck, int seg) {
  xl_cuda_session *s = gpu_session(f, ck, 0, seg);
  if (!s) return;
  char label[160];
  snprintf(label, sizeof label, "%s gpu fp32 prefill ck=%d seg=%d", f->name, ck, xl_cuda_session_segment(s));
  for (int ci = 0; ci < f->nc; ci++) {
    int T = f->cases[ci].n, V = f->V;
    float *lg = xl_malloc((size_t)T * V * 4), *last = xl_malloc((size_t)V * 4);
    xl_cuda_session_reset(s);
    int rc = xl_cuda_prefill(s, f->cases[ci].ids, T, lg, last);
    char nm[64];
    snprintf(nm, sizeof nm, "case%d.logits", ci);
    const float *ref = golden(&f->g, nm, (int64_t)T * V);
    double mx = 1e9, mean = 1e9;
    if (ref && !rc) diff(lg, ref, (size_t)T * V, &mx, &mean);
    CHECK(!rc && ref && mx <= 2e-3 && mean <= 2e-4, "%s case %d (T=%d): logits max %.2e mean %.2e%s%s", label, ci, T, mx, mean,
          rc ? ": " : "", rc ? xl_cuda_last_error() : "");
    check_states(f, s, label, ci);
    CHECK(!memcmp(last, lg + (size_t)(T - 1) * V, (size_t)V * 4) && xl_cuda_session_tokens(s) == T,
          "%s case %d: last logits are the last row, %ld tokens", label, ci, xl_cuda_session_tokens(s));
    free(lg), free(last);
  }
  xl_cuda_session_free(s);
}

/* Every matrix-vector variant (bench_cuda --mv-tune) gives the same bits as the first:
 * each lane sums its columns in the same order whatever the loads per trip. */
static void mv_variants(fixture *f) {
  int V = f->V, T = f->cases[0].n;
  float *ref = xl_malloc((size_t)T * V * 4), *lg = xl_malloc((size_t)V * 4);
  for (int bf16 = 0; bf16 < 2; bf16++)
    for (int var = 1; var <= 6; var++) {
      char err[512];
      xl_cuda_opts o = {.chunk_size = 64, .matmul_bf16 = bf16, .mv_variant = var};
      xl_cuda_session *s = xl_cuda_session_new(f->cm, &o, err, sizeof err);
      CHECK(s != NULL, "%s: session with mv_variant %d opens (%s)", f->name, var, s ? "ok" : err);
      if (!s) continue;
      int rc = 0, same = 1;
      for (int t = 0; t < T && !rc; t++) {
        rc = xl_cuda_step(s, f->cases[0].ids[t], lg);
        if (var == 1) memcpy(ref + (size_t)t * V, lg, (size_t)V * 4);
        else same &= !memcmp(ref + (size_t)t * V, lg, (size_t)V * 4);
      }
      if (var > 1) CHECK(!rc && same, "%s: decode steps with mv_variant %d (bf16 %d) give variant 1's bits%s%s", f->name, var, bf16,
                     rc ? ": " : "", rc ? xl_cuda_last_error() : "");
      xl_cuda_session_free(s);
    }
  free(ref), free(lg);
}

/* fp32 token steps against step_logits; then a prefill without all logits agrees. */
static void steps_fp32(fixture *f) {
  xl_cuda_session *s = gpu_session(f, 64, 0, 0);
  if (!s) return;
  int V = f->V;
  float *lg = xl_malloc((size_t)V * 4), *last = xl_malloc((size_t)V * 4);
  for (int ci = 0; ci < f->nc; ci++) {
    int T = f->cases[ci].n, rc = 0;
    char nm[64];
    snprintf(nm, sizeof nm, "case%d.step_logits", ci);
    const float *ref = golden(&f->g, nm, (int64_t)T * V);
    double worst = 0, wmean = 0;
    xl_cuda_session_reset(s);
    for (int t = 0; t < T && !rc; t++) {
      rc = xl_cuda_step(s, f->cases[ci].ids[t], lg);
      double mx = 1e9, mean = 1e9;
      if (ref && !rc) diff(lg, ref + (size_t)t * V, (size_t)V, &mx, &mean);
      worst = fmax(worst, mx);
      wmean = fmax(wmean, mean);
    }
    CHECK(!rc && worst <= 2e-3 && wmean <= 2e-4, "%s gpu fp32 step case %d: step_logits max %.2e mean %.2e%s", f->name, ci, worst,
          wmean, rc ? xl_cuda_last_error() : "");
    check_states(f, s, "gpu fp32 step", ci);
    xl_cuda_session_reset(s);
    rc = xl_cuda_prefill(s, f->cases[ci].ids, T, NULL, last);
    double mx = 1e9, mean;
    if (!rc) diff(last, lg, (size_t)V, &mx, &mean);
    CHECK(!rc && mx <= 2e-3, "%s case %d: gpu chunkwise last logits agree with gpu steps (max %.2e)", f->name, ci, mx);
  }
  free(lg), free(last);
  xl_cuda_session_free(s);
}

/* ---- state portability: CPU <-> GPU through the host layouts ---- */

typedef struct { const fixture *f; float *C, *n, *m; int load; } xfer;

static void xfer_visit(void *ctx, const char *name, float *data, int ndim, const int64_t *shape) {
  xfer *x = ctx;
  int l;
  char kind;
  if (sscanf(name, "layer%d.%c", &l, &kind) != 2) return;
  size_t len = 1;
  for (int i = 0; i < ndim; i++) len *= (size_t)shape[i];
  float *full = kind == 'C' ? x->C : kind == 'n' ? x->n : x->m;
  float *p = full + (size_t)l * len;
  if (x->load) memcpy(data, p, len * 4);
  else memcpy(p, data, len * 4);
}

/* Greedy continuation of n tokens on the CPU session and the GPU session. */
static int continue_both(xl_session *cs, xl_cuda_session *gs, int n, int *ct, int *gt, int V) {
  for (int i = 0; i < n; i++) {
    const float *lg = xl_session_logits(cs);
    ct[i] = xl_argmax(lg, V);
    if (xl_cuda_sample(gs, 1, 1.0f, 0, 1.0f, 0.0, &gt[i])) return -1;
    if (xl_step(cs, ct[i]) || xl_cuda_step(gs, gt[i], NULL)) return -1;
  }
  return 0;
}

static void portability(fixture *f) {
  char err[512];
  xl_runopts o;
  xl_runopts_default(&o, f->m);
  xl_session *cs = xl_session_new(f->m, &o, err, sizeof err);
  xl_cuda_session *gs = gpu_session(f, 64, 0, 0);
  CHECK(cs != NULL, "%s: cpu session (%s)", f->name, cs ? "ok" : err);
  if (!cs || !gs) { xl_session_free(cs); xl_cuda_session_free(gs); return; }
  int V = f->V, K = 16, ct[16], gt[16];
  float *C = xl_malloc(nC(f) * 4), *n = xl_malloc(nN(f) * 4), *m = xl_malloc(nM(f) * 4);
  const gcase *c = &f->cases[f->nc - 1];
  /* CPU prefill -> state -> GPU */
  xl_session_reset(cs);
  xl_prefill(cs, c->ids, c->n, NULL);
  xfer x = {f, C, n, m, 0};
  xl_session_visit_state(cs, xfer_visit, &x, 0);
  xl_cuda_session_reset(gs);
  int rc = xl_cuda_state_write(gs, C, n, m) || xl_cuda_logits_write(gs, xl_session_logits(cs)) ||
           continue_both(cs, gs, K, ct, gt, V);
  CHECK(!rc && !memcmp(ct, gt, sizeof ct), "%s: cpu state continued on the gpu gives the cpu's %d greedy tokens", f->name, K);
  /* GPU prefill -> state -> CPU */
  xl_cuda_session_reset(gs);
  xl_session_reset(cs);
  float *lg = xl_malloc((size_t)V * 4);
  rc = xl_cuda_prefill(gs, c->ids, c->n, NULL, lg) || xl_cuda_state_read(gs, C, n, m);
  x.load = 1;
  xl_session_visit_state(cs, xfer_visit, &x, 1);
  memcpy(cs->logits, lg, (size_t)V * 4);
  cs->logits_stale = 0;
  if (!rc) rc = continue_both(cs, gs, K, ct, gt, V);
  CHECK(!rc && !memcmp(ct, gt, sizeof ct), "%s: gpu state continued on the cpu gives the gpu's %d greedy tokens", f->name, K);
  free(C), free(n), free(m), free(lg);
  xl_session_free(cs);
  xl_cuda_session_free(gs);
}

/* ---- bf16: difference from the reference, greedy agreement ---- */

static int argmax_row(const float *x, int V) {
  int b = 0;
  for (int i = 1; i < V; i++)
    if (x[i] > x[b]) b = i;
  return b;
}

static void bf16_quality(fixture *f, double *sum_diff, long *n_diff, long *agree, long *total) {
  xl_cuda_session *s = gpu_session(f, 64, 1, 0);
  if (!s) return;
  int V = f->V;
  double fsum = 0;
  long fn = 0, fa = 0, ft = 0;
  for (int ci = 0; ci < f->nc; ci++) {
    int T = f->cases[ci].n;
    float *lg = xl_malloc((size_t)T * V * 4), *st = xl_malloc((size_t)V * 4);
    char nm[64];
    snprintf(nm, sizeof nm, "case%d.logits", ci);
    const float *ref = golden(&f->g, nm, (int64_t)T * V);
    xl_cuda_session_reset(s);
    int rc = xl_cuda_prefill(s, f->cases[ci].ids, T, lg, NULL);
    for (int t = 0; !rc && ref && t < T; t++) {
      for (int i = 0; i < V; i++) fsum += fabs((double)lg[(size_t)t * V + i] - ref[(size_t)t * V + i]);
      fn += V;
      fa += argmax_row(lg + (size_t)t * V, V) == argmax_row(ref + (size_t)t * V, V);
      ft++;
    }
    /* token steps in bf16 too */
    xl_cuda_session_reset(s);
    snprintf(nm, sizeof nm, "case%d.step_logits", ci);
    const float *sref = golden(&f->g, nm, (int64_t)T * V);
    for (int t = 0; !rc && sref && t < T; t++) {
      rc = xl_cuda_step(s, f->cases[ci].ids[t], st);
      for (int i = 0; !rc && i < V; i++) fsum += fabs((double)st[i] - sref[(size_t)t * V + i]);
      fn += V;
      fa += !rc && argmax_row(st, V) == argmax_row(sref + (size_t)t * V, V);
      ft++;
    }
    CHECK(!rc, "%s bf16 case %d runs%s%s", f->name, ci, rc ? ": " : "", rc ? xl_cuda_last_error() : "");
    free(lg), free(st);
  }
  printf("# %s bf16 vs reference: mean |logit diff| %.3e, greedy agreement %ld/%ld\n", f->name, fn ? fsum / fn : 0.0, fa, ft);
  *sum_diff += fsum, *n_diff += fn, *agree += fa, *total += ft;
  xl_cuda_session_free(s);
}

/* ---- sampling ---- */

static void sampling(fixture *f) {
  xl_cuda_session *s = gpu_session(f, 64, 0, 0);
  if (!s) return;
  int V = f->V, tok = -1, rc;
  const gcase *c = &f->cases[0];
  float *lg = xl_malloc((size_t)V * 4);
  rc = xl_cuda_prefill(s, c->ids, c->n, NULL, lg);
  int am = xl_argmax(lg, V);
  rc = rc || xl_cuda_sample(s, 1, 1.0f, 0, 1.0f, 0.5, &tok);
  CHECK(!rc && tok == am, "%s: gpu greedy = cpu argmax (%d, %d)", f->name, tok, am);
  rc = xl_cuda_sample(s, 0, 0.8f, 1, 1.0f, 0.99, &tok);
  CHECK(!rc && tok == am, "%s: top_k 1 samples the argmax (%d)", f->name, tok);
  rc = xl_cuda_sample(s, 0, 1.0f, 0, 1e-6f, 0.7, &tok);
  CHECK(!rc && tok == am, "%s: top_p 1e-6 samples the argmax (%d)", f->name, tok);
  /* top_k 5: the token is one of the 5 largest logits */
  rc = xl_cuda_sample(s, 0, 1.5f, 5, 1.0f, 0.6, &tok);
  int above = 0;
  for (int i = 0; !rc && tok >= 0 && tok < V && i < V; i++) above += lg[i] > lg[tok];
  CHECK(!rc && tok >= 0 && tok < V && above < 5, "%s: top_k 5 picks among the top 5 (token %d, %d above it)", f->name, tok, above);
  /* plain sampling in index order: the CPU's cumulative pick for the same u */
  double u = 0.37, tot = 0, acc = 0;
  float mx = lg[am];
  for (int i = 0; i < V; i++) tot += expf((lg[i] - mx) / 0.9f);
  int want = V - 1;
  for (int i = 0; i < V; i++) {
    acc += expf((lg[i] - mx) / 0.9f);
    if (u * tot < acc) { want = i; break; }
  }
  rc = xl_cuda_sample(s, 0, 0.9f, 0, 1.0f, u, &tok);
  CHECK(!rc && tok == want, "%s: temperature sampling picks the cpu's token for the same u (%d, %d)", f->name, tok, want);
  rc = xl_cuda_step(s, V + 5, NULL);
  CHECK(rc == -1 && strstr(xl_cuda_last_error(), "outside"), "%s: a token outside the vocabulary is refused (%s)", f->name,
        xl_cuda_last_error());
  free(lg);
  xl_cuda_session_free(s);
}

static int fixture_open(fixture *f, const char *name, const char *mdir, const char *gdir) {
  char err[512], path[8192];
  memset(f, 0, sizeof *f);
  f->name = name;
  f->m = xl_model_load(mdir, err, sizeof err);
  CHECK(f->m != NULL, "%s: model loads (%s)", name, f->m ? "ok" : err);
  if (!f->m) return -1;
  f->cm = xl_cuda_model_upload(f->m, 0, err, sizeof err);
  CHECK(f->cm != NULL, "%s: weights upload (%s)", name, f->cm ? "ok" : err);
  snprintf(path, sizeof path, "%s/golden.safetensors", gdir);
  int grc = st_open_file(&f->g, path, err, sizeof err);
  CHECK(grc == 0, "%s: golden file opens", name);
  snprintf(path, sizeof path, "%s/golden.json", gdir);
  f->nc = load_cases(path, f->cases, 16);
  CHECK(f->nc > 0, "%s: %d golden cases", name, f->nc);
  if (!f->cm || grc || f->nc <= 0) return -1;
  const xl_config *c = &f->m->cfg;
  f->V = c->vocab, f->L = c->n_blocks, f->NH = c->n_heads, f->DK = c->dk, f->DV = c->dv;
  return 0;
}

static void fixture_close(fixture *f) {
  for (int i = 0; i < f->nc; i++) free(f->cases[i].ids);
  if (f->g.files) st_close(&f->g);
  xl_cuda_model_free(f->cm);
  xl_model_free(f->m);
}

int main(void) {
  char why[512], dev[512];
  if (xl_cuda_probe(0, why, sizeof why)) {
    printf("skipped: %s\n", why);
    return 77;
  }
  printf("# %s\n", xl_cuda_device_name(0, dev, sizeof dev));
  CHECK(xl_cuda_probe(99, why, sizeof why) == -1 && strstr(why, "not present"), "probe of device 99: %s", why);
  char md[4096], gd[4096];
  const char *names[] = {"m128-f32", "m128-bias-bf16-sharded", "m256-fused", "xlstm-tiny-pydocs"};
  const char *root = getenv("XL_ROOT");
  double sd = 0;
  long nd = 0, ag = 0, tot = 0;
  for (int i = 0; i < 4; i++) {
    if (i < 3) {
      snprintf(md, sizeof md, "%s/fixtures/%s", tl_golden_dir(), names[i]);
      snprintf(gd, sizeof gd, "%s", md);
    } else {
      snprintf(md, sizeof md, "%s/models/xlstm-tiny-pydocs", root ? root : ".");
      snprintf(gd, sizeof gd, "%s/xlstm-tiny-pydocs", tl_golden_dir());
    }
    fixture f;
    if (!fixture_open(&f, names[i], md, gd)) {
      const int cks[] = {64, 1, 7};
      for (int k = 0; k < 3; k++) prefill_fp32(&f, cks[k], 0);
      prefill_fp32(&f, 3, 5);     /* short segments: state and logits carry across them */
      prefill_fp32(&f, 16, 20);
      mv_variants(&f);
      steps_fp32(&f);
      portability(&f);
      bf16_quality(&f, &sd, &nd, &ag, &tot);
      sampling(&f);
    }
    fixture_close(&f);
  }
  double mean = nd ? sd / nd : 1e9, agree = tot ? (double)ag / tot : 0;
  CHECK(agree >= 0.9 && mean < BF16_MEAN, "bf16 vs reference over all cases: mean |logit diff| %.3e < %.2f, greedy agreement %.3f >= 0.9",
        mean, BF16_MEAN, agree);
  printf("# peak device memory %.1f MB\n", xl_cuda_peak_bytes() / 1e6);
  return tl_done();
}
#endif
