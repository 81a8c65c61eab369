/* xlstm: the xLSTM-7B family (model_type "xlstm", docs/xlstm-math.md): its config keys,
 * its bound weights, and its session operations on the CPU. The CUDA device runs the same
 * weights (engine/cuda). Everything here is reached through the dispatcher (engine.h);
 * tools include it only for the weight structure.
 * Not for: the original xLSTM (engine/v1). */
#ifndef XL_XLSTM_H
#define XL_XLSTM_H
#include "engine/session.h"

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

/* m->weights of an xlstm model (m->embed and m->lm_head are bound too). */
typedef struct {
  float *out_norm_w, *out_norm_b;              /* [D] (add_out_norm) */
  xl_block *blocks;                            /* [n_blocks] */
} xl_xlstm_weights;

static inline const xl_xlstm_weights *xl_xlstm_of(const xl_model *m) { return (const xl_xlstm_weights *)m->weights; }

/* xlstm_config.c: the 7B-family keys (both spellings: hidden_size/embedding_dim,
 * num_hidden_layers/num_blocks). */
int xl_xlstm_parse_config(xl_config *c, const struct cJSON *root, const char *path, char *err, size_t errlen);
/* xlstm_model.c: single or fused weight mode, q/k/v or query/key/value, biases, ties. */
int xl_xlstm_bind(xl_model *m, char *err, size_t errlen);
void xl_xlstm_unbind(xl_model *m);
/* xlstm_run.c: the forward pass on the CPU. */
extern const xl_session_ops xl_xlstm_cpu_ops;
/* The state tensors of a session (C [L,NH,DK,DV], n [L,NH,DK], m [L,NH] in host memory),
 * named as in state files: layer{i}.C, .n, .m. Every device lists its state this way. */
void xl_xlstm_visit_state(const xl_config *c, float *C, float *n, float *m, xl_state_visit_fn fn, void *ctx);

#endif
