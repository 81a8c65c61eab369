/* engine: running a model, whatever its architecture and device. The dispatcher opens a
 * checkpoint with the architecture its config.json names (model_type "xlstm": engine/xlstm;
 * "xlstm_v1": engine/v1) and runs sessions on the device the options name (the CPU, or
 * engine/cuda); it is the only code that asks which (session.h has the interface).
 *   xl_model_load   - config + mmapped weights + fingerprint, bound for the architecture;
 *   xl_session_new  - state and scratch, sized once (stepping allocates nothing);
 *   xl_step         - one token through the recurrent form (decode);
 *   xl_prefill      - a whole prompt, chunkwise-parallel or token by token.
 * Both leave the logits of the last consumed token behind xl_session_logits().
 * Not for: sampling (sampler.h), state files (state.h), where settings come from (cli/). */
#ifndef XL_ENGINE_H
#define XL_ENGINE_H
#include "engine/sampler.h"
#include "engine/session.h"

const char *xl_backend_name(xl_backend b);
int xl_backend_parse(const char *s, xl_backend *out);          /* 0 ok */
/* "cpu", "cuda" or "cuda:N" (index >= 0). 0 ok. */
int xl_device_parse(const char *s, xl_device *dev, int *index);
/* "cpu", "cuda:0", ... into buf. */
const char *xl_device_label(xl_device dev, int index, char *buf, size_t n);
/* Whether this build was made with the CUDA device (nvcc found at build time). */
int xl_built_with_cuda(void);

/* Defaults: chunkwise, the model's chunk_size, 1 worker, 1 head per band, fp32, the CPU. */
void xl_runopts_default(xl_runopts *o, const xl_model *m);

/* config.json text -> c, dispatching on "model_type"; path is used in messages.
 * 0 ok; -1 with err naming the field. */
int xl_config_parse(xl_config *c, const char *text, const char *path, char *err, size_t errlen);
int xl_config_load(xl_config *c, const char *dir, char *err, size_t errlen);   /* DIR/config.json */

/* Opens DIR (config.json + safetensors). NULL with a message in err on failure. */
xl_model *xl_model_load(const char *dir, char *err, size_t errlen);
void xl_model_free(xl_model *m);

/* Whether sessions of m can run on o's device here: this build has it, the architecture
 * runs there, the device exists. 0 ok; -1 with a message (a usage error for the tools). */
int xl_device_check(const xl_model *m, const xl_runopts *o, char *err, size_t errlen);

/* NULL on failure (message in err). The session keeps a pointer to m. */
xl_session *xl_session_new(const xl_model *m, const xl_runopts *opt, char *err, size_t errlen);
void xl_session_free(xl_session *s);
void xl_session_reset(xl_session *s);          /* back to the empty state */

/* One token: updates the state and the logits. 0 ok; -1 on a device failure. */
int xl_step(xl_session *s, int token);
/* n tokens; if all_logits is not NULL it receives [n, V] logits (row t after token t).
 * Reports to opt.progress after each segment; stops early when it returns non-zero, or
 * within a segment when opt.interrupted does (s->tokens then says how many were consumed). */
int xl_prefill(xl_session *s, const int32_t *ids, long n, float *all_logits);
/* The logits after the last consumed token, in host memory (copied from the device when
 * it holds newer ones). NULL on a device failure. */
const float *xl_session_logits(xl_session *s);
/* The next token after the last consumed one, picked by smp's settings and generator, on
 * the session's device when it can (one small copy back), else on the host. 0 ok. */
int xl_session_sample(xl_session *s, xl_sampler *smp, int *token);
/* The state tensors of the session (not the logits); loading: fn writes into data. */
int xl_session_visit_state(xl_session *s, xl_state_visit_fn fn, void *ctx, int loading);

#endif
