/* Golden tests of the xlstm_v1 engine (mLSTM v1 + sLSTM, docs/xlstm-v1-math.md) on the
 * fixtures under tests/golden/fixtures-v1: prefill logits through the chunkwise form
 * (several chunk sizes, worker counts, head bands) and the recurrent backend against
 * caseN.logits, token-by-token stepping against caseN.step_logits (max |diff| <= 2e-3,
 * mean <= 2e-4), a state round trip through xl_v1_state_visit at several split points,
 * derived checkpoints (F16/BF16 weights, tied embeddings, no FFN, no post norm), config
 * refusals naming the field, and the tensor list that xl-init writes. */
#include "engine/engine.h"
#include "engine/v1/v1.h"
#include "io/safetensors.h"
#include "goldenlib.h"
#include "testlib.h"
#include "base/util.h"
#include <cJSON.h>
#include <math.h>
#include <unistd.h>

/* ---- state capture through xl_v1_state_visit ---- */

typedef struct { int n; char name[64][32]; float *data[64]; size_t numel[64]; int load; int bad; } snap;

static void snap_fn(void *ctx, const char *name, float *data, int ndim, const int64_t *shape) {
  snap *sn = ctx;
  size_t numel = 1;
  for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
  if (!sn->load) {
    if (sn->n == 64) { sn->bad = 1; return; }
    snprintf(sn->name[sn->n], sizeof sn->name[0], "%s", name);
    sn->numel[sn->n] = numel;
    sn->data[sn->n] = xl_malloc(sizeof(float) * numel);
    memcpy(sn->data[sn->n], data, sizeof(float) * numel);
    sn->n++;
    return;
  }
  for (int i = 0; i < sn->n; i++)
    if (!strcmp(sn->name[i], name)) {
      if (sn->numel[i] != numel) sn->bad = 1;
      else memcpy(data, sn->data[i], sizeof(float) * numel);
      return;
    }
  sn->bad = 1;
}
static void snap_free(snap *sn) {
  for (int i = 0; i < sn->n; i++) free(sn->data[i]);
}

/* Prefill k tokens, capture the state, load it into a fresh session, step the rest. */
static void split_test(const char *name, const xl_model *m, const gcase *gc, const float *ref) {
  char err[256];
  int V = m->cfg.vocab, T = gc->n;
  xl_runopts o;
  xl_runopts_default(&o, m);
  o.chunk_size = 7;
  const int ks[] = {1, 3, 7, 20, T - 1};
  for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
    int k = ks[ki];
    if (k < 1 || k >= T) continue;
    xl_session *a = xl_session_new(m, &o, err, sizeof err);
    xl_prefill(a, gc->ids, k, NULL);
    snap sn = {0};
    xl_session_visit_state(a, snap_fn, &sn, 0);
    xl_session_free(a);
    xl_session *b = xl_session_new(m, &o, err, sizeof err);
    sn.load = 1;
    xl_session_visit_state(b, snap_fn, &sn, 1);
    double worst = 0, wmean = 0;
    for (int t = k; t < T; t++) {
      xl_step(b, gc->ids[t]);
      double mx, mean;
      diff(b->logits, ref + (size_t)t * V, (size_t)V, &mx, &mean);
      worst = fmax(worst, mx);
      wmean = fmax(wmean, mean);
    }
    CHECK(!sn.bad && sn.n > 0 && worst <= 2e-3 && wmean <= 2e-4,
          "%s: state saved after %d tokens, loaded into a new session, %d steps: max %.2e mean %.2e (%d tensors)", name, k, T - k,
          worst, wmean, sn.n);
    /* without the loaded state the continuation differs: the test can fail */
    xl_session_reset(b);
    xl_step(b, gc->ids[k]);
    double mx, mean;
    diff(b->logits, ref + (size_t)k * V, (size_t)V, &mx, &mean);
    CHECK(mx > 1e-2, "%s: k=%d: an empty state gives other logits (max diff %.2e)", name, k, mx);
    xl_session_free(b);
    snap_free(&sn);
  }
}

/* Every state tensor is visited once with a distinct name, and together they cover the state. */
static void visit_shape_test(const char *name, const xl_model *m) {
  char err[256];
  xl_runopts o;
  xl_runopts_default(&o, m);
  xl_session *s = xl_session_new(m, &o, err, sizeof err);
  snap sn = {0};
  xl_session_visit_state(s, snap_fn, &sn, 0);
  const xl_v1_config *v = m->cfg.arch_cfg;
  size_t want = 0, got = 0;
  int want_n = 0, dup = 0;
  for (int b = 0; b < m->cfg.n_blocks; b++) {
    if (v->is_slstm[b]) { want += 4 * (size_t)m->cfg.D + (v->s_conv > 1 ? (size_t)(v->s_conv - 1) * m->cfg.D : 0); want_n += 4 + (v->s_conv > 1); }
    else {
      size_t DH = (size_t)v->I / v->m_heads;
      want += (size_t)v->m_heads * (DH * DH + DH + 1) + (size_t)(v->m_conv - 1) * v->I;
      want_n += 3 + (v->m_conv > 1);
    }
  }
  for (int i = 0; i < sn.n; i++) {
    got += sn.numel[i];
    for (int j = 0; j < i; j++) dup |= !strcmp(sn.name[i], sn.name[j]);
  }
  CHECK(!sn.bad && sn.n == want_n && got == want && !dup, "%s: state visit: %d tensors, %zu floats (want %d, %zu), names distinct", name,
        sn.n, got, want_n, want);
  snap_free(&sn);
  xl_session_free(s);
}

typedef struct { xl_backend b; int ck, w, hpb; } variant;

/* The golden comparisons of one checkpoint; returns the model (caller frees) or NULL. */
static void run_golden(const char *name, const char *dir) {
  char err[512], path[4200];
  xl_model *m = xl_model_load(dir, err, sizeof err);
  CHECK(m != NULL, "%s: model loads (%s)", name, m ? "ok" : err);
  if (!m) return;
  CHECK(m->cfg.arch == XL_ARCH_V1 && m->cfg.qk_dim == 0 && m->cfg.ffn == 0 && m->cfg.chunk_size == 64 && m->cfg.bos_id == -1,
        "%s: config: v1, generic 7B dims zero, chunk 64, no bos", name);
  snprintf(path, sizeof path, "%s/golden.safetensors", dir);
  st_set g;
  int grc = st_open_file(&g, path, err, sizeof err);
  CHECK(grc == 0, "%s: golden file opens", name);
  if (grc) { xl_model_free(m); return; }
  snprintf(path, sizeof path, "%s/golden.json", dir);
  gcase cases[16];
  int nc = load_cases(path, cases, 16);
  CHECK(nc >= 4, "%s: %d golden cases", name, nc);
  int V = m->cfg.vocab;
  const variant vars[] = {
    {XL_BACKEND_CHUNKWISE, 64, 1, 1}, {XL_BACKEND_CHUNKWISE, 1, 1, 1}, {XL_BACKEND_CHUNKWISE, 7, 1, 1},
    {XL_BACKEND_CHUNKWISE, 7, 2, 1},  {XL_BACKEND_CHUNKWISE, 64, 2, 2}, {XL_BACKEND_CHUNKWISE, 1, 2, 3},
    {XL_BACKEND_RECURRENT, 64, 1, 1}, {XL_BACKEND_RECURRENT, 64, 2, 1},
  };
  for (size_t vi = 0; vi < sizeof vars / sizeof *vars; vi++) {
    xl_runopts o = {.backend = vars[vi].b, .chunk_size = vars[vi].ck, .workers = vars[vi].w, .heads_per_band = vars[vi].hpb};
    xl_session *s = xl_session_new(m, &o, err, sizeof err);
    CHECK(s != NULL, "%s: session (%s)", name, s ? "ok" : err);
    if (!s) continue;
    char label[256];
    snprintf(label, sizeof label, "%s %s ck=%d w=%d hpb=%d", name, xl_backend_name(o.backend), o.chunk_size, o.workers, o.heads_per_band);
    double worst = 0, wmean = 0;
    int kept = 1, missing = 0;
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
      else missing = 1;
      worst = fmax(worst, mx);
      wmean = fmax(wmean, mean);
      kept &= !memcmp(s->logits, lg + (size_t)(T - 1) * V, sizeof(float) * V) && s->tokens == T &&
              s->last_token == cases[ci].ids[T - 1];
      free(lg);
    }
    CHECK(!missing && worst <= 2e-3 && wmean <= 2e-4, "%s: logits of %d cases: max %.2e mean %.2e", label, nc, worst, wmean);
    CHECK(kept, "%s: session keeps the last logits, token count and last token", label);
    xl_session_free(s);
  }
  /* token by token against step_logits, with 1 and 2 workers */
  for (int w = 1; w <= 2; w++) {
    xl_runopts o;
    xl_runopts_default(&o, m);
    o.workers = w;
    o.heads_per_band = w == 2 ? 1 : 2;
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
        double mx = 1e9, mean = 1e9;
        if (ref) diff(s->logits, ref + (size_t)t * V, (size_t)V, &mx, &mean);
        worst = fmax(worst, mx);
        wmean = fmax(wmean, mean);
      }
      CHECK(ref && worst <= 2e-3 && wmean <= 2e-4 && s->tokens == T, "%s w=%d case %d (T=%d): step_logits max %.2e mean %.2e", name, w, ci,
            T, worst, wmean);
      if (w == 1) {   /* prefill without all-position logits ends at the same logits */
        float *last = xl_malloc(sizeof(float) * V);
        memcpy(last, s->logits, sizeof(float) * V);
        xl_session_reset(s);
        xl_prefill(s, cases[ci].ids, T, NULL);
        double mx, mean;
        diff(s->logits, last, (size_t)V, &mx, &mean);
        CHECK(mx <= 2e-3, "%s case %d: chunkwise last logits agree with stepping (max %.2e)", name, ci, mx);
        free(last);
      }
    }
    xl_session_free(s);
  }
  /* the longest case: state round trips */
  int longest = 0;
  for (int ci = 1; ci < nc; ci++) if (cases[ci].n > cases[longest].n) longest = ci;
  char nm[64];
  snprintf(nm, sizeof nm, "case%d.step_logits", longest);
  const float *ref = golden(&g, nm, (int64_t)cases[longest].n * V);
  if (ref) split_test(name, m, &cases[longest], ref);
  visit_shape_test(name, m);
  for (int ci = 0; ci < nc; ci++) free(cases[ci].ids);
  st_close(&g);
  xl_model_free(m);
}

/* ---- derived checkpoints ---- */

typedef struct {
  st_dtype dtype;          /* weights written as */
  int drop_lm_head;        /* tie: no lm_head.weight */
  int lm_from_embed;       /* lm_head.weight := token_embedding.weight */
  int drop_ffn;            /* no ffn.* / ffn_norm tensors */
  int zero_ffn_down;       /* ffn.proj_down := 0 */
  int drop_post_norm;
} derive_opts;

/* Writes dst/{config.json, model.safetensors} from src with the changes in o and config text cfg. */
static int derive(const char *src, const char *dst, const char *cfg, const derive_opts *o) {
  char err[256], path[4200];
  st_set in;
  snprintf(path, sizeof path, "%s/model.safetensors", src);
  if (st_open_file(&in, path, err, sizeof err)) return -1;
  xl_mkdirs(dst);
  st_writer w;
  st_writer_init(&w);
  void **bufs = xl_calloc((size_t)in.ntensors, sizeof(void *));
  const st_tensor *emb = st_find(&in, "token_embedding.weight");
  for (int i = 0; i < in.ntensors; i++) {
    const st_tensor *t = &in.tensors[i];
    const char *nm = t->name;
    if (o->drop_lm_head && !strcmp(nm, "lm_head.weight")) continue;
    if (o->drop_ffn && (strstr(nm, ".ffn.") || strstr(nm, ".ffn_norm."))) continue;
    if (o->drop_post_norm && strstr(nm, "post_blocks_norm")) continue;
    const float *f = t->data;
    if (o->lm_from_embed && !strcmp(nm, "lm_head.weight")) f = emb->data;
    size_t n = (size_t)t->numel, es = st_dtype_size(o->dtype);
    bufs[i] = xl_malloc(n * es);
    for (size_t j = 0; j < n; j++) {
      float x = o->zero_ffn_down && strstr(nm, "ffn.proj_down") ? 0.0f : f[j];
      if (o->dtype == ST_F32) ((float *)bufs[i])[j] = x;
      else ((uint16_t *)bufs[i])[j] = o->dtype == ST_BF16 ? xl_f32_to_bf16(x) : xl_f32_to_f16(x);
    }
    st_writer_add(&w, nm, o->dtype, t->ndim, t->shape, bufs[i]);
  }
  snprintf(path, sizeof path, "%s/model.safetensors", dst);
  int rc = st_writer_write(&w, path, err, sizeof err);
  st_writer_free(&w);
  for (int i = 0; i < in.ntensors; i++) free(bufs[i]);
  free(bufs);
  st_close(&in);
  snprintf(path, sizeof path, "%s/config.json", dst);
  if (!rc) rc = xl_write_file_atomic(path, cfg, strlen(cfg));
  return rc;
}

/* The fixture's config.json with one edit made through cJSON (key path a.b.c = json value). */
static char *edit_config(const char *dir, const char *const *keys, int nkeys, const char *value_json) {
  char path[4200];
  snprintf(path, sizeof path, "%s/config.json", dir);
  char *text = xl_read_file(path, NULL);
  cJSON *root = cJSON_Parse(text), *o = root;
  free(text);
  for (int i = 0; i + 1 < nkeys; i++) o = cJSON_GetObjectItem(o, keys[i]);
  if (value_json) cJSON_ReplaceItemInObject(o, keys[nkeys - 1], cJSON_Parse(value_json));
  char *s = cJSON_Print(root), *r = xl_strdup(s);
  cJSON_free(s);
  cJSON_Delete(root);
  return r;
}

/* Last-row logits of a prefill of ids (chunkwise 7) into out [V]; 0 ok. */
static int logits_of(const char *dir, const gcase *gc, float *out, char *err, size_t errlen) {
  xl_model *m = xl_model_load(dir, err, errlen);
  if (!m) return -1;
  xl_runopts o;
  xl_runopts_default(&o, m);
  o.chunk_size = 7;
  xl_session *s = xl_session_new(m, &o, err, errlen);
  xl_prefill(s, gc->ids, gc->n, NULL);
  memcpy(out, s->logits, sizeof(float) * (size_t)m->cfg.vocab);
  xl_session_free(s);
  xl_model_free(m);
  return 0;
}

static void derived_tests(const char *fx, const char *tmp) {
  char err[512], d1[4200], d2[4200], gpath[4200];
  snprintf(gpath, sizeof gpath, "%s/golden.json", fx);
  gcase cases[8];
  int nc = load_cases(gpath, cases, 8);
  if (nc < 3) { CHECK(0, "derived: cases"); return; }
  gcase *gc = &cases[2];
  float ref[1024], got[1024];
  CHECK(logits_of(fx, gc, ref, err, sizeof err) == 0, "derived: reference run");
  const char *const kn[] = {"xlstm", "tie_weights"};
  char *cfg0 = edit_config(fx, kn, 2, NULL);
  /* half-precision weights */
  const st_dtype dts[2] = {ST_F16, ST_BF16};
  const double tol[2] = {2e-2, 1.5e-1};
  for (int i = 0; i < 2; i++) {
    snprintf(d1, sizeof d1, "%s/%s", tmp, st_dtype_name(dts[i]));
    derive_opts o = {dts[i], 0, 0, 0, 0, 0};
    int rc = derive(fx, d1, cfg0, &o);
    double mx = 1e9, mean = 1e9;
    if (!rc && !logits_of(d1, gc, got, err, sizeof err)) diff(got, ref, 320, &mx, &mean);
    CHECK(mx <= tol[i], "derived %s weights: logits within %.0e of F32 (max %.2e)", st_dtype_name(dts[i]), tol[i], mx);
  }
  /* tied embeddings == an untied checkpoint whose lm_head is the embedding */
  char *cfg_tie = edit_config(fx, kn, 2, "true");
  snprintf(d1, sizeof d1, "%s/tied", tmp);
  snprintf(d2, sizeof d2, "%s/untied-copy", tmp);
  derive_opts ot = {ST_F32, 1, 0, 0, 0, 0}, ou = {ST_F32, 0, 1, 0, 0, 0};
  int ok = !derive(fx, d1, cfg_tie, &ot) && !derive(fx, d2, cfg0, &ou);
  ok = ok && !logits_of(d1, gc, got, err, sizeof err) && !logits_of(d2, gc, ref, err, sizeof err);
  double mx = 1e9, mean;
  if (ok) diff(got, ref, 320, &mx, &mean);
  CHECK(ok && mx == 0, "derived: tie_weights uses the embedding as LM head (max diff %.2e)", mx);
  /* tie_weights false without lm_head.weight is refused naming the tensor */
  snprintf(d1, sizeof d1, "%s/untied-missing", tmp);
  derive(fx, d1, cfg0, &ot);
  xl_model *m = xl_model_load(d1, err, sizeof err);
  CHECK(!m && strstr(err, "lm_head.weight"), "derived: missing lm_head refused: %s", m ? "loaded" : err);
  xl_model_free(m);
  /* sLSTM blocks without FFN == FFN with a zero down projection */
  const char *const kf[] = {"xlstm", "slstm_block", "feedforward"};
  char *cfg_noffn = edit_config(fx, kf, 3, "null");
  snprintf(d1, sizeof d1, "%s/noffn", tmp);
  snprintf(d2, sizeof d2, "%s/zeroffn", tmp);
  derive_opts on = {ST_F32, 0, 0, 1, 0, 0}, oz = {ST_F32, 0, 0, 0, 1, 0};
  ok = !derive(fx, d1, cfg_noffn, &on) && !derive(fx, d2, cfg0, &oz);
  ok = ok && !logits_of(d1, gc, got, err, sizeof err) && !logits_of(d2, gc, ref, err, sizeof err);
  mx = 1e9;
  if (ok) diff(got, ref, 320, &mx, &mean);
  CHECK(ok && mx <= 1e-6, "derived: blocks without FFN (max diff to a zero FFN %.2e)%s%s", mx, ok ? "" : ": ", ok ? "" : err);
  /* no post-blocks norm: loads without the tensor and gives other finite logits */
  const char *const kp[] = {"xlstm", "add_post_blocks_norm"};
  char *cfg_nopost = edit_config(fx, kp, 2, "false");
  snprintf(d1, sizeof d1, "%s/nopost", tmp);
  derive_opts op = {ST_F32, 0, 0, 0, 0, 1};
  ok = !derive(fx, d1, cfg_nopost, &op) && !logits_of(d1, gc, got, err, sizeof err);
  int finite = 1;
  for (int i = 0; ok && i < 320; i++) finite &= isfinite(got[i]);
  CHECK(ok && finite, "derived: add_post_blocks_norm false loads and runs%s%s", ok ? "" : ": ", ok ? "" : err);
  free(cfg0); free(cfg_tie); free(cfg_noffn); free(cfg_nopost);
  for (int ci = 0; ci < nc; ci++) free(cases[ci].ids);
}

/* ---- config refusals ---- */

static void config_tests(const char *fx) {
  struct { const char *const keys[4]; int nk; const char *val; const char *want; } bad[] = {
    {{"xlstm", "slstm_block", "feedforward", "act_fn"}, 4, "\"relu\"", "act_fn"},
    {{"xlstm", "bias"}, 2, "true", "xlstm.bias"},
    {{"xlstm", "mlstm_block", "mlstm", "bias"}, 4, "true", "mlstm.bias"},
    {{"xlstm", "slstm_at"}, 2, "[7]", "slstm_at"},
    {{"xlstm", "slstm_block", "slstm", "num_heads"}, 4, "3", "num_heads"},
    {{"xlstm", "mlstm_block", "mlstm", "qkv_proj_blocksize"}, 4, "7", "qkv_proj_blocksize"},
    {{"xlstm", "embedding_dim"}, 2, "\"x\"", "embedding_dim"},
    {{"xlstm", "slstm_block", "feedforward", "ff_type"}, 4, "\"ffn_plain\"", "ff_type"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *text = edit_config(fx, bad[i].keys, bad[i].nk, bad[i].val), err[512] = "";
    xl_config c;
    int rc = xl_config_parse(&c, text, "config.json", err, sizeof err);
    CHECK(rc == -1 && strstr(err, bad[i].want), "config refused naming %s: %s", bad[i].want, err);
    if (!rc) xl_config_free(&c);
    free(text);
  }
  /* the fixture's numbers; the dumped feedforward has _proj_up_dim 0 and is recomputed */
  char err[512];
  xl_config c;
  int rc = xl_config_load(&c, fx, err, sizeof err);
  const xl_v1_config *v = rc ? NULL : c.arch_cfg;
  CHECK(v && c.D == 128 && c.n_blocks == 4 && c.vocab == 320 && v->I == 256 && v->m_heads == 4 && v->s_heads == 4 && v->s_ffn == 192 &&
            v->is_slstm[1] && v->is_slstm[3] && !v->is_slstm[0] && v->m_conv == 4 && v->qkv_bs == 4 && !v->tie && v->add_post_norm,
        "config: fixture numbers (I 256, F 192, slstm_at 1,3)");
  /* json round trip */
  if (v) {
    char *js = xl_v1_config_json(&c);
    xl_config c2;
    int rc2 = xl_config_parse(&c2, js, "roundtrip", err, sizeof err);
    const xl_v1_config *v2 = rc2 ? NULL : c2.arch_cfg;
    CHECK(v2 && c2.D == c.D && c2.n_blocks == c.n_blocks && c2.vocab == c.vocab && v2->I == v->I && v2->s_ffn == v->s_ffn &&
              !memcmp(v2->is_slstm, v->is_slstm, (size_t)c.n_blocks) && v2->m_heads == v->m_heads && v2->s_heads == v->s_heads,
          "config: xl_v1_config_json parses back to the same config");
    if (!rc2) xl_config_free(&c2);
    free(js);
    xl_config_free(&c);
  }
}

/* ---- tensor specs vs the fixture files ---- */

typedef struct { const st_set *st; int n, match; char first_bad[128]; } spec_ctx;

static void spec_check(void *ctx, const char *name, int ndim, const int64_t *shape) {
  spec_ctx *sc = ctx;
  const st_tensor *t = st_find(sc->st, name);
  int ok = t && t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
  sc->n++;
  if (ok) sc->match++;
  else if (!sc->first_bad[0]) snprintf(sc->first_bad, sizeof sc->first_bad, "%s", name);
}

static void spec_tests(const char *fx, const char *name) {
  char err[256], path[4200];
  xl_config c;
  st_set st;
  snprintf(path, sizeof path, "%s/model.safetensors", fx);
  if (xl_config_load(&c, fx, err, sizeof err) || st_open_file(&st, path, err, sizeof err)) { CHECK(0, "%s: specs setup: %s", name, err); return; }
  spec_ctx sc = {&st, 0, 0, ""};
  int n = xl_v1_tensor_specs(&c, spec_check, &sc);
  CHECK(n == st.ntensors && sc.match == n, "%s: xl_v1_tensor_specs lists the checkpoint's %d tensors (%d listed, %d match%s%s)", name,
        st.ntensors, n, sc.match, sc.first_bad[0] ? ", first mismatch " : "", sc.first_bad);
  st_close(&st);
  xl_config_free(&c);
  /* a made config matches the fixture's structure */
  int at[2] = {1, 3};
  xl_config mk;
  int rc = xl_v1_config_make(&mk, 128, 4, 320, at, 2, 4, 4, 1, 0, err, sizeof err);
  const xl_v1_config *v = rc ? NULL : mk.arch_cfg;
  CHECK(v && v->I == 256 && v->s_ffn == 192 && v->is_slstm[3], "xl_v1_config_make derives I 256 and F 192 for D 128");
  if (!rc) xl_config_free(&mk);
}

int main(void) {
  char dir[4096], tmp[] = "/tmp/xl-test-v1-XXXXXX";
  const char *fx[] = {"v1-m-s-m-s", "v1-m-only"};
  for (int i = 0; i < 2; i++) {
    snprintf(dir, sizeof dir, "%s/fixtures-v1/%s", tl_golden_dir(), fx[i]);
    run_golden(fx[i], dir);
    spec_tests(dir, fx[i]);
  }
  snprintf(dir, sizeof dir, "%s/fixtures-v1/v1-m-s-m-s", tl_golden_dir());
  config_tests(dir);
  if (mkdtemp(tmp)) {
    derived_tests(dir, tmp);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "warning: could not remove %s\n", tmp);
  } else {
    CHECK(0, "temp dir");
  }
  return tl_done();
}
