/* config: reads a checkpoint's config.json into xl_config and refuses what the engine
 * cannot run, naming the field. Both spellings of the 7B-family keys are accepted
 * (hidden_size/embedding_dim, num_hidden_layers/num_blocks).
 * Not for: binding weights (model.c). */
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
  /* v1 only (see xlstm-v1-math.md); zero otherwise */
  void *v1;                /* owned by model_v1.c: struct xl_v1_config */
} xl_config;

/* Parses config.json text; path is used in messages. 0 ok; -1 with err naming the field. */
int xl_config_parse(xl_config *c, const char *text, const char *path, char *err, size_t errlen);
/* Reads DIR/config.json. */
int xl_config_load(xl_config *c, const char *dir, char *err, size_t errlen);
void xl_config_free(xl_config *c);

#endif
