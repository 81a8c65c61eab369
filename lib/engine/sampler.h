/* sampler: picks the next token from logits: greedy (argmax, first index on ties, as
 * torch.argmax) or temperature / top-k / top-p sampling from a seeded generator.
 * Buffers are sized once for the vocabulary; sampling allocates nothing.
 * Not for: computing logits (forward.h). */
#ifndef XL_SAMPLER_H
#define XL_SAMPLER_H
#include <stdint.h>

typedef struct {
  int greedy;
  float temperature;   /* > 0 */
  int top_k;           /* 0 = off */
  float top_p;         /* 1 = off */
  uint64_t seed;
} xl_sampling;

typedef struct {
  xl_sampling cfg;
  int vocab;
  uint64_t rng;
  float *prob;         /* [vocab] */
  int *idx;            /* [vocab] */
} xl_sampler;

void xl_sampler_init(xl_sampler *s, const xl_sampling *cfg, int vocab);
void xl_sampler_free(xl_sampler *s);
/* The first index of the largest value (as torch.argmax). */
int xl_argmax(const float *x, int n);
int xl_sample(xl_sampler *s, const float *logits);
/* The next uniform number in [0, 1) of the sampler's generator (for samplers that run
 * elsewhere, e.g. on a GPU, so that a seed picks the same stream everywhere). */
double xl_sampler_uniform(xl_sampler *s);

#endif
