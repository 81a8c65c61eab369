/* cuda: the xLSTM-7B family ("xlstm") on one NVIDIA GPU, behind a plain C API.
 * A model's weights are uploaded once in their stored dtype (F32/BF16/F16; norm weights and
 * biases fp32); a session holds the fp32 recurrent state (C, n, m per layer and head) and
 * every scratch buffer on the GPU, sized when it is created, so that stepping a token or
 * prefilling a prompt allocates nothing.
 *   xl_cuda_step    - one token through fused kernels, replayed from a CUDA graph;
 *   xl_cuda_prefill - a prompt, chunkwise: projections as cuBLAS GEMMs, the mLSTM cell as
 *                     chunk kernels (local chunk states, a scan over chunks, outputs).
 * Precision: matmul_bf16 = 0 computes in fp32 throughout (no TF32; matches the golden files
 * like the CPU); matmul_bf16 = 1 rounds activations to bf16 before every projection (as the
 * CPU's --matmul bf16 does) and runs the prefill projections on bf16 tensor cores and the
 * cell's products in TF32, accumulating in fp32.
 * Every function returns 0 / non-NULL on success, else -1 / NULL with a message in err
 * (or retrievable with xl_cuda_last_error); a failed CUDA call never aborts the process.
 * Built only when nvcc is found (XL_HAVE_CUDA); see docs/cuda.md.
 * Not for: xlstm_v1 checkpoints, several GPUs. */
#ifndef XL_CUDA_H
#define XL_CUDA_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct xl_model;

typedef struct xl_cuda_model xl_cuda_model;       /* weights on one GPU, uploaded once */
typedef struct xl_cuda_session xl_cuda_session;   /* fp32 recurrent state + scratch on the GPU */

/* The chunk size a GPU session uses when none is named: on the 7B preset a 16k-token prefill
 * took 408 ms at 256, 428 at 128, 441 at 64 (one H200). The run tools take it as the default of
 * --chunk-size on --device cuda (the model's own chunk_size stays the CPU's default). */
#define XL_CUDA_DEFAULT_CHUNK 256

typedef struct {
  int chunk_size;    /* tokens per chunk of the chunkwise prefill (>= 1; 0 = XL_CUDA_DEFAULT_CHUNK) */
  int matmul_bf16;   /* 0: fp32 arithmetic (no TF32); 1: bf16 tensor cores, fp32 accumulate */
  int max_segment;   /* prefill tokens per segment (0 = the largest that fits the budget, <= 16384) */
  /* Decode tuning: the matrix-vector kernel variant, 1..6 (loads in flight per warp, blocks
   * per multiprocessor: lib/engine/cuda/decode.cu); 0 = the default, the fastest measured.
   * bench_cuda --mv-tune compares them; all give the same bits. */
  int mv_variant;
} xl_cuda_opts;

/* 0 when `device` is usable; else -1 and why ("no CUDA device: ...", "device 3 not present (2 found)"). */
int xl_cuda_probe(int device, char *why, size_t whylen);

/* Copies the weights of m (model_type "xlstm") to `device`. m may be freed afterwards. */
xl_cuda_model *xl_cuda_model_upload(const struct xl_model *m, int device, char *err, size_t errlen);
void xl_cuda_model_free(xl_cuda_model *cm);
size_t xl_cuda_model_bytes(const xl_cuda_model *cm);   /* device bytes of the uploaded weights */

/* A session keeps a pointer to cm, which must outlive it. */
xl_cuda_session *xl_cuda_session_new(xl_cuda_model *cm, const xl_cuda_opts *o, char *err, size_t errlen);
void xl_cuda_session_free(xl_cuda_session *s);
void xl_cuda_session_reset(xl_cuda_session *s);    /* C = n = 0, m = 0 (not -inf), logits 0 */

/* One token; logits: host [V] receives the logits after it, or NULL (kept on the device). */
int xl_cuda_step(xl_cuda_session *s, int token, float *logits);
/* n tokens, chunkwise. all_logits: host [n, V] or NULL; last_logits: host [V] or NULL. */
int xl_cuda_prefill(xl_cuda_session *s, const int32_t *ids, long n, float *all_logits, float *last_logits);
/* The next token from the logits of the last consumed token, on the GPU. greedy (or
 * temperature <= 0): argmax, first index on ties. Otherwise softmax at `temperature`, top_k
 * (0 = off), top_p (>= 1 = off), and u01, a uniform number in [0, 1) from the host's seeded
 * generator, picks the token from the cumulative distribution. */
int xl_cuda_sample(xl_cuda_session *s, int greedy, float temperature, int top_k, float top_p, double u01, int *token);

/* The state in the CPU session's host layouts: C [L,NH,DK,DV], n [L,NH,DK], m [L,NH]. */
int xl_cuda_state_read(xl_cuda_session *s, float *C, float *n, float *m);
int xl_cuda_state_write(xl_cuda_session *s, const float *C, const float *n, const float *m);
int xl_cuda_logits_write(xl_cuda_session *s, const float *logits);   /* host [V], after loading a state file */
int xl_cuda_logits_read(xl_cuda_session *s, float *logits);          /* host [V]: the logits of the last token */
long xl_cuda_session_tokens(const xl_cuda_session *s);               /* tokens consumed since the reset */
size_t xl_cuda_session_bytes(const xl_cuda_session *s);              /* device bytes of state + scratch */
int xl_cuda_session_segment(const xl_cuda_session *s);               /* prefill tokens per segment in use */

/* Profiling: on = 1 starts summing device time per phase (prefill: norm, GEMMs, cell
 * stages...; decode: the step's kernels, launched one by one instead of from the graph),
 * on = 0 stops. xl_cuda_profile_json writes {"phase": ms, ...} of what was summed. */
int xl_cuda_profile(xl_cuda_session *s, int on);
int xl_cuda_profile_json(xl_cuda_session *s, char *buf, size_t n);

size_t xl_cuda_peak_bytes(void);   /* peak device bytes this process allocated through this module */
size_t xl_cuda_device_used_bytes(int device);   /* the device's memory in use now (all processes, contexts) */
/* "NVIDIA H200, driver 580.95, runtime 13.0, sm_90, 132 SMs, 143 GB, 1980 MHz" (for records). */
const char *xl_cuda_device_name(int device, char *buf, size_t n);
/* The message of the last failure in this thread ("" if none). */
const char *xl_cuda_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
