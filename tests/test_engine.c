/* Golden tests of the engine: every checkpoint under tests/golden (the three fixtures and
 * the trained default model) against the reference's logits, step logits and final states,
 * through every backend and a spread of chunk sizes, worker counts and head bands.
 * Tolerances (docs/xlstm-math.md): logits max |diff| <= 2e-3 and mean |diff| <= 2e-4;
 * states max |diff| / max(1, |ref|) <= 2e-3. */
#include "engine/engine.h"
#include "io/safetensors.h"
#include "goldenlib.h"
#include "testlib.h"
#include "base/util.h"
#include <cJSON.h>
#include <math.h>

/* max |a-b| / max(1, |b|) */
static double reldiff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs(b[i]));
    if (!(d <= m)) m = d;
  }
  return m;
}

static void check_states(const char *label, xl_session *s, const st_set *g, int ci) {
  const xl_config *c = &s->m->cfg;
  double worst = 0;
  int missing = 0;
  for (int l = 0; l < c->n_blocks; l++) {
    char nm[128];
    size_t nC = (size_t)c->n_heads * c->dk * c->dv, nn = (size_t)c->n_heads * c->dk, nh = (size_t)c->n_heads;
    snprintf(nm, sizeof nm, "case%d.layer%d.C", ci, l);
    const float *gC = golden(g, nm, (int64_t)nC);
    snprintf(nm, sizeof nm, "case%d.layer%d.n", ci, l);
    const float *gn = golden(g, nm, (int64_t)nn);
    snprintf(nm, sizeof nm, "case%d.layer%d.m", ci, l);
    const float *gm = golden(g, nm, (int64_t)nh);
    snprintf(nm, sizeof nm, "layer%d.C", l);
    float *sC = session_state(s, nm);
    snprintf(nm, sizeof nm, "layer%d.n", l);
    float *sn = session_state(s, nm);
    snprintf(nm, sizeof nm, "layer%d.m", l);
    float *sm = session_state(s, nm);
    if (!gC || !gn || !gm || !sC || !sn || !sm) missing = 1;
    else {
      worst = fmax(worst, reldiff(sC, gC, nC));
      worst = fmax(worst, reldiff(sn, gn, nn));
      worst = fmax(worst, reldiff(sm, gm, nh));
    }
    free(sC), free(sn), free(sm);
  }
  CHECK(!missing && worst <= 2e-3, "%s case %d: final C/n/m rel diff %.2e <= 2e-3", label, ci, worst);
}

typedef struct { xl_backend b; int ck, w, hpb; int seg; } variant;   /* seg: tokens per prefill segment (0: default) */

static void run_model(const char *name, const char *model_dir, const char *gdir) {
  char err[512], path[4096];
  xl_model *m = xl_model_load(model_dir, err, sizeof err);
  CHECK(m != NULL, "%s: model loads (%s)", name, m ? "ok" : err);
  if (!m) return;
  snprintf(path, sizeof path, "%s/golden.safetensors", gdir);
  st_set g;
  int grc = st_open_file(&g, path, err, sizeof err);
  CHECK(grc == 0, "%s: golden file opens", name);
  if (grc) { xl_model_free(m); return; }
  snprintf(path, sizeof path, "%s/golden.json", gdir);
  gcase cases[16];
  int nc = load_cases(path, cases, 16);
  CHECK(nc > 0, "%s: %d golden cases", name, nc);
  int V = m->cfg.vocab;
  const variant vars[] = {
    {XL_BACKEND_CHUNKWISE, 64, 1, 1, 0}, {XL_BACKEND_CHUNKWISE, 1, 1, 1, 0}, {XL_BACKEND_CHUNKWISE, 7, 1, 1, 0},
    {XL_BACKEND_CHUNKWISE, 16, 2, 1, 0}, {XL_BACKEND_CHUNKWISE, 64, 3, 2, 0}, {XL_BACKEND_CHUNKWISE, 7, 2, 3, 0},
    {XL_BACKEND_RECURRENT, 64, 1, 1, 0}, {XL_BACKEND_RECURRENT, 64, 2, 2, 0},
    /* short prefill segments: the state and logits carry across segment boundaries */
    {XL_BACKEND_CHUNKWISE, 3, 1, 1, 5}, {XL_BACKEND_CHUNKWISE, 16, 2, 2, 20},
  };
  for (size_t vi = 0; vi < sizeof vars / sizeof *vars; vi++) {
    xl_runopts o;
    xl_runopts_default(&o, m);
    o.backend = vars[vi].b, o.chunk_size = vars[vi].ck, o.workers = vars[vi].w, o.heads_per_band = vars[vi].hpb;
    o.segment = vars[vi].seg;
    xl_session *s = xl_session_new(m, &o, err, sizeof err);
    char label[256];
    snprintf(label, sizeof label, "%s %s ck=%d w=%d hpb=%d seg=%d", name, xl_backend_name(o.backend), o.chunk_size, o.workers,
             o.heads_per_band, o.segment);
    for (int ci = 0; ci < nc; ci++) {
      int T = cases[ci].n;
      float *lg = xl_malloc(sizeof(float) * (size_t)T * V);
      xl_session_reset(s);
      xl_prefill(s, cases[ci].ids, T, lg);
      char nm[64];
      snprintf(nm, sizeof nm, "case%d.logits", ci);
      const float *ref = golden(&g, nm, (int64_t)T * V);
      double mx = 1e9, mean = 1e9;
      if (ref) diff(lg, ref, (size_t)T * V, &mx, &mean);
      CHECK(ref && mx <= 2e-3 && mean <= 2e-4, "%s case %d (T=%d): logits max %.2e mean %.2e", label, ci, T, mx, mean);
      check_states(label, s, &g, ci);
      /* the last logits are kept for decoding */
      CHECK(!memcmp(s->logits, lg + (size_t)(T - 1) * V, sizeof(float) * V) && s->tokens == T,
            "%s case %d: session keeps the last logits and the token count", label, ci);
      free(lg);
    }
    xl_session_free(s);
  }
  /* token by token through the state against step_logits; and the chunkwise prefill without
   * all-position logits (only the last row) agrees with it */
  xl_runopts o;
  xl_runopts_default(&o, m);
  xl_session *s = xl_session_new(m, &o, err, sizeof err);
  for (int ci = 0; ci < nc; ci++) {
    int T = cases[ci].n;
    char nm[64];
    snprintf(nm, sizeof nm, "case%d.step_logits", ci);
    const float *ref = golden(&g, nm, (int64_t)T * V);
    double worst = 0, wmean = 0;
    xl_session_reset(s);
    for (int t = 0; t < T; t++) {
      xl_step(s, cases[ci].ids[t]);
      double mx, mean;
      if (ref) diff(s->logits, ref + (size_t)t * V, (size_t)V, &mx, &mean);
      else mx = mean = 1e9;
      worst = fmax(worst, mx);
      wmean = fmax(wmean, mean);
    }
    CHECK(worst <= 2e-3 && wmean <= 2e-4, "%s case %d: step_logits max %.2e mean %.2e", name, ci, worst, wmean);
    check_states("step", s, &g, ci);
    float *last = xl_malloc(sizeof(float) * V);
    memcpy(last, s->logits, sizeof(float) * V);
    xl_session_reset(s);
    xl_prefill(s, cases[ci].ids, T, NULL);
    double mx, mean;
    diff(s->logits, last, (size_t)V, &mx, &mean);
    CHECK(mx <= 2e-3, "%s case %d: chunkwise last logits agree with recurrent (max %.2e)", name, ci, mx);
    free(last);
  }
  xl_session_free(s);
  for (int ci = 0; ci < nc; ci++) free(cases[ci].ids);
  st_close(&g);
  xl_model_free(m);
}

/* A stop request inside a prefill segment: the segment is abandoned, and the state and
 * token count are those of the segments finished before it, bit for bit. */
static int stop_after;
static int stop_countdown(void *ctx) { (void)ctx; return --stop_after < 0; }

static void interrupt_test(const char *model_dir) {
  char err[512];
  xl_model *m = xl_model_load(model_dir, err, sizeof err);
  if (!m) { CHECK(0, "interrupt: model loads (%s)", err); return; }
  int32_t ids[300];
  for (int i = 0; i < 300; i++) ids[i] = (i * 37 + 11) % m->cfg.vocab;
  xl_runopts o;
  xl_runopts_default(&o, m);
  o.segment = 100;   /* segments of 128 (whole chunks of 64); stop in the second */
  o.interrupted = stop_countdown;
  xl_session *s = xl_session_new(m, &o, err, sizeof err);
  stop_after = m->cfg.n_blocks + 2;   /* layers of segment 1, then two layers into segment 2 */
  int rc = xl_prefill(s, ids, 300, NULL), seg = s->segment;
  CHECK(rc == 0 && seg < 300 && s->tokens == seg && s->last_token == ids[seg - 1],
        "interrupted prefill stops after the finished segment (%ld tokens, segment %d)", s->tokens, seg);
  xl_runopts r = o;
  r.interrupted = NULL;
  xl_session *ref = xl_session_new(m, &r, err, sizeof err);
  xl_prefill(ref, ids, seg, NULL);
  int same = 1;
  const char *names[] = {"layer0.C", "layer0.n", "layer0.m"};
  for (int l = 0; l < m->cfg.n_blocks && same; l++) {
    for (int k = 0; k < 3 && same; k++) {
      char nm[32];
      snprintf(nm, sizeof nm, "layer%d.%s", l, names[k] + 7);
      float *a = session_state(s, nm), *b = session_state(ref, nm);
      size_t n = k == 0 ? (size_t)m->cfg.n_heads * m->cfg.dk * m->cfg.dv : k == 1 ? (size_t)m->cfg.n_heads * m->cfg.dk : (size_t)m->cfg.n_heads;
      same = a && b && !memcmp(a, b, n * sizeof(float));
      free(a), free(b);
    }
  }
  CHECK(same, "... and its state is bit for bit the state after those %d tokens", seg);
  /* continuing gives what an uninterrupted run gives */
  s->opt.interrupted = NULL;
  xl_prefill(s, ids + seg, 300 - seg, NULL);
  xl_prefill(ref, ids + seg, 300 - seg, NULL);
  CHECK(!memcmp(s->logits, ref->logits, sizeof(float) * (size_t)m->cfg.vocab), "... and resuming gives the uninterrupted logits");
  xl_session_free(s);
  xl_session_free(ref);
  xl_model_free(m);
}

int main(void) {
  char md[4096], gd[4096];
  const char *fx[] = {"m128-f32", "m128-bias-bf16-sharded", "m256-fused"};
  for (int i = 0; i < 3; i++) {
    snprintf(md, sizeof md, "%s/fixtures/%s", tl_golden_dir(), fx[i]);
    run_model(fx[i], md, md);
  }
  const char *root = getenv("XL_ROOT");
  snprintf(md, sizeof md, "%s/models/xlstm-tiny-pydocs", root ? root : ".");
  snprintf(gd, sizeof gd, "%s/xlstm-tiny-pydocs", tl_golden_dir());
  run_model("xlstm-tiny-pydocs", md, gd);
  interrupt_test(md);
  return tl_done();
}
