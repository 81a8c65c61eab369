/* config: config.json -> xl_config with validation. See config.h and docs/xlstm-math.md. */
#include "engine/config.h"
#include "base/util.h"
#include "engine/model_v1.h"
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Looks up the first present key of a NULL-terminated list. */
static const cJSON *get_any(const cJSON *o, const char *const *keys, const char **found) {
  for (; *keys; keys++) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, *keys);
    if (j && !cJSON_IsNull(j)) { if (found) *found = *keys; return j; }
  }
  return NULL;
}

/* Integer field: required unless def is given (has_def). */
static int get_int(const cJSON *o, const char *const *keys, int has_def, long def, long lo, long hi, long *out,
                   const char *path, char *err, size_t errlen) {
  const char *k = keys[0];
  const cJSON *j = get_any(o, keys, &k);
  if (!j) {
    if (has_def) { *out = def; return 0; }
    return xl_errf(err, errlen, "%s: missing field \"%s\"", path, keys[0]);
  }
  if (!cJSON_IsNumber(j) || floor(j->valuedouble) != j->valuedouble || j->valuedouble < lo || j->valuedouble > hi)
    return xl_errf(err, errlen, "%s: field \"%s\" must be an integer in [%ld, %ld]", path, k, lo, hi);
  *out = (long)j->valuedouble;
  return 0;
}
static int get_num(const cJSON *o, const char *key, double def, double lo, double hi, double *out, const char *path,
                   char *err, size_t errlen) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!j || cJSON_IsNull(j)) { *out = def; return 0; }
  if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi))
    return xl_errf(err, errlen, "%s: field \"%s\" must be a number in [%g, %g]", path, key, lo, hi);
  *out = j->valuedouble;
  return 0;
}
static int get_bool(const cJSON *o, const char *key, int def, int *out, const char *path, char *err, size_t errlen) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!j || cJSON_IsNull(j)) { *out = def; return 0; }
  if (!cJSON_IsBool(j)) return xl_errf(err, errlen, "%s: field \"%s\" must be true or false", path, key);
  *out = cJSON_IsTrue(j);
  return 0;
}
/* Optional token id: absent/null -> -1. */
static int get_tok(const cJSON *o, const char *key, int *out, const char *path, char *err, size_t errlen) {
  long v;
  static const char *k1[2];
  k1[0] = key; k1[1] = NULL;
  if (get_int(o, k1, 1, -1, -1, 1L << 30, &v, path, err, errlen)) return -1;
  *out = (int)v;
  return 0;
}

int xl_config_parse(xl_config *c, const char *text, const char *path, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  cJSON *root = cJSON_Parse(text);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return xl_errf(err, errlen, "%s: not a JSON object", path);
  }
  int rc = -1;
  long v;
  const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
  if (mt && !cJSON_IsString(mt)) { xl_errf(err, errlen, "%s: field \"model_type\" must be a string", path); goto out; }
  if (mt && !strcmp(mt->valuestring, "xlstm_v1")) {
    c->arch = XL_ARCH_V1;
    rc = xl_v1_config_parse(c, root, path, err, errlen);
    goto out;
  }
  if (mt && strcmp(mt->valuestring, "xlstm")) {
    xl_errf(err, errlen, "%s: field \"model_type\" is \"%s\"; supported: \"xlstm\", \"xlstm_v1\"", path, mt->valuestring);
    goto out;
  }
  c->arch = XL_ARCH_LARGE;
  static const char *kD[] = {"hidden_size", "embedding_dim", NULL}, *kB[] = {"num_hidden_layers", "num_blocks", NULL},
                    *kH[] = {"num_heads", NULL}, *kV[] = {"vocab_size", NULL}, *kR[] = {"ffn_round_up_to_multiple_of", NULL},
                    *kC[] = {"chunk_size", NULL};
  if (get_int(root, kD, 0, 0, 1, 1 << 20, &v, path, err, errlen)) goto out;
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
  if (get_int(root, kB, 0, 0, 1, 4096, &v, path, err, errlen)) goto out;
  c->n_blocks = (int)v;
  if (get_int(root, kH, 0, 0, 1, 4096, &v, path, err, errlen)) goto out;
  c->n_heads = (int)v;
  if (get_int(root, kV, 0, 0, 1, 1 << 24, &v, path, err, errlen)) goto out;
  c->vocab = (int)v;
  double qkf, vf, ffnf;
  if (get_num(root, "qk_dim_factor", 0.5, 1e-6, 64, &qkf, path, err, errlen) ||
      get_num(root, "v_dim_factor", 1.0, 1e-6, 64, &vf, path, err, errlen) ||
      get_num(root, "ffn_proj_factor", 2.667, 1e-6, 64, &ffnf, path, err, errlen))
    goto out;
  if (get_int(root, kR, 1, 64, 1, 1 << 20, &v, path, err, errlen)) goto out;
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
  if (get_num(root, "gate_soft_cap", 15.0, 0, 1e9, &c->gate_soft_cap, path, err, errlen) ||
      get_num(root, "output_logit_soft_cap", 30.0, 0, 1e9, &c->logit_soft_cap, path, err, errlen) ||
      get_num(root, "norm_eps", 1e-6, 0, 1, &c->norm_eps, path, err, errlen) ||
      get_num(root, "eps", 1e-6, 0, 1, &c->eps, path, err, errlen) ||
      get_bool(root, "use_bias", 0, &c->use_bias, path, err, errlen) ||
      get_bool(root, "add_out_norm", 1, &c->add_out_norm, path, err, errlen) ||
      get_bool(root, "tie_word_embeddings", 0, &c->tie_embeddings, path, err, errlen) ||
      get_bool(root, "force_bos_token_insert", 0, &c->force_bos, path, err, errlen))
    goto out;
  const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_mode");
  if (wm && !cJSON_IsNull(wm)) {
    if (!cJSON_IsString(wm) || (strcmp(wm->valuestring, "single") && strcmp(wm->valuestring, "fused"))) {
      xl_errf(err, errlen, "%s: field \"weight_mode\" must be \"single\" or \"fused\"", path);
      goto out;
    }
    c->fused = !strcmp(wm->valuestring, "fused");
  }
  if (get_int(root, kC, 1, 64, 1, 1 << 20, &v, path, err, errlen)) goto out;
  c->chunk_size = (int)v;
  if (get_tok(root, "bos_token_id", &c->bos_id, path, err, errlen) || get_tok(root, "eos_token_id", &c->eos_id, path, err, errlen) ||
      get_tok(root, "pad_token_id", &c->pad_id, path, err, errlen))
    goto out;
  rc = 0;
out:
  cJSON_Delete(root);
  return rc;
}

int xl_config_load(xl_config *c, const char *dir, char *err, size_t errlen) {
  char *p = xl_path_join(dir, "config.json");
  char *text = xl_read_file(p, NULL);
  int rc;
  if (!text) rc = xl_errf(err, errlen, "%s: cannot read: %s", p, strerror(errno));
  else rc = xl_config_parse(c, text, p, err, errlen);
  free(text);
  free(p);
  return rc;
}

void xl_config_free(xl_config *c) {
  free(c->v1);
  c->v1 = NULL;
}
