/* xlstm_model: binds an xlstm checkpoint's tensors (docs/xlstm-math.md, "Tensors") to
 * xl_xlstm_weights: single or fused weight mode, q/k/v or query/key/value names, the
 * research code's embedding name, optional biases, tied embeddings. See xlstm.h. */
#include "engine/xlstm/xlstm.h"
#include "engine/checkpoint.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>

static int bind_block(xl_model *m, xl_xlstm_weights *W, int i, char *err, size_t errlen) {
  const xl_config *c = &m->cfg;
  xl_block *B = &W->blocks[i];
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
    if (xl_bind_rows(m, t, R, 0, QK, D, &B->q, err, errlen) || xl_bind_rows(m, t, R, QK, QK, D, &B->k, err, errlen) ||
        xl_bind_rows(m, t, R, 2 * QK, VD, D, &B->v, err, errlen) || xl_bind_rows(m, t, R, 2 * QK + VD, VD, D, &B->o, err, errlen))
      return -1;
    if (bias) {
      if (!(t = st_find(&m->st, NAME("mlstm_layer.qkv_opreact.bias")))) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, nm);
      if (xl_bind_vec_part(m, t, R, 0, QK, &B->q_b, err, errlen) || xl_bind_vec_part(m, t, R, QK, QK, &B->k_b, err, errlen) ||
          xl_bind_vec_part(m, t, R, 2 * QK, VD, &B->v_b, err, errlen) || xl_bind_vec_part(m, t, R, 2 * QK + VD, VD, &B->o_b, err, errlen))
        return -1;
    }
    if (!(t = st_find(&m->st, NAME("mlstm_layer.ifgate_preact.weight")))) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, nm);
    if (xl_bind_rows(m, t, 2 * NH, 0, NH, D, &B->ig, err, errlen) || xl_bind_rows(m, t, 2 * NH, NH, NH, D, &B->fg, err, errlen)) return -1;
    if (!(t = st_find(&m->st, NAME("mlstm_layer.ifgate_preact.bias")))) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, nm);
    if (xl_bind_vec_part(m, t, 2 * NH, 0, NH, &B->ig_b, err, errlen) || xl_bind_vec_part(m, t, 2 * NH, NH, NH, &B->fg_b, err, errlen)) return -1;
    if (!(t = st_find(&m->st, NAME("ffn.proj_up_gate_z.weight")))) return xl_errf(err, errlen, "%s: missing tensor '%s' (weight_mode fused)", m->dir, nm);
    if (xl_bind_rows(m, t, 2 * F, 0, F, D, &B->up_gate, err, errlen) || xl_bind_rows(m, t, 2 * F, F, F, D, &B->up, err, errlen)) return -1;
    if (bias) {
      if (!(t = st_find(&m->st, NAME("ffn.proj_up_gate_z.bias")))) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, nm);
      if (xl_bind_vec_part(m, t, 2 * F, 0, F, &B->up_gate_b, err, errlen) || xl_bind_vec_part(m, t, 2 * F, F, F, &B->up_b, err, errlen)) return -1;
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
      xl_pick_name(m, full, sizeof full, p, a, b);
      if (xl_bind_mat(m, full, rows[j], D, mats[j], err, errlen)) return -1;
      if (bias) {
        snprintf(a, sizeof a, "mlstm_layer.%s.bias", qkv[j][0]);
        snprintf(b, sizeof b, "mlstm_layer.%s.bias", qkv[j][1]);
        xl_pick_name(m, full, sizeof full, p, a, b);
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

int xl_xlstm_bind(xl_model *m, char *err, size_t errlen) {
  const xl_config *c = &m->cfg;
  xl_xlstm_weights *W = xl_calloc(1, sizeof *W);
  m->weights = W;
  int rc = 0;
  char emb[128];
  xl_pick_name(m, emb, sizeof emb, "", "backbone.embeddings.weight", "embedding.weight");
  rc = xl_bind_mat(m, emb, c->vocab, c->D, &m->embed, err, errlen);
  if (!rc && c->add_out_norm) {
    rc = xl_bind_vec(m, "backbone.out_norm.weight", c->D, &W->out_norm_w, 1, err, errlen);
    if (!rc && c->use_bias) rc = xl_bind_vec(m, "backbone.out_norm.bias", c->D, &W->out_norm_b, 0, err, errlen);  /* the reference keeps this norm bias-free */
  }
  if (!rc) {
    if (st_find(&m->st, "lm_head.weight")) rc = xl_bind_mat(m, "lm_head.weight", c->vocab, c->D, &m->lm_head, err, errlen);
    else if (c->tie_embeddings) m->lm_head = m->embed;
    else rc = xl_errf(err, errlen, "%s: missing tensor 'lm_head.weight' (and \"tie_word_embeddings\" is false)", m->dir);
  }
  W->blocks = xl_calloc((size_t)c->n_blocks, sizeof *W->blocks);
  for (int i = 0; !rc && i < c->n_blocks; i++) rc = bind_block(m, W, i, err, errlen);
  return rc;
}

void xl_xlstm_unbind(xl_model *m) {
  xl_xlstm_weights *W = m->weights;
  if (W) free(W->blocks);
  free(W);
  m->weights = NULL;
}
