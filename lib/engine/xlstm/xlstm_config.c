/* xlstm_config: the xLSTM-7B family's config.json keys (docs/xlstm-math.md, "config.json
 * fields that matter"). See xlstm.h. */
#include "engine/xlstm/xlstm.h"
#include "base/util.h"
#include <cJSON.h>
#include <math.h>
#include <string.h>

int xl_xlstm_parse_config(xl_config *c, const cJSON *root, const char *path, char *err, size_t errlen) {
  int rc = -1;
  long v;
  c->arch = XL_ARCH_LARGE;
  static const char *kD[] = {"hidden_size", "embedding_dim", NULL}, *kB[] = {"num_hidden_layers", "num_blocks", NULL},
                    *kH[] = {"num_heads", NULL}, *kV[] = {"vocab_size", NULL}, *kR[] = {"ffn_round_up_to_multiple_of", NULL},
                    *kC[] = {"chunk_size", NULL};
  if (xl_cfg_int(root, kD, 0, 0, 1, 1 << 20, &v, path, err, errlen)) goto out;
  c->D = (int)v;
  /* When both spellings are present they must agree. */
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "hidden_size"), *b = cJSON_GetObjectItemCaseSensitive(root, "embedding_dim");
  if (cJSON_IsNumber(a) && cJSON_IsNumber(b) && a->valuedouble != b->valuedouble) {
    xl_errf(err, errlen, "%s: fields \"hidden_size\" (%g) and \"embedding_dim\" (%g) disagree", path, a->valuedouble, b->valuedouble);
    goto out;
  }
  a = cJSON_GetObjectItemCaseSensitive(root, "num_hidden_layers"), b = cJSON_GetObjectItemCaseSensitive(root, "num_blocks");
  if (cJSON_IsNumber(a) && cJSON_IsNumber(b) && a->valuedouble != b->valuedouble) {
    xl_errf(err, errlen, "%s: fields \"num_hidden_layers\" (%g) and \"num_blocks\" (%g) disagree", path, a->valuedouble, b->valuedouble);
    goto out;
  }
  if (xl_cfg_int(root, kB, 0, 0, 1, 4096, &v, path, err, errlen)) goto out;
  c->n_blocks = (int)v;
  if (xl_cfg_int(root, kH, 0, 0, 1, 4096, &v, path, err, errlen)) goto out;
  c->n_heads = (int)v;
  if (xl_cfg_int(root, kV, 0, 0, 1, 1 << 24, &v, path, err, errlen)) goto out;
  c->vocab = (int)v;
  double qkf, vf, ffnf;
  if (xl_cfg_num(root, "qk_dim_factor", 0.5, 1e-6, 64, &qkf, path, err, errlen) ||
      xl_cfg_num(root, "v_dim_factor", 1.0, 1e-6, 64, &vf, path, err, errlen) ||
      xl_cfg_num(root, "ffn_proj_factor", 2.667, 1e-6, 64, &ffnf, path, err, errlen))
    goto out;
  if (xl_cfg_int(root, kR, 1, 64, 1, 1 << 20, &v, path, err, errlen)) goto out;
  long mult = v;
  c->qk_dim = (int)(c->D * qkf);
  c->v_dim = (int)(c->D * vf);
  c->ffn = (int)(ceil(c->D * ffnf / (double)mult) * mult);
  if (c->qk_dim < c->n_heads || c->qk_dim % c->n_heads) {
    xl_errf(err, errlen, "%s: field \"qk_dim_factor\": qk_dim %d is not a positive multiple of num_heads %d", path, c->qk_dim, c->n_heads);
    goto out;
  }
  if (c->v_dim < c->n_heads || c->v_dim % c->n_heads) {
    xl_errf(err, errlen, "%s: field \"v_dim_factor\": v_dim %d is not a positive multiple of num_heads %d", path, c->v_dim, c->n_heads);
    goto out;
  }
  c->dk = c->qk_dim / c->n_heads;
  c->dv = c->v_dim / c->n_heads;
  if (xl_cfg_num(root, "gate_soft_cap", 15.0, 0, 1e9, &c->gate_soft_cap, path, err, errlen) ||
      xl_cfg_num(root, "output_logit_soft_cap", 30.0, 0, 1e9, &c->logit_soft_cap, path, err, errlen) ||
      xl_cfg_num(root, "norm_eps", 1e-6, 0, 1, &c->norm_eps, path, err, errlen) ||
      xl_cfg_num(root, "eps", 1e-6, 0, 1, &c->eps, path, err, errlen) ||
      xl_cfg_bool(root, "use_bias", 0, &c->use_bias, path, err, errlen) ||
      xl_cfg_bool(root, "add_out_norm", 1, &c->add_out_norm, path, err, errlen) ||
      xl_cfg_bool(root, "tie_word_embeddings", 0, &c->tie_embeddings, path, err, errlen) ||
      xl_cfg_bool(root, "force_bos_token_insert", 0, &c->force_bos, path, err, errlen))
    goto out;
  const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_mode");
  if (wm && !cJSON_IsNull(wm)) {
    if (!cJSON_IsString(wm) || (strcmp(wm->valuestring, "single") && strcmp(wm->valuestring, "fused"))) {
      xl_errf(err, errlen, "%s: field \"weight_mode\" must be \"single\" or \"fused\"", path);
      goto out;
    }
    c->fused = !strcmp(wm->valuestring, "fused");
  }
  if (xl_cfg_int(root, kC, 1, 64, 1, XL_CHUNK_MAX, &v, path, err, errlen)) goto out;
  c->chunk_size = (int)v;
  if (xl_cfg_token(root, "bos_token_id", &c->bos_id, path, err, errlen) || xl_cfg_token(root, "eos_token_id", &c->eos_id, path, err, errlen) ||
      xl_cfg_token(root, "pad_token_id", &c->pad_id, path, err, errlen))
    goto out;
  rc = 0;
out:
  return rc;
}

