/* cuda_ops: the CUDA device behind the engine interface: xl_session_ops for the 7B family
 * over the plain C API of cuda.h (weights uploaded once per model and device, on the first
 * session there; the state and logits stay on the GPU and travel to the host only for state
 * files, --logits and host sampling). Compiled only when the build has CUDA (XL_HAVE_CUDA).
 * Not for: the kernels (cuda.h and its .cu files). */
#ifndef XL_CUDA_OPS_H
#define XL_CUDA_OPS_H
#include "engine/session.h"

extern const xl_session_ops xl_cuda_xlstm_ops;
/* 0 when cuda:device can be used here; else -1 with a message naming what is missing. */
int xl_cuda_check(int device, char *err, size_t errlen);

#endif
