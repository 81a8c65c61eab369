/* checkpoint: what binding a checkpoint's tensors takes, shared by the architectures
 * (engine/xlstm, engine/v1): find a tensor, check its shape and dtype, bind a matrix view
 * in its stored dtype (F32, BF16, F16; an aligned copy when the file's data is misaligned)
 * or an fp32 copy of a vector; copies are owned by the model. Also the fingerprint that
 * ties state files to a checkpoint, and where the default model lives.
 * Not for: opening a model (engine.h: xl_model_load) or running it. */
#ifndef XL_CHECKPOINT_H
#define XL_CHECKPOINT_H
#include "engine/session.h"

const st_tensor *xl_find_tensor(const xl_model *m, const char *name);
/* Keeps p (malloc'd) until the model is freed; returns p. */
void *xl_model_own(xl_model *m, void *p);
/* name must be a [rows, cols] float tensor. 0 ok; -1 with err naming the tensor. */
int xl_bind_mat(xl_model *m, const char *name, int rows, int cols, xl_mat *out, char *err, size_t errlen);
/* Rows [r0, r0+rows) of t, a [total_rows, cols] tensor (fused weights hold several). */
int xl_bind_rows(xl_model *m, const st_tensor *t, int total_rows, int r0, int rows, int cols, xl_mat *out, char *err,
                 size_t errlen);
/* An fp32 copy of the 1-D tensor name [n]; absent: NULL, an error only when required. */
int xl_bind_vec(xl_model *m, const char *name, int n, float **out, int required, char *err, size_t errlen);
/* An fp32 copy of [off, off+n) of t, a 1-D tensor [total]. */
int xl_bind_vec_part(xl_model *m, const st_tensor *t, int total, int off, int n, float **out, char *err, size_t errlen);
/* prefix+a when the checkpoint has it, else prefix+b when it has that (older spellings). */
const char *xl_pick_name(const xl_model *m, char *buf, size_t n, const char *prefix, const char *a, const char *b);
/* Sets m->fingerprint(_hex) and m->weight_bytes from the config text and a sample of
 * every tensor (identifies a checkpoint without reading all of it). */
void xl_model_fingerprint(xl_model *m, const char *config_text);
/* The default model directory: $XL_MODEL, else <exe dir>/../models/xlstm-tiny-pydocs,
 * else the checkout it was built from (XL_SOURCE_ROOT). Returns a malloc'd string. */
char *xl_default_model_dir(void);

#endif
