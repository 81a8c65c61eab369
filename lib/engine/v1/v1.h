/* v1: the original xLSTM language model (model_type "xlstm_v1": mLSTM v1 and sLSTM
 * blocks, docs/xlstm-v1-math.md): its config keys (xl_v1_config, in c->arch_cfg), its
 * weight binding and its session operations on the CPU, reached through the dispatcher
 * (engine.h). It also describes a v1 checkpoint's tensors (xl_v1_tensor_specs) so that a
 * writer of random checkpoints (xl-init) produces exactly what the loader expects.
 * Not for: the 7B family (engine/xlstm). */
#ifndef XL_MODEL_V1_H
#define XL_MODEL_V1_H
#include "engine/session.h"
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* The v1-specific part of xl_config (c->arch_cfg). One allocation (xl_config_free frees it):
 * is_slstm is a flexible array of n_blocks flags. */
typedef struct xl_v1_config {
  int I;              /* mLSTM inner dim (_inner_embedding_dim); 0 if no mLSTM block */
  int m_heads;        /* mLSTM num_heads */
  int m_conv;         /* mLSTM conv1d_kernel_size (>= 1) */
  int qkv_bs;         /* mLSTM qkv_proj_blocksize */
  int s_heads;        /* sLSTM num_heads; 0 if no sLSTM block */
  int s_conv;         /* sLSTM conv1d_kernel_size (0: no conv) */
  int s_ffn;          /* sLSTM blocks' gated-FFN dim F (0: no FFN) */
  int group_norm_weight;   /* sLSTM head norm has a weight */
  int add_post_norm;  /* add_post_blocks_norm */
  int tie;            /* tie_weights */
  int n_blocks;
  unsigned char is_slstm[];  /* [n_blocks] */
} xl_v1_config;

/* v1_config.c: fill c (D, n_blocks, vocab, n_heads, bos/eos...) and c->v1 from {"model_type":"xlstm_v1","xlstm":{...}}.
 * Unsupported settings (act_fn other than gelu, bias true, ...) are refused naming the field. */
int xl_v1_config_parse(xl_config *c, const struct cJSON *root, const char *path, char *err, size_t errlen);
/* Builds c (arch V1, c->v1 malloc'd) from the main numbers, the way the authors' package
 * derives the rest: I = ceil(2*D/64)*64 (mLSTM proj_factor 2), sLSTM FFN F = ceil(1.3*D/64)*64
 * (0 when ffn is 0), conv kernels 4, qkv blocksize 4. slstm_at: n_slstm block indices.
 * Returns 0, or -1 with err when the numbers do not divide (heads vs dims). */
int xl_v1_config_make(xl_config *c, int D, int n_blocks, int vocab, const int *slstm_at, int n_slstm, int m_heads,
                      int s_heads, int ffn, int tie, char *err, size_t errlen);
/* config.json text ({"model_type":"xlstm_v1","xlstm":{...}}) for c; parses back to the same
 * config. malloc'd; caller frees. */
char *xl_v1_config_json(const xl_config *c);

/* The tensors a v1 checkpoint for c holds, in a fixed order: fn(ctx, name, ndim, shape) for
 * each (all floating point; the loader accepts F32, BF16 or F16). Returns the count.
 * For random initialisation see xl_v1_tensor_init. */
int xl_v1_tensor_specs(const xl_config *c, void (*fn)(void *ctx, const char *name, int ndim, const int64_t *shape),
                       void *ctx);
/* A sensible random init for the tensor `name` (from xl_v1_tensor_specs) of a model with
 * embedding dim D: values ~ mean + std * N(0,1). Norm weights are applied as (1 + w), so
 * they get mean 0, std 0; forget-gate biases get a positive mean (remembering by default). */
void xl_v1_tensor_init(const char *name, int D, float *mean, float *std);

/* v1_model.c: bind the v1 tensors into m->weights (the embedding/lm_head into m->embed/m->lm_head). */
int xl_v1_bind(xl_model *m, char *err, size_t errlen);
void xl_v1_unbind(xl_model *m);
/* v1_run.c: sessions on the CPU. State tensors (block index i): mLSTM layer{i}.C [NH,DH,DH],
 * layer{i}.n [NH,DH], layer{i}.m [NH], layer{i}.conv [K-1, I]; sLSTM layer{i}.y/.c/.n/.m [H],
 * layer{i}.conv [K-1, H] (no conv tensor when K <= 1). */
extern const xl_session_ops xl_v1_cpu_ops;

#endif
