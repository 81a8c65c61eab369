/* model: checkpoint loading and weight binding. See model.h and docs/xlstm-math.md. */
#include "engine/model.h"
#include "base/util.h"
#include "engine/model_v1.h"
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>




const st_tensor *xl_find_tensor(const xl_model *m, const char *name) { return st_find(&m->st, name); }

static void *own(xl_model *m, void *p) {
  m->owned = xl_realloc(m->owned, sizeof(void *) * (m->nowned + 1));
  m->owned[m->nowned++] = p;
  return p;
}

static int is_float(st_dtype t) { return t == ST_F32 || t == ST_BF16 || t == ST_F16; }

static int check_shape(const st_tensor *t, int ndim, const int64_t *dims, char *err, size_t errlen) {
  int ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = dims[i] < 0 || t->shape[i] == dims[i];
  if (ok) return 0;
  char want[128] = "", got[128] = "";
  for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)dims[i]);
  for (int i = 0; i < t->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  return xl_errf(err, errlen, "tensor '%s' has shape [%s], expected [%s]", t->name, got, want);
}

/* A matrix view of rows [r0, r0+rows) of a 2-D tensor [total_rows, cols]. */
static int bind_rows(xl_model *m, const st_tensor *t, int total_rows, int r0, int rows, int cols, xl_mat *out, char *err,
                     size_t errlen) {
  int64_t dims[2] = {total_rows, cols};
  if (check_shape(t, 2, dims, err, errlen)) return -1;
  if (!is_float(t->dtype)) return xl_errf(err, errlen, "tensor '%s' has dtype %s; weights must be F32, BF16 or F16", t->name, st_dtype_name(t->dtype));
  size_t es = st_dtype_size(t->dtype);
  const char *p = (const char *)t->data + (size_t)r0 * cols * es;
  if (((uintptr_t)p) % es) {   /* misaligned in the file: keep an aligned copy */
    void *c = own(m, xl_malloc((size_t)rows * cols * es));
    memcpy(c, p, (size_t)rows * cols * es);
    p = c;
  }
  *out = (xl_mat){t->dtype, rows, cols, p};
  return 0;
}

int xl_bind_mat(xl_model *m, const char *name, int rows, int cols, xl_mat *out, char *err, size_t errlen) {
  const st_tensor *t = st_find(&m->st, name);
  if (!t) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, name);
  return bind_rows(m, t, rows, 0, rows, cols, out, err, errlen);
}

/* fp32 copy of a 1-D tensor [total] from offset off, n long. */
static int bind_vec_part(xl_model *m, const st_tensor *t, int total, int off, int n, float **out, char *err, size_t errlen) {
  int64_t dims[1] = {total};
  if (check_shape(t, 1, dims, err, errlen)) return -1;
  if (!is_float(t->dtype)) return xl_errf(err, errlen, "tensor '%s' has dtype %s; expected F32, BF16 or F16", t->name, st_dtype_name(t->dtype));
  float *v = own(m, xl_malloc(sizeof(float) * (size_t)n));
  size_t es = st_dtype_size(t->dtype);
  /* memcpy first: the source may be unaligned */
  void *tmp = xl_malloc((size_t)n * es);
  memcpy(tmp, (const char *)t->data + (size_t)off * es, (size_t)n * es);
  xl_to_f32(t->dtype, tmp, v, (size_t)n);
  free(tmp);
  *out = v;
  return 0;
}

int xl_bind_vec(xl_model *m, const char *name, int n, float **out, int required, char *err, size_t errlen) {
  const st_tensor *t = st_find(&m->st, name);
  *out = NULL;
  if (!t) return required ? xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, name) : 0;
  return bind_vec_part(m, t, n, 0, n, out, err, errlen);
}

/* The first present name among alternatives (for q/query etc). */
static const char *pick(const xl_model *m, char *buf, size_t n, const char *prefix, const char *a, const char *b) {
  snprintf(buf, n, "%s%s", prefix, a);
  if (st_find(&m->st, buf) || !b) return buf;
  char alt[512];
  snprintf(alt, sizeof alt, "%s%s", prefix, b);
  if (st_find(&m->st, alt)) snprintf(buf, n, "%s", alt);
  return buf;
}

static int bind_block(xl_model *m, int i, char *err, size_t errlen) {
  const xl_config *c = &m->cfg;
  xl_block *B = &m->blocks[i];
  char p[128], nm[512];
  int D = c->D, QK = c->qk_dim, VD = c->v_dim, NH = c->n_heads, F = c->ffn, bias = c->use_bias;
  snprintf(p, sizeof p, "backbone.blocks.%d.", i);
#define NAME(s) (snprintf(nm, sizeof nm, "%s%s", p, s), nm)
#define VEC(s, n, dst, req) if (xl_bind_vec(m, NAME(s), n, dst, req, err, errlen)) return -1
  VEC("norm_mlstm.weight", D, &B->norm_mlstm_w, 1);
  VEC("norm_ffn.weight", D, &B->norm_ffn_w, 1);
  VEC("mlstm_layer.multihead_norm.weight", VD, &B->mh_w, 1);
  if (bias) {
    VEC("norm_mlstm.bias", D, &B->norm_mlstm_b, 1);
    VEC("norm_ffn.bias", D, &B->norm_ffn_b, 1);
    VEC("mlstm_layer.multihead_norm.bias", VD, &B->mh_b, 1);
    VEC("mlstm_layer.out_proj.bias", D, &B->out_b, 1);
    VEC("ffn.proj_down.bias", D, &B->down_b, 1);
  }
  if (xl_bind_mat(m, NAME("mlstm_layer.out_proj.weight"), D, VD, &B->out, err, errlen)) return -1;
  if (xl_bind_mat(m, NAME("ffn.proj_down.weight"), D, F, &B->down, err, errlen)) return -1;
  if (c->fused) {
    const st_tensor *t = st_find(&m->st, NAME("mlstm_layer.qkv_opreact.weight"));
    int R = 2 * QK + 2 * VD;
    if (!t) return xl_errf(err, errlen, "%s: missing tensor '%s' (weight_mode fused)", m->dir, nm);
    if (bind_rows(m, t, R, 0, QK, D, &B->q, err, errlen) || bind_rows(m, t, R, QK, QK, D, &B->k, err, errlen) ||
        bind_rows(m, t, R, 2 * QK, VD, D, &B->v, err, errlen) || bind_rows(m, t, R, 2 * QK + VD, VD, D, &B->o, err, errlen))
      return -1;
    if (bias) {
      if (!(t = st_find(&m->st, NAME("mlstm_layer.qkv_opreact.bias")))) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, nm);
      if (bind_vec_part(m, t, R, 0, QK, &B->q_b, err, errlen) || bind_vec_part(m, t, R, QK, QK, &B->k_b, err, errlen) ||
          bind_vec_part(m, t, R, 2 * QK, VD, &B->v_b, err, errlen) || bind_vec_part(m, t, R, 2 * QK + VD, VD, &B->o_b, err, errlen))
        return -1;
    }
    if (!(t = st_find(&m->st, NAME("mlstm_layer.ifgate_preact.weight")))) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, nm);
    if (bind_rows(m, t, 2 * NH, 0, NH, D, &B->ig, err, errlen) || bind_rows(m, t, 2 * NH, NH, NH, D, &B->fg, err, errlen)) return -1;
    if (!(t = st_find(&m->st, NAME("mlstm_layer.ifgate_preact.bias")))) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, nm);
    if (bind_vec_part(m, t, 2 * NH, 0, NH, &B->ig_b, err, errlen) || bind_vec_part(m, t, 2 * NH, NH, NH, &B->fg_b, err, errlen)) return -1;
    if (!(t = st_find(&m->st, NAME("ffn.proj_up_gate_z.weight")))) return xl_errf(err, errlen, "%s: missing tensor '%s' (weight_mode fused)", m->dir, nm);
    if (bind_rows(m, t, 2 * F, 0, F, D, &B->up_gate, err, errlen) || bind_rows(m, t, 2 * F, F, F, D, &B->up, err, errlen)) return -1;
    if (bias) {
      if (!(t = st_find(&m->st, NAME("ffn.proj_up_gate_z.bias")))) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, nm);
      if (bind_vec_part(m, t, 2 * F, 0, F, &B->up_gate_b, err, errlen) || bind_vec_part(m, t, 2 * F, F, F, &B->up_b, err, errlen)) return -1;
    }
  } else {
    static const char *const qkv[3][2] = {{"q", "query"}, {"k", "key"}, {"v", "value"}};
    xl_mat *mats[3] = {&B->q, &B->k, &B->v};
    float **bs[3] = {&B->q_b, &B->k_b, &B->v_b};
    int rows[3] = {QK, QK, VD};
    for (int j = 0; j < 3; j++) {
      char a[64], b[64], full[512];
      snprintf(a, sizeof a, "mlstm_layer.%s.weight", qkv[j][0]);
      snprintf(b, sizeof b, "mlstm_layer.%s.weight", qkv[j][1]);
      pick(m, full, sizeof full, p, a, b);
      if (xl_bind_mat(m, full, rows[j], D, mats[j], err, errlen)) return -1;
      if (bias) {
        snprintf(a, sizeof a, "mlstm_layer.%s.bias", qkv[j][0]);
        snprintf(b, sizeof b, "mlstm_layer.%s.bias", qkv[j][1]);
        pick(m, full, sizeof full, p, a, b);
        if (xl_bind_vec(m, full, rows[j], bs[j], 1, err, errlen)) return -1;
      }
    }
    if (xl_bind_mat(m, NAME("mlstm_layer.ogate_preact.weight"), VD, D, &B->o, err, errlen)) return -1;
    if (xl_bind_mat(m, NAME("mlstm_layer.igate_preact.weight"), NH, D, &B->ig, err, errlen)) return -1;
    if (xl_bind_mat(m, NAME("mlstm_layer.fgate_preact.weight"), NH, D, &B->fg, err, errlen)) return -1;
    VEC("mlstm_layer.igate_preact.bias", NH, &B->ig_b, 1);
    VEC("mlstm_layer.fgate_preact.bias", NH, &B->fg_b, 1);
    if (xl_bind_mat(m, NAME("ffn.proj_up_gate.weight"), F, D, &B->up_gate, err, errlen)) return -1;
    if (xl_bind_mat(m, NAME("ffn.proj_up.weight"), F, D, &B->up, err, errlen)) return -1;
    if (bias) {
      VEC("mlstm_layer.ogate_preact.bias", VD, &B->o_b, 1);
      VEC("ffn.proj_up_gate.bias", F, &B->up_gate_b, 1);
      VEC("ffn.proj_up.bias", F, &B->up_b, 1);
    }
  }
#undef VEC
#undef NAME
  return 0;
}

static void fingerprint(xl_model *m, const char *config_text) {
  uint64_t h = xl_fnv1a(XL_FNV_INIT, config_text, strlen(config_text));
  for (int i = 0; i < m->st.ntensors; i++) {
    const st_tensor *t = &m->st.tensors[i];
    h = xl_fnv1a(h, t->name, strlen(t->name) + 1);
    h = xl_fnv1a(h, &t->dtype, sizeof t->dtype);
    h = xl_fnv1a(h, t->shape, sizeof t->shape[0] * (size_t)t->ndim);
    /* a sample of the values: distinguishes checkpoints of the same shape without reading 14 GB */
    size_t n = t->nbytes < 64 ? t->nbytes : 64;
    h = xl_fnv1a(h, t->data, n);
    h = xl_fnv1a(h, (const char *)t->data + (t->nbytes - n) / 2, n);
    h = xl_fnv1a(h, (const char *)t->data + t->nbytes - n, n);
    m->weight_bytes += t->nbytes;
  }
  m->fingerprint = h;
  snprintf(m->fingerprint_hex, sizeof m->fingerprint_hex, "%016llx", (unsigned long long)h);
}

xl_model *xl_model_load(const char *dir, char *err, size_t errlen) {
  xl_model *m = xl_calloc(1, sizeof *m);
  m->dir = xl_strdup(dir);
  char *cpath = xl_path_join(dir, "config.json");
  char *ctext = xl_read_file(cpath, NULL);
  if (!ctext) {
    xl_errf(err, errlen, "%s: cannot read: %s", cpath, strerror(errno));
    free(cpath);
    xl_model_free(m);
    return NULL;
  }
  int rc = xl_config_parse(&m->cfg, ctext, cpath, err, errlen);
  free(cpath);
  if (!rc) rc = st_open_dir(&m->st, dir, err, errlen);
  if (!rc) fingerprint(m, ctext);
  free(ctext);
  if (rc) { xl_model_free(m); return NULL; }
  const xl_config *c = &m->cfg;
  if (c->arch == XL_ARCH_V1) {
    if (xl_v1_model_bind(m, err, errlen)) { xl_model_free(m); return NULL; }
    return m;
  }
  char emb[128];
  pick(m, emb, sizeof emb, "", "backbone.embeddings.weight", "embedding.weight");
  rc = xl_bind_mat(m, emb, c->vocab, c->D, &m->embed, err, errlen);
  if (!rc && c->add_out_norm) {
    rc = xl_bind_vec(m, "backbone.out_norm.weight", c->D, &m->out_norm_w, 1, err, errlen);
    if (!rc && c->use_bias) rc = xl_bind_vec(m, "backbone.out_norm.bias", c->D, &m->out_norm_b, 0, err, errlen);  /* the reference keeps this norm bias-free */
  }
  if (!rc) {
    if (st_find(&m->st, "lm_head.weight")) rc = xl_bind_mat(m, "lm_head.weight", c->vocab, c->D, &m->lm_head, err, errlen);
    else if (c->tie_embeddings) m->lm_head = m->embed;
    else rc = xl_errf(err, errlen, "%s: missing tensor 'lm_head.weight' (and \"tie_word_embeddings\" is false)", dir);
  }
  m->blocks = xl_calloc((size_t)c->n_blocks, sizeof *m->blocks);
  for (int i = 0; !rc && i < c->n_blocks; i++) rc = bind_block(m, i, err, errlen);
  if (rc) { xl_model_free(m); return NULL; }
  return m;
}

void xl_model_free(xl_model *m) {
  if (!m) return;
  if (m->cfg.arch == XL_ARCH_V1) xl_v1_model_free(m);
  for (int i = 0; i < m->nowned; i++) free(m->owned[i]);
  free(m->owned);
  free(m->blocks);
  st_close(&m->st);
  xl_config_free(&m->cfg);
  free(m->dir);
  free(m);
}

char *xl_default_model_dir(void) {
  const char *env = getenv("XL_MODEL");
  if (env && *env) return xl_strdup(env);
  return xl_find_resource("models/xlstm-tiny-pydocs", "config.json");
}
