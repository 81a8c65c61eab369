/* sampler: see sampler.h. The generator is splitmix64, so a seed gives the same tokens on
 * every machine. */
#include "engine/sampler.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static double uniform01(uint64_t *x) { return (splitmix64(x) >> 11) * (1.0 / 9007199254740992.0); }

double xl_sampler_uniform(xl_sampler *s) { return uniform01(&s->rng); }

void xl_sampler_init(xl_sampler *s, const xl_sampling *cfg, int vocab) {
  s->cfg = *cfg;
  s->vocab = vocab;
  s->rng = cfg->seed;
  s->prob = xl_malloc(sizeof(float) * (size_t)vocab);
  s->idx = xl_malloc(sizeof(int) * (size_t)vocab);
}
void xl_sampler_free(xl_sampler *s) {
  free(s->prob);
  free(s->idx);
  s->prob = NULL;
  s->idx = NULL;
}

int xl_argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}

/* sift-down on a min-heap of indices keyed by prob (for top-k selection without sorting all) */
static void sift(int *h, int n, int i, const float *p) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && p[h[l]] < p[h[m]]) m = l;
    if (r < n && p[h[r]] < p[h[m]]) m = r;
    if (m == i) return;
    int t = h[i]; h[i] = h[m]; h[m] = t;
    i = m;
  }
}

int xl_sample(xl_sampler *s, const float *logits) {
  int V = s->vocab;
  if (s->cfg.greedy || s->cfg.temperature <= 0) return xl_argmax(logits, V);
  float mx = logits[xl_argmax(logits, V)], inv_t = 1.0f / s->cfg.temperature;
  double sum = 0;
  for (int i = 0; i < V; i++) { s->prob[i] = expf((logits[i] - mx) * inv_t); sum += s->prob[i]; }
  /* candidates: all, or the top k by a heap */
  int k = s->cfg.top_k > 0 && s->cfg.top_k < V ? s->cfg.top_k : V;
  int *h = s->idx;
  if (k < V) {
    for (int i = 0; i < k; i++) h[i] = i;
    for (int i = k / 2 - 1; i >= 0; i--) sift(h, k, i, s->prob);
    for (int i = k; i < V; i++)
      if (s->prob[i] > s->prob[h[0]]) { h[0] = i; sift(h, k, 0, s->prob); }
  } else {
    for (int i = 0; i < V; i++) h[i] = i;
  }
  /* top-p needs the candidates in descending order: heap-sort the k (or V) candidates */
  int n = k;
  if (s->cfg.top_p < 1.0f) {
    for (int i = n / 2 - 1; i >= 0; i--) sift(h, n, i, s->prob);
    for (int end = n - 1; end > 0; end--) {   /* min-heap sort -> descending order */
      int t = h[0]; h[0] = h[end]; h[end] = t;
      sift(h, end, 0, s->prob);
    }
    double tot = 0;
    for (int i = 0; i < n; i++) tot += s->prob[h[i]];
    double acc = 0;
    int keep = n;
    for (int i = 0; i < n; i++) {
      acc += s->prob[h[i]];
      if (acc >= s->cfg.top_p * tot) { keep = i + 1; break; }
    }
    n = keep;
  }
  double tot = 0;
  for (int i = 0; i < n; i++) tot += s->prob[h[i]];
  (void)sum;
  double r = uniform01(&s->rng) * tot, acc = 0;
  for (int i = 0; i < n; i++) {
    acc += s->prob[h[i]];
    if (r < acc) return h[i];
  }
  return h[n - 1];
}
