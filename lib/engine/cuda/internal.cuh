/* internal: what the CUDA device's translation units share: the model and session
 * structures, error handling (a thread-local message; every CUDA/cuBLAS call checked), the
 * allocation tally behind xl_cuda_peak_bytes, and the launchers each .cu exports.
 * Not for: use outside lib/engine/cuda (the API is cuda.h). */
#ifndef XL_CUDA_INTERNAL_CUH
#define XL_CUDA_INTERNAL_CUH
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "engine/cuda/cuda.h"
#include "engine/xlstm/xlstm.h"
}

/* ---- errors: the first failure's message, kept per thread ---- */
int xlc_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* sets the message, returns -1 */
void xlc_copy_err(char *err, size_t errlen);                                 /* the message into a caller's buffer */

/* variadic: template arguments inside a call carry commas */
#define CU(...) do { cudaError_t e_ = (__VA_ARGS__); \
    if (e_ != cudaSuccess) return xlc_fail("%s:%d: %s: %s", __FILE__, __LINE__, #__VA_ARGS__, cudaGetErrorString(e_)); } while (0)
#define CB(...) do { cublasStatus_t e_ = (__VA_ARGS__); \
    if (e_ != CUBLAS_STATUS_SUCCESS) return xlc_fail("%s:%d: %s: cuBLAS status %d", __FILE__, __LINE__, #__VA_ARGS__, (int)e_); } while (0)
/* after a kernel launch: a bad configuration shows up here, a fault at the next sync */
#define KCHECK() CU(cudaGetLastError())
#define TRY(...) do { if ((__VA_ARGS__) != 0) return -1; } while (0)

/* ---- device memory with a tally (the peak is what xl_cuda_peak_bytes reports) ---- */
int xlc_malloc(void **p, size_t bytes);   /* 0 or -1 (message set); bytes 0 gives NULL */
void xlc_free(void *p);

/* ---- the uploaded model ---- */
typedef struct {
  int dtype;          /* ST_F32, ST_BF16 or ST_F16 */
  int rows, cols;
  void *data;         /* row-major [rows, cols] */
} xlc_mat;

__host__ __device__ static inline size_t xlc_esize(int dtype) { return dtype == ST_F32 ? 4 : 2; }

typedef struct {
  xlc_mat win;        /* [NIN, D]: rows q [QK], k [QK], v [VD], o [VD], igate [NH], fgate [NH] */
  xlc_mat wout;       /* [D, VD] */
  xlc_mat wup;        /* [2F, D]: up_gate row i at 2i, up row i at 2i+1 (the pair meets in one warp) */
  xlc_mat wdown;      /* [D, F] */
  float *b_in;        /* [NIN] the projections' biases, zero where absent (the gates' are always there) */
  float *b_up;        /* [2F] interleaved like wup, or NULL */
  float *norm1_w, *norm1_b, *norm2_w, *norm2_b;   /* [D]; b NULL without use_bias */
  float *mh_w, *mh_b;                             /* [VD] */
  float *out_b, *down_b;                          /* [D] or NULL */
} xlc_block;

struct xl_cuda_model {
  int device;
  int D, L, NH, V, QK, VD, DK, DV, F, NIN;
  float gcap, lcap, norm_eps, eps;
  int add_out_norm, use_bias;
  xlc_mat embed, lmhead;   /* lmhead.data == embed.data when tied */
  float *out_norm_w, *out_norm_b;
  xlc_block *blocks;       /* host array [L] of device pointers */
  size_t bytes;
  int any_f32, any_bf16, any_f16;   /* some matrix stored so (decides whether GEMMs need a conversion slab) */
};

/* column offsets inside a W_in product row */
static inline int xlc_off_k(const xl_cuda_model *m) { return m->QK; }
static inline int xlc_off_v(const xl_cuda_model *m) { return 2 * m->QK; }
static inline int xlc_off_o(const xl_cuda_model *m) { return 2 * m->QK + m->VD; }
static inline int xlc_off_ig(const xl_cuda_model *m) { return 2 * m->QK + 2 * m->VD; }
static inline int xlc_off_fg(const xl_cuda_model *m) { return 2 * m->QK + 2 * m->VD + m->NH; }

/* ---- profiling: device time per phase, from events between the phases' launches ---- */
enum {
  XLC_PH_START, XLC_PH_EMBED, XLC_PH_NORM, XLC_PH_GEMM_IN, XLC_PH_GATES, XLC_PH_KWEIGHT, XLC_PH_CLOC, XLC_PH_SCAN, XLC_PH_S,
  XLC_PH_MASK, XLC_PH_NUM, XLC_PH_HEADOUT, XLC_PH_GEMM_OUT, XLC_PH_GEMM_UP, XLC_PH_SILU, XLC_PH_GEMM_DOWN, XLC_PH_LOGITS,
  XLC_PH_D_IN, XLC_PH_D_CELL, XLC_PH_D_OUT, XLC_PH_D_UP, XLC_PH_D_DOWN, XLC_PH_D_LOGITS, XLC_NPH
};
#define XLC_PROF_EVENTS 1024

/* ---- a session ---- */
struct xl_cuda_session {
  xl_cuda_model *cm;
  int bf16;                /* matmul_bf16 */
  int ck, seg, ncmax;      /* chunk size, tokens per segment (a multiple of ck), chunks per segment */
  cudaStream_t st;
  cublasHandle_t blas;
  void *blas_ws;
  size_t bytes;            /* device bytes this session allocated */
  long tokens;
  /* state: C [L,NH,DK,DV]; n and m twice, since a decode step reads one copy and writes the
   * other (its blocks run in parallel); par says which holds the current state, on the host
   * (par) and on the device (d_par, flipped by the step's last kernel) */
  float *C, *nbuf[2], *mbuf[2];
  int par, *d_par;
  float *logits;           /* [V] after the last consumed token */
  /* decode */
  int *d_token, *h_token;  /* device token id; two pinned host words the steps send in turn */
  cudaEvent_t tokev[2];    /* the copy out of each word has run */
  float *x, *p, *act, *xh; /* [D], [NIN], [F], [VD] (the out-projection's input) */
  float *h, *den;          /* [xlc_decode_rt(), VD] partial cell numerators, [NH] denominators */
  cudaGraph_t graph;
  cudaGraphExec_t gexec;
  /* prefill, for a segment of seg tokens (ck | seg) */
  int32_t *d_ids;          /* [seg] */
  float *X;                /* [seg, D] the residual stream */
  void *A;                 /* [seg, max(D,VD,F)] GEMM inputs: bf16 (bf16 mode) or fp32 */
  float *P;                /* [seg, max(NIN, 2F)] GEMM outputs */
  float *H;                /* [seg, VD] cell outputs */
  float *Qb, *Kw;          /* [seg, QK] scaled queries (inter-chunk term), weighted keys (chunk states) */
  float *S;                /* [ncmax*NH, ck, ck] gated intra-chunk products */
  float *Cst, *Nst;        /* [ncmax*NH, DK, DV], [ncmax*NH, DK]: chunk-local, then entering states */
  float *tok;              /* per head and token: 6 rows of [NH, seg] (see cell.cu) */
  float *chk;              /* per chunk and head: 5 rows of [ncmax*NH] */
  const void **ptrs;       /* batched-GEMM pointer arrays, 8 x [ncmax*NH] */
  void *wslab;             /* weight conversion slab (a stored dtype other than the GEMM's) */
  size_t wslab_bytes;
  float *lrows;            /* [lrows_n, V] logits rows when all positions are asked for */
  int lrows_n;
  /* sampling */
  float *sprob, *sprob2;   /* [V] */
  int *sidx, *sidx2;       /* [V] */
  void *sort_tmp;
  size_t sort_tmp_bytes;
  int *d_out, *h_out;      /* sampled token; pinned host copy */
  int pdl;                 /* decode kernels launched with programmatic dependencies */
  int mv_variant;          /* matrix-vector kernel variant (decode.cu) */
  /* profiling (xl_cuda_profile): events recorded after each phase, summed per phase */
  int prof_on, prof_n;
  cudaEvent_t *prof_ev;    /* [XLC_PROF_EVENTS] */
  int prof_ph[XLC_PROF_EVENTS];
  double prof_ms[XLC_NPH];
  long prof_calls[XLC_NPH];
};

/* upload.cu: marks the end of a phase (no-op unless profiling); flush sums what was marked */
void xlc_mark(xl_cuda_session *s, int phase);
int xlc_prof_flush(xl_cuda_session *s);

/* decode.cu. The matrix-vector variant a session uses unless told (see mv_var_u there). */
#define XLC_MV_VARIANT 3
/* decode.cu */
int xlc_step_launch(xl_cuda_session *s);                    /* one token (d_token) through the step graph */
int xlc_final_logits(xl_cuda_session *s, const float *x);   /* s->logits from one residual row (no parity flip) */
int xlc_decode_prepare(xl_cuda_session *s);                 /* kernel attributes, before any capture */
int xlc_decode_rt(void);                                    /* row tiles of the step's cell kernel */
void xlc_graph_free(xl_cuda_session *s);
/* prefill.cu */
int xlc_prefill_run(xl_cuda_session *s, const int32_t *ids, long n, float *all_logits);
size_t xlc_prefill_bytes(const xl_cuda_model *m, int seg, int ck, int bf16);   /* scratch a segment needs */
/* cell.cu: the chunkwise mLSTM cell of one layer over a segment of T tokens (P holds q,k,v,o,gates) */
int xlc_cell_ptrs(xl_cuda_session *s);                      /* fills s->ptrs once */
int xlc_cell_segment(xl_cuda_session *s, int layer, int T, void *Aout);
/* sample.cu */
int xlc_sample_prepare(xl_cuda_session *s);                 /* sort scratch */

#endif
