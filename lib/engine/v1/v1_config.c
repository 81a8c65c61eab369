/* v1_config: the original xLSTM's config.json ({"model_type":"xlstm_v1","xlstm":{...}},
 * the authors' xLSTMLMModelConfig as a dict) into xl_config + xl_v1_config, and the tensor
 * list such a checkpoint holds (also used to write random checkpoints). See v1.h and
 * docs/xlstm-v1-math.md. Not for: binding (v1_model.c) or running (v1_run.c). */
#include "engine/v1/v1_internal.h"
#include "base/util.h"
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- config.json ---- */

typedef struct { const char *path; char *err; size_t errlen; } pctx;

static const cJSON *item(const cJSON *o, const char *key) {
  const cJSON *j = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
  return j && !cJSON_IsNull(j) ? j : NULL;
}

/* Integer field `where.key`; absent/null -> def. */
static int jint(pctx *p, const cJSON *o, const char *where, const char *key, long def, long lo, long hi, int *out) {
  const cJSON *j = item(o, key);
  if (!j) { *out = (int)def; return 0; }
  if (!cJSON_IsNumber(j) || floor(j->valuedouble) != j->valuedouble || j->valuedouble < lo || j->valuedouble > hi)
    return xl_errf(p->err, p->errlen, "%s: field \"%s%s%s\" must be an integer in [%ld, %ld]", p->path, where, *where ? "." : "", key, lo, hi);
  *out = (int)j->valuedouble;
  return 0;
}
static int jnum(pctx *p, const cJSON *o, const char *where, const char *key, double def, double lo, double hi, double *out) {
  const cJSON *j = item(o, key);
  if (!j) { *out = def; return 0; }
  if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi))
    return xl_errf(p->err, p->errlen, "%s: field \"%s%s%s\" must be a number in [%g, %g]", p->path, where, *where ? "." : "", key, lo, hi);
  *out = j->valuedouble;
  return 0;
}
static int jbool(pctx *p, const cJSON *o, const char *where, const char *key, int def, int *out) {
  const cJSON *j = item(o, key);
  if (!j) { *out = def; return 0; }
  if (!cJSON_IsBool(j)) return xl_errf(p->err, p->errlen, "%s: field \"%s%s%s\" must be true or false", p->path, where, *where ? "." : "", key);
  *out = cJSON_IsTrue(j);
  return 0;
}
/* A string field that must equal `want` when present. */
static int jstr_is(pctx *p, const cJSON *o, const char *where, const char *key, const char *want) {
  const cJSON *j = item(o, key);
  if (!j) return 0;
  if (!cJSON_IsString(j) || strcmp(j->valuestring, want))
    return xl_errf(p->err, p->errlen, "%s: field \"%s%s%s\" is %s%s%s; only \"%s\" is supported", p->path, where, *where ? "." : "", key,
               cJSON_IsString(j) ? "\"" : "", cJSON_IsString(j) ? j->valuestring : "not a string", cJSON_IsString(j) ? "\"" : "", want);
  return 0;
}
/* A field that must be false when present (biases are not supported). */
static int jfalse(pctx *p, const cJSON *o, const char *where, const char *key) {
  int v;
  if (jbool(p, o, where, key, 0, &v)) return -1;
  if (v) return xl_errf(p->err, p->errlen, "%s: field \"%s%s%s\" is true; only bias-free v1 models are supported", p->path, where, *where ? "." : "", key);
  return 0;
}
/* An object field: absent/null -> NULL (ok); present but not an object -> error. */
static int jobj(pctx *p, const cJSON *o, const char *where, const char *key, const cJSON **out) {
  *out = item(o, key);
  if (*out && !cJSON_IsObject(*out)) return xl_errf(p->err, p->errlen, "%s: field \"%s%s%s\" must be an object", p->path, where, *where ? "." : "", key);
  return 0;
}

/* The package's projection sizing: factor*D rounded up (or down) to a multiple. */
static int proj_dim(double factor, int D, int mult, int up) {
  double k = factor * D / mult;
  return (int)((up ? ceil(k) : floor(k)) * mult);
}

/* FFN dim of a feedforward config object (the dump may hold _proj_up_dim 0: recompute). */
static int parse_ffn(pctx *p, const cJSON *ff, int D, int *F) {
  const char *w = "xlstm.slstm_block.feedforward";
  int pud, mult, up;
  double pf;
  if (jstr_is(p, ff, w, "act_fn", "gelu") || jstr_is(p, ff, w, "ff_type", "ffn_gated") || jfalse(p, ff, w, "bias") ||
      jint(p, ff, w, "_proj_up_dim", 0, 0, 1 << 24, &pud) || jnum(p, ff, w, "proj_factor", 1.3, 1e-6, 1024, &pf) ||
      jint(p, ff, w, "round_proj_up_to_multiple_of", 64, 1, 1 << 20, &mult) || jbool(p, ff, w, "round_proj_up_dim_up", 1, &up))
    return -1;
  *F = pud > 0 ? pud : proj_dim(pf, D, mult, up);
  if (*F < 1) return xl_errf(p->err, p->errlen, "%s: field \"%s.proj_factor\" gives an empty FFN", p->path, w);
  if (*F > 1 << 24)   /* the bound of _proj_up_dim: the tensor shapes (2F) stay ints */
    return xl_errf(p->err, p->errlen, "%s: field \"%s.proj_factor\" gives an FFN dim %d above %d", p->path, w, *F, 1 << 24);
  return 0;
}

int xl_v1_config_parse(xl_config *c, const cJSON *root, const char *path, char *err, size_t errlen) {
  pctx P = {path, err, errlen}, *p = &P;
  const cJSON *x;
  if (jobj(p, root, "", "xlstm", &x)) return -1;
  if (!x) return xl_errf(err, errlen, "%s: missing field \"xlstm\" (the xLSTMLMModelConfig of a model_type \"xlstm_v1\" checkpoint)", path);
  const char *w = "xlstm";
  int D, nb, V, tie, post, chunk;
  if (jint(p, x, w, "embedding_dim", -1, 1, 1 << 20, &D) || jint(p, x, w, "num_blocks", -1, 1, 4096, &nb) ||
      jint(p, x, w, "vocab_size", -1, 1, 1 << 24, &V))
    return -1;
  if (!item(x, "embedding_dim")) return xl_errf(err, errlen, "%s: missing field \"xlstm.embedding_dim\"", path);
  if (!item(x, "num_blocks")) return xl_errf(err, errlen, "%s: missing field \"xlstm.num_blocks\"", path);
  if (!item(x, "vocab_size")) return xl_errf(err, errlen, "%s: missing field \"xlstm.vocab_size\"", path);
  if (jbool(p, x, w, "tie_weights", 0, &tie) || jbool(p, x, w, "add_post_blocks_norm", 1, &post) || jfalse(p, x, w, "bias"))
    return -1;
  xl_v1_config *v = xl_calloc(1, sizeof *v + (size_t)nb);
  v->n_blocks = nb;
  v->tie = tie;
  v->add_post_norm = post;
  const cJSON *sa = item(x, "slstm_at");
  if (sa && cJSON_IsString(sa) && !strcmp(sa->valuestring, "all")) {
    memset(v->is_slstm, 1, (size_t)nb);
  } else if (sa) {
    const cJSON *e;
    if (!cJSON_IsArray(sa)) goto bad_at;
    cJSON_ArrayForEach(e, sa) {
      if (!cJSON_IsNumber(e) || floor(e->valuedouble) != e->valuedouble || e->valuedouble < 0 || e->valuedouble >= nb) goto bad_at;
      v->is_slstm[(int)e->valuedouble] = 1;
    }
  }
  int any_m = 0, any_s = 0;
  for (int i = 0; i < nb; i++) { if (v->is_slstm[i]) any_s = 1; else any_m = 1; }
  const cJSON *mb, *ml, *sb, *sl, *ff;
  if (jobj(p, x, w, "mlstm_block", &mb) || jobj(p, mb, "xlstm.mlstm_block", "mlstm", &ml) || jobj(p, x, w, "slstm_block", &sb) ||
      jobj(p, sb, "xlstm.slstm_block", "slstm", &sl) || jobj(p, sb, "xlstm.slstm_block", "feedforward", &ff))
    goto fail;
  if (any_m) {
    const char *wm = "xlstm.mlstm_block.mlstm";
    int inner, mult, up, ed;
    double pf;
    if (!ml) { xl_errf(err, errlen, "%s: missing field \"%s\" (blocks outside slstm_at are mLSTM)", path, wm); goto fail; }
    if (jint(p, ml, wm, "num_heads", 4, 1, 4096, &v->m_heads) || jint(p, ml, wm, "conv1d_kernel_size", 4, 1, 256, &v->m_conv) ||
        jint(p, ml, wm, "qkv_proj_blocksize", 4, 1, 1 << 16, &v->qkv_bs) || jfalse(p, ml, wm, "bias") ||
        jint(p, ml, wm, "_inner_embedding_dim", 0, 0, 1 << 22, &inner) || jnum(p, ml, wm, "proj_factor", 2.0, 1e-6, 1024, &pf) ||
        jint(p, ml, wm, "round_proj_up_to_multiple_of", 64, 1, 1 << 20, &mult) ||
        jbool(p, ml, wm, "round_proj_up_dim_up", 1, &up) || jint(p, ml, wm, "embedding_dim", -1, -1, 1 << 20, &ed))
      goto fail;
    if (ed > 0 && ed != D) { xl_errf(err, errlen, "%s: field \"%s.embedding_dim\" (%d) differs from xlstm.embedding_dim (%d)", path, wm, ed, D); goto fail; }
    v->I = inner > 0 ? inner : proj_dim(pf, D, mult, up);
    if (v->I > 1 << 22) {   /* the bound of _inner_embedding_dim: the tensor shapes (3I) stay ints */
      xl_errf(err, errlen, "%s: field \"%s.proj_factor\" gives an inner dim %d above %d", path, wm, v->I, 1 << 22);
      goto fail;
    }
    if (v->I < 1 || v->I % v->m_heads) {
      xl_errf(err, errlen, "%s: field \"%s.num_heads\" (%d) does not divide the inner dim %d", path, wm, v->m_heads, v->I);
      goto fail;
    }
    if (v->I % v->qkv_bs) {
      xl_errf(err, errlen, "%s: field \"%s.qkv_proj_blocksize\" (%d) does not divide the inner dim %d", path, wm, v->qkv_bs, v->I);
      goto fail;
    }
  }
  if (any_s) {
    const char *ws = "xlstm.slstm_block.slstm";
    int hs, ng, ns;
    if (!sl) { xl_errf(err, errlen, "%s: missing field \"%s\" (slstm_at names sLSTM blocks)", path, ws); goto fail; }
    if (jint(p, sl, ws, "num_heads", 4, 1, 4096, &v->s_heads) || jint(p, sl, ws, "conv1d_kernel_size", 4, 0, 256, &v->s_conv) ||
        jint(p, sl, ws, "hidden_size", -1, -1, 1 << 20, &hs) || jint(p, sl, ws, "num_gates", 4, 4, 4, &ng) ||
        jint(p, sl, ws, "num_states", 4, 4, 4, &ns) || jbool(p, sl, ws, "group_norm_weight", 1, &v->group_norm_weight) ||
        jstr_is(p, sl, ws, "function", "slstm"))
      goto fail;
    if (hs > 0 && hs != D) { xl_errf(err, errlen, "%s: field \"%s.hidden_size\" (%d) differs from xlstm.embedding_dim (%d)", path, ws, hs, D); goto fail; }
    if (D % v->s_heads) { xl_errf(err, errlen, "%s: field \"%s.num_heads\" (%d) does not divide embedding_dim %d", path, ws, v->s_heads, D); goto fail; }
    if (ff && parse_ffn(p, ff, D, &v->s_ffn)) goto fail;
  }
  if (jint(p, root, "", "chunk_size", 64, 1, XL_CHUNK_MAX, &chunk)) goto fail;
  c->arch = XL_ARCH_V1;
  c->D = D;
  c->n_blocks = nb;
  c->vocab = V;
  c->n_heads = any_m ? v->m_heads : v->s_heads;
  c->qk_dim = c->v_dim = c->dk = c->dv = c->ffn = 0;   /* keeps the generic 7B buffers empty */
  c->gate_soft_cap = c->logit_soft_cap = 0;
  c->norm_eps = XL_V1_LN_EPS;
  c->eps = XL_V1_CELL_EPS;
  c->use_bias = 0;
  c->add_out_norm = post;
  c->tie_embeddings = tie;
  c->chunk_size = chunk;
  /* token ids: top level (tokenizer side) or inside "xlstm"; -1 when absent */
  const char *tk[3] = {"bos_token_id", "eos_token_id", "pad_token_id"};
  int *dst[3] = {&c->bos_id, &c->eos_id, &c->pad_id};
  for (int i = 0; i < 3; i++) {
    const cJSON *o = item(root, tk[i]) ? root : x;
    if (jint(p, o, o == root ? "" : "xlstm", tk[i], -1, -1, 1 << 30, dst[i])) goto fail;
  }
  c->arch_cfg = v;
  return 0;
bad_at:
  xl_errf(err, errlen, "%s: field \"xlstm.slstm_at\" must be \"all\" or a list of block indices in [0, %d)", path, nb);
fail:
  free(v);
  return -1;
}

int xl_v1_config_make(xl_config *c, int D, int n_blocks, int vocab, const int *slstm_at, int n_slstm, int m_heads, int s_heads,
                      int ffn, int tie, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  if (D < 1 || n_blocks < 1 || vocab < 1 || m_heads < 1 || s_heads < 1)
    return xl_errf(err, errlen, "v1 config: D, blocks, vocab and heads must be >= 1");
  xl_v1_config *v = xl_calloc(1, sizeof *v + (size_t)n_blocks);
  v->n_blocks = n_blocks;
  for (int i = 0; i < n_slstm; i++) {
    if (slstm_at[i] < 0 || slstm_at[i] >= n_blocks) { free(v); return xl_errf(err, errlen, "v1 config: slstm_at index %d out of range", slstm_at[i]); }
    v->is_slstm[slstm_at[i]] = 1;
  }
  int any_m = 0, any_s = 0;
  for (int i = 0; i < n_blocks; i++) { if (v->is_slstm[i]) any_s = 1; else any_m = 1; }
  if (any_m) {
    v->I = proj_dim(2.0, D, 64, 1);
    v->m_heads = m_heads; v->m_conv = 4; v->qkv_bs = 4;
    if (v->I % m_heads) {
      int I = v->I;
      free(v);
      return xl_errf(err, errlen, "v1 config: mLSTM heads %d do not divide the inner dim %d", m_heads, I);
    }
  }
  if (any_s) {
    v->s_heads = s_heads; v->s_conv = 4; v->group_norm_weight = 1;
    v->s_ffn = ffn ? proj_dim(1.3, D, 64, 1) : 0;
    if (D % s_heads) { free(v); return xl_errf(err, errlen, "v1 config: sLSTM heads %d do not divide D %d", s_heads, D); }
  }
  v->add_post_norm = 1;
  v->tie = tie;
  c->arch = XL_ARCH_V1;
  c->D = D; c->n_blocks = n_blocks; c->vocab = vocab;
  c->n_heads = any_m ? m_heads : s_heads;
  c->norm_eps = XL_V1_LN_EPS; c->eps = XL_V1_CELL_EPS;
  c->add_out_norm = 1; c->tie_embeddings = tie;
  c->chunk_size = 64;
  c->bos_id = c->eos_id = c->pad_id = -1;
  c->arch_cfg = v;
  return 0;
}

/* Number and boolean members of a config object, written from a list. */
typedef struct { const char *key; double num; int is_bool; } jfield;
static void add_fields(cJSON *o, const jfield *f, size_t n) {
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToObject(o, f[i].key, f[i].is_bool ? cJSON_CreateBool(f[i].num != 0) : cJSON_CreateNumber(f[i].num));
}
#define ADD_FIELDS(o, ...) do { const jfield fs_[] = {__VA_ARGS__}; add_fields(o, fs_, sizeof fs_ / sizeof *fs_); } while (0)

char *xl_v1_config_json(const xl_config *c) {
  const xl_v1_config *v = c->arch_cfg;
  cJSON *root = cJSON_CreateObject(), *x = cJSON_AddObjectToObject(root, "xlstm");
  cJSON_AddStringToObject(root, "model_type", "xlstm_v1");
  ADD_FIELDS(x, {"embedding_dim", c->D, 0}, {"num_blocks", c->n_blocks, 0}, {"vocab_size", c->vocab, 0},
             {"tie_weights", v->tie, 1}, {"add_post_blocks_norm", v->add_post_norm, 1}, {"bias", 0, 1});
  cJSON *sa = cJSON_AddArrayToObject(x, "slstm_at");
  for (int i = 0; i < c->n_blocks; i++)
    if (v->is_slstm[i]) cJSON_AddItemToArray(sa, cJSON_CreateNumber(i));
  if (v->I) {
    cJSON *ml = cJSON_AddObjectToObject(cJSON_AddObjectToObject(x, "mlstm_block"), "mlstm");
    ADD_FIELDS(ml, {"num_heads", v->m_heads, 0}, {"conv1d_kernel_size", v->m_conv, 0}, {"qkv_proj_blocksize", v->qkv_bs, 0},
               {"_inner_embedding_dim", v->I, 0}, {"_proj_up_dim", v->I, 0}, {"embedding_dim", c->D, 0}, {"bias", 0, 1});
  }
  if (v->s_heads) {
    cJSON *sb = cJSON_AddObjectToObject(x, "slstm_block"), *sl = cJSON_AddObjectToObject(sb, "slstm");
    ADD_FIELDS(sl, {"num_heads", v->s_heads, 0}, {"conv1d_kernel_size", v->s_conv, 0}, {"hidden_size", c->D, 0},
               {"embedding_dim", c->D, 0}, {"group_norm_weight", v->group_norm_weight, 1});
    cJSON_AddStringToObject(sl, "function", "slstm");
    if (v->s_ffn) {
      cJSON *ff = cJSON_AddObjectToObject(sb, "feedforward");
      cJSON_AddStringToObject(ff, "act_fn", "gelu");
      cJSON_AddStringToObject(ff, "ff_type", "ffn_gated");
      ADD_FIELDS(ff, {"_proj_up_dim", v->s_ffn, 0}, {"bias", 0, 1});
    } else {
      cJSON_AddNullToObject(sb, "feedforward");
    }
  }
  char *s = cJSON_Print(root);
  cJSON_Delete(root);
  char *r = xl_strdup(s);   /* cJSON's allocator may differ from free() */
  cJSON_free(s);
  return r;
}

/* ---- tensor list ---- */

typedef void (*spec_fn)(void *ctx, const char *name, int ndim, const int64_t *shape);

static int spec(spec_fn fn, void *ctx, const char *name, int ndim, int64_t a, int64_t b, int64_t c3) {
  int64_t sh[3] = {a, b, c3};
  fn(ctx, name, ndim, sh);
  return 1;
}

int xl_v1_tensor_specs(const xl_config *c, spec_fn fn, void *ctx) {
  const xl_v1_config *v = c->arch_cfg;
  int D = c->D, n = 0;
  char nm[256];
  n += spec(fn, ctx, "token_embedding.weight", 2, c->vocab, D, 0);
  for (int b = 0; b < c->n_blocks; b++) {
#define P(s) (snprintf(nm, sizeof nm, "xlstm_block_stack.blocks.%d.%s", b, s), nm)
    n += spec(fn, ctx, P("xlstm_norm.weight"), 1, D, 0, 0);
    if (!v->is_slstm[b]) {
      int I = v->I, NH = v->m_heads, bs = v->qkv_bs;
      n += spec(fn, ctx, P("xlstm.proj_up.weight"), 2, 2 * I, D, 0);
      n += spec(fn, ctx, P("xlstm.conv1d.conv.weight"), 3, I, 1, v->m_conv);
      n += spec(fn, ctx, P("xlstm.conv1d.conv.bias"), 1, I, 0, 0);
      n += spec(fn, ctx, P("xlstm.q_proj.weight"), 3, I / bs, bs, bs);
      n += spec(fn, ctx, P("xlstm.k_proj.weight"), 3, I / bs, bs, bs);
      n += spec(fn, ctx, P("xlstm.v_proj.weight"), 3, I / bs, bs, bs);
      n += spec(fn, ctx, P("xlstm.mlstm_cell.igate.weight"), 2, NH, 3 * I, 0);
      n += spec(fn, ctx, P("xlstm.mlstm_cell.igate.bias"), 1, NH, 0, 0);
      n += spec(fn, ctx, P("xlstm.mlstm_cell.fgate.weight"), 2, NH, 3 * I, 0);
      n += spec(fn, ctx, P("xlstm.mlstm_cell.fgate.bias"), 1, NH, 0, 0);
      n += spec(fn, ctx, P("xlstm.mlstm_cell.outnorm.weight"), 1, I, 0, 0);
      n += spec(fn, ctx, P("xlstm.learnable_skip"), 1, I, 0, 0);
      n += spec(fn, ctx, P("xlstm.proj_down.weight"), 2, D, I, 0);
    } else {
      int NH = v->s_heads, DH = D / NH;
      if (v->s_conv > 0) {
        n += spec(fn, ctx, P("xlstm.conv1d.conv.weight"), 3, D, 1, v->s_conv);
        n += spec(fn, ctx, P("xlstm.conv1d.conv.bias"), 1, D, 0, 0);
      }
      static const char *const g[4] = {"fgate", "igate", "zgate", "ogate"};
      for (int j = 0; j < 4; j++) {
        char gn[64];
        snprintf(gn, sizeof gn, "xlstm.%s.weight", g[j]);
        n += spec(fn, ctx, P(gn), 3, NH, DH, DH);
      }
      n += spec(fn, ctx, P("xlstm.slstm_cell._recurrent_kernel_"), 3, NH, 4 * DH, DH);
      n += spec(fn, ctx, P("xlstm.slstm_cell._bias_"), 1, 4 * D, 0, 0);
      if (v->group_norm_weight) n += spec(fn, ctx, P("xlstm.group_norm.weight"), 1, D, 0, 0);
      if (v->s_ffn) {
        n += spec(fn, ctx, P("ffn_norm.weight"), 1, D, 0, 0);
        n += spec(fn, ctx, P("ffn.proj_up.weight"), 2, 2 * v->s_ffn, D, 0);
        n += spec(fn, ctx, P("ffn.proj_down.weight"), 2, D, v->s_ffn, 0);
      }
    }
#undef P
  }
  if (v->add_post_norm) n += spec(fn, ctx, "xlstm_block_stack.post_blocks_norm.weight", 1, D, 0, 0);
  if (!v->tie) n += spec(fn, ctx, "lm_head.weight", 2, c->vocab, D, 0);
  return n;
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

void xl_v1_tensor_init(const char *name, int D, float *mean, float *std) {
  float small = sqrtf(2.0f / (5.0f * (float)(D > 0 ? D : 1)));   /* the package's "small init" */
  *mean = 0.0f;
  *std = small;
  if (strstr(name, "norm.weight")) *std = 0.0f;                   /* applied as 1 + w */
  else if (ends_with(name, "learnable_skip")) { *mean = 1.0f; *std = 0.0f; }
  else if (ends_with(name, "fgate.bias")) { *mean = 4.5f; *std = 0.8f; }   /* forget gates open */
  else if (ends_with(name, "igate.bias")) *std = 0.1f;
  else if (ends_with(name, "conv.bias")) *std = 0.0f;
  else if (ends_with(name, "conv.weight")) *std = 0.5f;
  else if (ends_with(name, "_bias_")) *std = 0.5f;
  else if (strstr(name, "gate.weight") || ends_with(name, "_recurrent_kernel_")) *std = 0.02f;
  else if (ends_with(name, "proj_down.weight")) *std = small * 0.5f;
}

