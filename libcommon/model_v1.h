/* model_v1: the original xLSTM language model (model_type "xlstm_v1": mLSTM v1 and sLSTM
 * blocks, docs/xlstm-v1-math.md). The generic engine (config.c, model.c, forward.c,
 * state.c) calls these hooks when cfg.arch == XL_ARCH_V1; everything v1-specific lives
 * behind them.
 * Not for: the 7B-family model (model.c / forward.c). */
#ifndef XL_MODEL_V1_H
#define XL_MODEL_V1_H
#include "config.h"
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct xl_model;
struct xl_session;

/* config.c: fill c (D, n_blocks, vocab, n_heads, bos/eos...) and c->v1 from {"model_type":"xlstm_v1","xlstm":{...}}. */
int xl_v1_config_parse(xl_config *c, const struct cJSON *root, const char *path, char *err, size_t errlen);
/* model.c: bind the v1 tensors into m->v1 (the embedding/lm_head into m->embed/m->lm_head). */
int xl_v1_model_bind(struct xl_model *m, char *err, size_t errlen);
void xl_v1_model_free(struct xl_model *m);
/* forward.c: session parts (state, scratch in s->v1), sized once. */
int xl_v1_session_init(struct xl_session *s, char *err, size_t errlen);
void xl_v1_session_free(struct xl_session *s);
void xl_v1_session_reset(struct xl_session *s);
void xl_v1_step(struct xl_session *s, int token);
void xl_v1_prefill(struct xl_session *s, const int32_t *ids, long n, float *all_logits);

/* state.c: enumerate every state tensor of the session (both model kinds use this):
 * fn(ctx, name, data, ndim, shape) for each; data is read for saving and written for loading. */
typedef void (*xl_state_visit_fn)(void *ctx, const char *name, float *data, int ndim, const int64_t *shape);
void xl_v1_state_visit(struct xl_session *s, xl_state_visit_fn fn, void *ctx);

#endif
