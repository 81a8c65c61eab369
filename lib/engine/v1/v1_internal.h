/* v1_internal: the bound weights of an xlstm_v1 model (m->weights), shared by the binder
 * (v1_model.c) and the forward pass (v1_run.c). Small or block-diagonal weights
 * (conv kernels, headwise projections, the sLSTM recurrent kernel, norms, biases) are fp32;
 * the large dense projections stay in their stored dtype as xl_mat.
 * Not for: use outside engine/v1. */
#ifndef XL_MODEL_V1_INTERNAL_H
#define XL_MODEL_V1_INTERNAL_H
#include "engine/kernels.h"
#include "engine/v1/v1.h"

#define XL_V1_LN_EPS 1e-5f     /* every LayerNorm / head norm of the v1 model */
#define XL_V1_CELL_EPS 1e-6f   /* the mLSTM denominator epsilon */

typedef struct {
  int slstm;                 /* 1: sLSTM block, 0: mLSTM block */
  const float *norm_w;       /* xlstm_norm [D] */
  int K;                     /* conv kernel (0: none) */
  int C;                     /* channels of the conv: I (mLSTM) or D (sLSTM) */
  const float *conv_wT;      /* [K, C]: the kernel transposed, tap-major */
  const float *conv_b;       /* [C] */
  /* mLSTM */
  xl_mat up;                 /* proj_up [2I, D] */
  const float *wq, *wk, *wv; /* headwise [I/bs, bs, bs] */
  xl_mat igw, fgw;           /* [NH, 3I] */
  const float *ig_b, *fg_b;  /* [NH] */
  const float *outnorm_w;    /* [I] */
  const float *skip;         /* learnable_skip [I] */
  xl_mat down;               /* proj_down [D, I] */
  /* sLSTM */
  const float *gw[4];        /* wx quarters i, f, z, o: from fgate, igate, zgate, ogate [NH, DH, DH] */
  const float *R;            /* _recurrent_kernel_ [NH, 4*DH, DH] */
  const float *sbias;        /* _bias_ [4*H] */
  const float *gn_w;         /* group_norm [H] or NULL (weight 0) */
  /* gated FFN (F = 0: absent) */
  int F;
  const float *ffn_norm_w;   /* [D] */
  xl_mat ffn_up;             /* [2F, D]: gate rows then up rows */
  xl_mat ffn_down;           /* [D, F] */
} xl_v1_block;

typedef struct {
  xl_v1_block *blocks;       /* [n_blocks] */
  const float *post_norm_w;  /* [D] or NULL when add_post_blocks_norm is false */
} xl_v1_model;

#endif
