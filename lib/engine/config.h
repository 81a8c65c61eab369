/* config: the numbers of a checkpoint's config.json that every part of the engine reads
 * (xl_config), and the field readers each architecture's parser uses so that every refusal
 * names the file and the field. Parsing dispatches on "model_type" (engine.h:
 * xl_config_parse); the keys of each family are read in engine/xlstm and engine/v1.
 * Not for: binding weights (checkpoint.h). */
#ifndef XL_CONFIG_H
#define XL_CONFIG_H
#include <stddef.h>

typedef enum { XL_ARCH_LARGE = 0, XL_ARCH_V1 = 1 } xl_arch;

typedef struct {
  xl_arch arch;            /* "xlstm" (7B family) or "xlstm_v1" (mLSTM v1 + sLSTM) */
  int D;                   /* hidden_size / embedding_dim */
  int n_blocks;            /* num_hidden_layers / num_blocks */
  int n_heads;             /* NH */
  int vocab;               /* V */
  int qk_dim, v_dim;       /* D*qk_dim_factor, D*v_dim_factor */
  int dk, dv;              /* per-head dims */
  int ffn;                 /* F */
  double gate_soft_cap;    /* <= 0: no cap */
  double logit_soft_cap;   /* <= 0: no cap */
  double norm_eps, eps;
  int use_bias, add_out_norm, tie_embeddings;
  int fused;               /* weight_mode "fused" */
  int chunk_size;          /* the checkpoint's default prefill chunk */
  int bos_id, eos_id, pad_id;   /* -1 when absent */
  int force_bos;           /* force_bos_token_insert */
  /* the architecture's own numbers (engine/v1: xl_v1_config), one allocation; NULL if none */
  void *arch_cfg;
} xl_config;

struct cJSON;

void xl_config_free(xl_config *c);

/* Field readers: 0 ok; -1 with err "PATH: field "KEY" must be ...". A missing or null field
 * takes the default (xl_cfg_int: required when has_def is 0; keys is a NULL-terminated
 * list of spellings, the first present one is read). */
int xl_cfg_int(const struct cJSON *o, const char *const *keys, int has_def, long def, long lo, long hi, long *out,
               const char *path, char *err, size_t errlen);
int xl_cfg_num(const struct cJSON *o, const char *key, double def, double lo, double hi, double *out, const char *path,
               char *err, size_t errlen);
int xl_cfg_bool(const struct cJSON *o, const char *key, int def, int *out, const char *path, char *err, size_t errlen);
/* An optional token id: absent/null -> -1. */
int xl_cfg_token(const struct cJSON *o, const char *key, int *out, const char *path, char *err, size_t errlen);

#endif
