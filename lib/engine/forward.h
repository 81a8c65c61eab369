/* forward: running a model. An xl_session owns the recurrent state (fp32 C/n/m per layer
 * and head) and every scratch buffer, sized once when it is created, so that stepping a
 * token or prefilling a prompt allocates nothing.
 *   xl_step     - one token through the recurrent form (decode);
 *   xl_prefill  - a whole prompt, chunkwise-parallel (GEMMs) or token by token.
 * Both leave the logits of the last consumed token in s->logits.
 * Not for: sampling (sampler.h), state files (state.h). */
#ifndef XL_FORWARD_H
#define XL_FORWARD_H
#include "engine/model.h"
#include "engine/pool.h"
#include <stdint.h>

typedef enum { XL_BACKEND_CHUNKWISE = 0, XL_BACKEND_RECURRENT = 1 } xl_backend;

typedef struct {
  xl_backend backend;     /* prefill backend; decode always steps */
  int chunk_size;         /* tokens per chunk of the chunkwise form (>= 1) */
  int workers;            /* threads (ours, and OpenBLAS's for the projection GEMMs) */
  int heads_per_band;     /* heads per parallel task in the cell */
} xl_runopts;

/* Defaults: chunkwise, the model's chunk_size, 1 worker, 1 head per band;
 * then XL_BACKEND, XL_CHUNK_SIZE, XL_WORKERS, XL_HEADS_PER_BAND from the environment
 * (a bad value is a usage error naming the variable). */
void xl_runopts_default(xl_runopts *o, const xl_model *m);
const char *xl_backend_name(xl_backend b);
int xl_backend_parse(const char *s, xl_backend *out);   /* 0 ok */

typedef struct xl_session {
  const xl_model *m;
  xl_runopts opt;
  xl_pool *pool;
  /* recurrent state, contiguous per kind */
  float *C;          /* [n_blocks, NH, DK, DV] */
  float *n;          /* [n_blocks, NH, DK] */
  float *mst;        /* [n_blocks, NH] */
  long tokens;       /* tokens consumed so far */
  int last_token;    /* last consumed id (-1 before any) */
  float *logits;     /* [V] logits after the last consumed token */
  /* single-token scratch */
  float *x, *u, *q, *k, *v, *o, *ig, *fg, *h, *g, *up;
  /* prefill scratch for a segment of `seg` tokens */
  int seg;
  float *X, *U, *Q, *K, *V, *O, *IG, *FG, *H, *G, *UP;
  float *tile;       /* fp32 tile for BF16/F16 GEMMs */
  float *wscr;       /* per-worker chunk scratch */
  size_t wscr_floats;
  size_t scratch_bytes;
  void *v1;          /* xlstm_v1 session part */
} xl_session;

/* NULL on failure (message in err). The session keeps a pointer to m. */
xl_session *xl_session_new(const xl_model *m, const xl_runopts *opt, char *err, size_t errlen);
void xl_session_free(xl_session *s);
void xl_session_reset(xl_session *s);          /* back to the empty state */

/* One token: updates the state and s->logits. */
void xl_step(xl_session *s, int token);
/* n tokens; if all_logits is not NULL it receives [n, V] logits (row t after token t). */
void xl_prefill(xl_session *s, const int32_t *ids, long n, float *all_logits);

/* Optional progress hook for long prefills: called after each segment with the
 * number of tokens done so far; returns non-zero to stop early. */
extern int (*xl_prefill_progress)(long done, long total, double seconds);

#endif
