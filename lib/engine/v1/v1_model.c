/* v1_model: binds an xlstm_v1 checkpoint's tensors into xl_v1_model (m->weights): the
 * large projections as matrices in their stored dtype, the small, headwise and recurrent
 * weights as fp32. See v1_internal.h and docs/xlstm-v1-math.md. */
#include "engine/v1/v1_internal.h"
#include "engine/checkpoint.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A float tensor of exactly this shape as fp32: points into the mapping when it is aligned
 * F32, else an owned converted copy. required=0: NULL when absent. */
static int f32_view(xl_model *m, const char *name, int ndim, const int64_t *shape, int required, const float **out, char *err,
                    size_t errlen) {
  const st_tensor *t = xl_find_tensor(m, name);
  *out = NULL;
  if (!t) return required ? xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, name) : 0;
  int ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
  if (!ok) {
    char want[128] = "", got[128] = "";
    for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)shape[i]);
    for (int i = 0; i < t->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    return xl_errf(err, errlen, "tensor '%s' has shape [%s], expected [%s]", name, got, want);
  }
  if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16)
    return xl_errf(err, errlen, "tensor '%s' has dtype %s; expected F32, BF16 or F16", name, st_dtype_name(t->dtype));
  if (t->dtype == ST_F32 && (uintptr_t)t->data % sizeof(float) == 0) { *out = t->data; return 0; }
  size_t es = st_dtype_size(t->dtype);
  void *tmp = xl_malloc(t->nbytes ? t->nbytes : 1);
  memcpy(tmp, t->data, t->nbytes);   /* the source may be unaligned */
  float *f = xl_model_own(m, xl_malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1)));
  xl_to_f32(t->dtype, tmp, f, t->nbytes / es);
  free(tmp);
  *out = f;
  return 0;
}

/* Conv weight [C, 1, K] -> owned [K, C] (tap-major, so a tap is a contiguous channel row). */
static int bind_conv(xl_model *m, const char *prefix, int C, int K, xl_v1_block *B, char *err, size_t errlen) {
  char nm[256];
  const float *w;
  int64_t sw[3] = {C, 1, K}, sb[1] = {C};
  snprintf(nm, sizeof nm, "%sconv1d.conv.weight", prefix);
  if (f32_view(m, nm, 3, sw, 1, &w, err, errlen)) return -1;
  float *wT = xl_model_own(m, xl_malloc(sizeof(float) * (size_t)K * C));
  for (int c = 0; c < C; c++)
    for (int j = 0; j < K; j++) wT[(size_t)j * C + c] = w[(size_t)c * K + j];
  B->conv_wT = wT;
  B->K = K;
  B->C = C;
  snprintf(nm, sizeof nm, "%sconv1d.conv.bias", prefix);
  return f32_view(m, nm, 1, sb, 1, &B->conv_b, err, errlen);
}

static int bind_block(xl_model *m, int b, char *err, size_t errlen) {
  const xl_config *c = &m->cfg;
  const xl_v1_config *v = c->arch_cfg;
  xl_v1_block *B = &((xl_v1_model *)m->weights)->blocks[b];
  int D = c->D;
  char p[96], x[128], nm[256];
  snprintf(p, sizeof p, "xlstm_block_stack.blocks.%d.", b);
  snprintf(x, sizeof x, "%sxlstm.", p);
#define NM(pre, s) (snprintf(nm, sizeof nm, "%s%s", pre, s), nm)
  int64_t sD[1] = {D};
  if (f32_view(m, NM(p, "xlstm_norm.weight"), 1, sD, 1, &B->norm_w, err, errlen)) return -1;
  B->slstm = v->is_slstm[b];
  if (!B->slstm) {
    int I = v->I, NH = v->m_heads, bs = v->qkv_bs;
    int64_t sI[1] = {I}, sH[1] = {NH}, shw[3] = {I / bs, bs, bs};
    if (xl_bind_mat(m, NM(x, "proj_up.weight"), 2 * I, D, &B->up, err, errlen) ||
        xl_bind_mat(m, NM(x, "proj_down.weight"), D, I, &B->down, err, errlen) ||
        bind_conv(m, x, I, v->m_conv, B, err, errlen) ||
        f32_view(m, NM(x, "q_proj.weight"), 3, shw, 1, &B->wq, err, errlen) ||
        f32_view(m, NM(x, "k_proj.weight"), 3, shw, 1, &B->wk, err, errlen) ||
        f32_view(m, NM(x, "v_proj.weight"), 3, shw, 1, &B->wv, err, errlen) ||
        xl_bind_mat(m, NM(x, "mlstm_cell.igate.weight"), NH, 3 * I, &B->igw, err, errlen) ||
        xl_bind_mat(m, NM(x, "mlstm_cell.fgate.weight"), NH, 3 * I, &B->fgw, err, errlen) ||
        f32_view(m, NM(x, "mlstm_cell.igate.bias"), 1, sH, 1, &B->ig_b, err, errlen) ||
        f32_view(m, NM(x, "mlstm_cell.fgate.bias"), 1, sH, 1, &B->fg_b, err, errlen) ||
        f32_view(m, NM(x, "mlstm_cell.outnorm.weight"), 1, sI, 1, &B->outnorm_w, err, errlen) ||
        f32_view(m, NM(x, "learnable_skip"), 1, sI, 1, &B->skip, err, errlen))
      return -1;
  } else {
    int NH = v->s_heads, DH = D / NH;
    int64_t shw[3] = {NH, DH, DH}, shr[3] = {NH, 4 * DH, DH}, s4[1] = {4 * D};
    if (v->s_conv > 0 && bind_conv(m, x, D, v->s_conv, B, err, errlen)) return -1;
    if (v->s_conv == 0) B->C = D;
    /* wx quarter i comes from the tensor named fgate, quarter f from igate (xlstm-v1-math.md) */
    if (f32_view(m, NM(x, "fgate.weight"), 3, shw, 1, &B->gw[0], err, errlen) ||
        f32_view(m, NM(x, "igate.weight"), 3, shw, 1, &B->gw[1], err, errlen) ||
        f32_view(m, NM(x, "zgate.weight"), 3, shw, 1, &B->gw[2], err, errlen) ||
        f32_view(m, NM(x, "ogate.weight"), 3, shw, 1, &B->gw[3], err, errlen) ||
        f32_view(m, NM(x, "slstm_cell._recurrent_kernel_"), 3, shr, 1, &B->R, err, errlen) ||
        f32_view(m, NM(x, "slstm_cell._bias_"), 1, s4, 1, &B->sbias, err, errlen) ||
        f32_view(m, NM(x, "group_norm.weight"), 1, sD, v->group_norm_weight, &B->gn_w, err, errlen))
      return -1;
  }
  /* the gated FFN: wherever the checkpoint has it (sLSTM blocks by default) */
  const st_tensor *t = xl_find_tensor(m, NM(p, "ffn.proj_up.weight"));
  if (!t && B->slstm && v->s_ffn) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, nm);
  if (t) {
    if (t->ndim != 2 || t->shape[0] % 2 || t->shape[0] < 2 || t->shape[0] > (1 << 26) || t->shape[1] != D)
      return xl_errf(err, errlen, "tensor '%s' must have shape [2F, %d]", nm, D);
    int F = (int)(t->shape[0] / 2);
    if (B->slstm && v->s_ffn && F != v->s_ffn)
      return xl_errf(err, errlen, "tensor '%s' has %d rows; the config's feedforward gives [%d, %d]", nm, 2 * F, 2 * v->s_ffn, D);
    B->F = F;
    if (xl_bind_mat(m, nm, 2 * F, D, &B->ffn_up, err, errlen) ||
        xl_bind_mat(m, NM(p, "ffn.proj_down.weight"), D, F, &B->ffn_down, err, errlen) ||
        f32_view(m, NM(p, "ffn_norm.weight"), 1, sD, 1, &B->ffn_norm_w, err, errlen))
      return -1;
  }
#undef NM
  return 0;
}

int xl_v1_bind(xl_model *m, char *err, size_t errlen) {
  const xl_config *c = &m->cfg;
  const xl_v1_config *v = c->arch_cfg;
  xl_v1_model *V = xl_calloc(1, sizeof *V);
  m->weights = V;
  V->blocks = xl_calloc((size_t)c->n_blocks, sizeof *V->blocks);
  if (xl_bind_mat(m, "token_embedding.weight", c->vocab, c->D, &m->embed, err, errlen)) return -1;
  if (v->tie) m->lm_head = m->embed;
  else if (!xl_find_tensor(m, "lm_head.weight"))
    return xl_errf(err, errlen, "%s: missing tensor 'lm_head.weight' (and \"xlstm.tie_weights\" is false)", m->dir);
  else if (xl_bind_mat(m, "lm_head.weight", c->vocab, c->D, &m->lm_head, err, errlen)) return -1;
  if (v->add_post_norm) {
    int64_t sD[1] = {c->D};
    if (f32_view(m, "xlstm_block_stack.post_blocks_norm.weight", 1, sD, 1, &V->post_norm_w, err, errlen)) return -1;
  }
  for (int b = 0; b < c->n_blocks; b++)
    if (bind_block(m, b, err, errlen)) return -1;
  return 0;
}

void xl_v1_unbind(xl_model *m) {
  xl_v1_model *V = m->weights;
  if (!V) return;
  free(V->blocks);
  free(V);
  m->weights = NULL;
}
