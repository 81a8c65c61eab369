/* cell: the mLSTM cell, shared by the architectures (docs/xlstm-math.md, "mLSTM cell"):
 * one head's recurrent step (decode) and one chunk of the chunkwise-parallel form
 * (prefill), on the fp32 state C [DK,DV], n [DK], m.
 * The two families differ in where the 1/sqrt(DK) goes: the 7B family scales the query,
 * the original xLSTM (v1) scales the key as it enters the state (so C and n hold scaled
 * keys); and in the denominator's eps. xl_cell says which.
 * Not for: projections, norms or gates around the cell (the architectures). */
#ifndef XL_CELL_H
#define XL_CELL_H
#include <stddef.h>

typedef struct {
  int DK, DV;         /* per-head key and value dims */
  float eps;          /* added to the denominator */
  int key_scaled;     /* 1: the key carries 1/sqrt(DK) (v1); 0: the query does (7B family) */
} xl_cell;

/* One token: q, k [DK], v [DV], gate pre-activations ig, fg; updates C, n, *m; h [DV]. */
void xl_cell_step(const xl_cell *cs, const float *q, const float *k, const float *v, float ig, float fg, float *C, float *n,
                  float *m, float *h);
/* xl_cell_step in two parts (the same operations, so the same bits), so that the columns of
 * C can be shared out between threads: the gates, n, m and the denominator (DK work), then
 * the columns [d0, d1) of C and h (DK x (d1-d0) work; the vector kernels of kernels.h). */
typedef struct { float fa, ia, qscale, den; } xl_cell_gates;
void xl_cell_step_gates(const xl_cell *cs, const float *q, const float *k, float ig, float fg, float *n, float *m, xl_cell_gates *g);
void xl_cell_step_cols(const xl_cell *cs, const xl_cell_gates *g, const float *q, const float *k, const float *v, float *C, float *h,
                       int d0, int d1);

/* One chunk of L tokens: q, k rows of stride ldq, v rows stride ldv, h rows stride ldh,
 * gates stride gstride; carries C, n, *m across the chunk. scr: xl_cell_chunk_floats(L)
 * floats of scratch. Calls OpenBLAS SGEMM (single-threaded inside pool tasks). */
void xl_cell_chunk(const xl_cell *cs, const float *q, const float *k, const float *v, int ldq, int ldv, int ldh,
                   const float *ig, const float *fg, int gstride, int L, float *C, float *n, float *m, float *h, float *scr);
size_t xl_cell_chunk_floats(const xl_cell *cs, int L);
/* xl_cell_chunk in two halves, for running chunks of one head in parallel (the same
 * operations, so the same bits): the chunk's outputs h from the state entering it
 * (C, n, m, unchanged), and the state carried across the chunk (no outputs). scr as above. */
void xl_cell_chunk_out(const xl_cell *cs, const float *q, const float *k, const float *v, int ldq, int ldv, int ldh,
                       const float *ig, const float *fg, int gstride, int L, const float *C, const float *n, float m,
                       float *h, float *scr);
void xl_cell_chunk_state(const xl_cell *cs, const float *k, const float *v, int ldq, int ldv, const float *ig, const float *fg,
                         int gstride, int L, float *C, float *n, float *m, float *scr);

#endif
