/* session: the engine's interface types. An architecture (engine/xlstm, engine/v1) and a
 * device (the CPU, engine/cuda) implement the operations below; the dispatcher
 * (engine.c) picks the table from the checkpoint's model_type and the session's device,
 * and is the only code that asks which architecture or device it runs.
 *   xl_model    - a checkpoint opened on the CPU: config, mmapped weights, fingerprint;
 *                 `weights` holds the architecture's bound structure.
 *   xl_session  - one stream of tokens: the recurrent state, scratch sized once, the
 *                 logits after the last consumed token; `impl` is the implementation's.
 *   xl_runopts  - every run setting the engine takes (filled by cli/settings from flags,
 *                 profiles and XL_* variables; the engine reads no environment).
 * Header only: the functions are in engine.h. */
#ifndef XL_SESSION_H
#define XL_SESSION_H
#include "engine/config.h"
#include "engine/kernels.h"
#include "io/safetensors.h"
#include <stddef.h>
#include <stdint.h>

/* The largest chunk size the engine, its config readers and every tool accept (a chunk's
 * scratch is chunk^2 floats per worker). */
#define XL_CHUNK_MAX (1 << 16)

typedef enum { XL_BACKEND_CHUNKWISE = 0, XL_BACKEND_RECURRENT = 1 } xl_backend;
typedef enum { XL_DEVICE_CPU = 0, XL_DEVICE_CUDA = 1 } xl_device;
/* Which library runs the CPU prefill's fp32 GEMMs (engine/pgemm.h, engine/libgemm.h). */
typedef enum { XL_GEMM_OPENBLAS = 0, XL_GEMM_ONEDNN = 1 } xl_gemm;

/* Called after each prefill segment with the tokens done so far; non-zero stops early. */
typedef int (*xl_progress_fn)(void *ctx, long done, long total, double seconds);
/* Asked between the layers of a prefill segment: non-zero abandons the segment (the state
 * goes back to where the segment began), so a stop request is honoured within one layer
 * rather than one segment (a segment of a 7B model takes minutes on a CPU). */
typedef int (*xl_interrupt_fn)(void *ctx);

typedef struct {
  xl_backend backend;     /* prefill backend; decode always steps */
  int chunk_size;         /* tokens per chunk of the chunkwise form (>= 1; 0 = the model's) */
  int workers;            /* CPU threads (ours, and OpenBLAS's for the projection GEMMs) */
  int heads_per_band;     /* heads per parallel task in the CPU cell */
  int matmul_bf16;        /* round activations to bf16 before each matrix product */
  xl_kernels kernels;     /* CPU kernel variant (AUTO: the best this CPU has); process-wide:
                             the last session created sets it */
  xl_gemm gemm;           /* the CPU prefill's fp32 GEMM library */
  xl_device device;
  int device_index;       /* cuda:N */
  int segment;            /* prefill tokens per segment (0 = the device's default) */
  xl_progress_fn progress;
  xl_interrupt_fn interrupted;
  void *progress_ctx;        /* for both */
} xl_runopts;

typedef struct xl_model {
  xl_config cfg;
  char *dir;
  st_set st;                 /* the mapped weights */
  xl_mat embed;              /* [V, D] */
  xl_mat lm_head;            /* [V, D]; the embedding when tied */
  uint64_t fingerprint;
  char fingerprint_hex[17];
  size_t weight_bytes;       /* bytes of all tensors as stored */
  void **owned;  int nowned; /* copies made while binding, freed with the model */
  const struct xl_arch_ops *arch;
  void *weights;             /* the architecture's bound weights */
  void *device_weights;      /* weights uploaded to a device on its first session there */
  int device_index;          /* which device holds them */
  void (*device_weights_free)(void *);
} xl_model;

typedef struct xl_session {
  const xl_model *m;
  xl_runopts opt;            /* chunk_size resolved */
  const struct xl_session_ops *ops;
  long tokens;               /* tokens consumed so far */
  int last_token;            /* last consumed id (-1 before any) */
  float *logits;             /* [V] logits after the last consumed token (see xl_session_logits) */
  int logits_stale;          /* the device holds newer logits than `logits` */
  int segment;               /* prefill tokens per segment (set by the implementation's init) */
  float *snapshot;           /* the state before the running segment (with opt.interrupted) */
  size_t snapshot_floats;
  size_t scratch_bytes;      /* host memory the session allocated */
  void *impl;
} xl_session;

/* Enumerates state tensors: fn(ctx, name, data, ndim, shape); data is read for saving and
 * written for loading. */
typedef void (*xl_state_visit_fn)(void *ctx, const char *name, float *data, int ndim, const int64_t *shape);

/* What a device implements for one architecture. Every function returning int gives 0 on
 * success, else -1 with a message in err (or s's own error state). */
typedef struct xl_session_ops {
  const char *device;        /* "cpu", "cuda" */
  int (*init)(xl_session *s, char *err, size_t errlen);   /* state, scratch, s->logits, s->segment */
  void (*free)(xl_session *s);
  void (*reset)(xl_session *s);                           /* back to the empty state */
  int (*step)(xl_session *s, int token);                  /* the logits after token */
  /* One segment of T <= s->segment tokens, chunkwise: the logits after its last token, and
   * every row into all_logits [T, V] when not NULL. (The dispatcher loops over segments,
   * counts tokens and reports progress.) Returns 1 when opt.interrupted asked it to stop
   * (the state is then half-updated; the dispatcher restores it). */
  int (*prefill)(xl_session *s, const int32_t *ids, int T, float *all_logits);
  /* the recurrent state tensors (not the logits); loading: fn writes into data */
  int (*state_visit)(xl_session *s, xl_state_visit_fn fn, void *ctx, int loading);
  int (*fetch_logits)(xl_session *s);                     /* NULL: s->logits is always current */
  int (*store_logits)(xl_session *s);                     /* after s->logits was loaded; may be NULL */
  /* Picks the next token from the logits where they are (NULL: the engine samples on the
   * host). greedy, temperature, top_k, top_p as in sampler.h; u01: a uniform number from
   * the host's seeded generator. */
  int (*sample)(xl_session *s, int greedy, float temperature, int top_k, float top_p, double u01, int *token);
} xl_session_ops;

/* An architecture: its config.json keys, its weight binding, and its session operations
 * per device (NULL: not available on that device). */
typedef struct xl_arch_ops {
  const char *model_type;    /* config.json "model_type" */
  xl_arch id;
  int (*parse_config)(xl_config *c, const struct cJSON *root, const char *path, char *err, size_t errlen);
  int (*bind)(xl_model *m, char *err, size_t errlen);
  void (*unbind)(xl_model *m);
  const xl_session_ops *cpu, *cuda;
} xl_arch_ops;

#endif
