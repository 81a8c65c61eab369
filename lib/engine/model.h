/* model: an xLSTM checkpoint directory opened for inference: config, mmapped weights bound
 * to the structure of xlstm-math.md (single or fused weight mode, q/k/v or query/key/value
 * names, optional biases, tied embeddings), and a fingerprint that identifies it.
 * Matrices stay in their stored dtype inside the mapping; small vectors (norm weights,
 * biases) are widened to fp32 copies.
 * Not for: running the model (forward.h) or tokenizing (tokenizer.h). */
#ifndef XL_MODEL_H
#define XL_MODEL_H
#include "engine/config.h"
#include "engine/kernels.h"
#include "io/safetensors.h"
#include <stdint.h>

typedef struct {
  float *norm_mlstm_w, *norm_mlstm_b;          /* [D] (b only with use_bias) */
  xl_mat q, k, v, o;                           /* [qk_dim,D] x2, [v_dim,D] x2 */
  float *q_b, *k_b, *v_b, *o_b;                /* biases or NULL */
  xl_mat ig, fg;                               /* [NH, D] */
  float *ig_b, *fg_b;                          /* [NH] (always present) */
  float *mh_w, *mh_b;                          /* multihead norm [v_dim] */
  xl_mat out;  float *out_b;                   /* [D, v_dim] */
  float *norm_ffn_w, *norm_ffn_b;              /* [D] */
  xl_mat up_gate, up, down;                    /* [F,D], [F,D], [D,F] */
  float *up_gate_b, *up_b, *down_b;
} xl_block;

typedef struct xl_model {
  xl_config cfg;
  char *dir;
  st_set st;                 /* the mapped weights */
  xl_mat embed;              /* [V, D] */
  xl_mat lm_head;            /* [V, D]; the embedding when tied */
  float *out_norm_w, *out_norm_b;
  xl_block *blocks;          /* [n_blocks] */
  uint64_t fingerprint;
  char fingerprint_hex[17];
  size_t weight_bytes;       /* bytes of all tensors as stored */
  void **owned;  int nowned; /* fp32 copies to free */
  void *v1;                  /* xlstm_v1 structure (model_v1.c), NULL otherwise */
} xl_model;

/* Opens DIR (config.json + safetensors). NULL with a message in err on failure. */
xl_model *xl_model_load(const char *dir, char *err, size_t errlen);
void xl_model_free(xl_model *m);

/* The default model directory: $XL_MODEL, else <exe dir>/../models/xlstm-tiny-pydocs,
 * else the checkout it was built from (XL_SOURCE_ROOT). Returns a malloc'd string. */
char *xl_default_model_dir(void);

/* Helpers shared with model_v1.c: look up a tensor by name with an exact shape
 * (ndim dims; -1 = any) and bind it as a matrix / fp32 vector. */
int xl_bind_mat(xl_model *m, const char *name, int rows, int cols, xl_mat *out, char *err, size_t errlen);
int xl_bind_vec(xl_model *m, const char *name, int n, float **out, int required, char *err, size_t errlen);
const st_tensor *xl_find_tensor(const xl_model *m, const char *name);

#endif
