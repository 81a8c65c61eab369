/* The worker pool: every task of every step runs exactly once, with that step's function
 * and context, and xl_pool_run returns only when all of them are finished, even when
 * consecutive steps have different task counts (a worker leaving one step must not claim
 * or count a task of the next). Thousands of short steps make the races likely. */
#include "engine/pool.h"
#include "testlib.h"
#include <stdatomic.h>

typedef struct { atomic_int *hits; int ntasks; int step; atomic_int *bad; } step_ctx;

static void task_a(void *vctx, int t, int worker) {
  step_ctx *c = vctx;
  if (t < 0 || t >= c->ntasks) atomic_fetch_add(c->bad, 1);
  else atomic_fetch_add(&c->hits[t], 1);
}
/* a second function with a different context layout: running it with task_a's context (or
 * the reverse) would be caught by the magic number */
typedef struct { int magic; atomic_int *sum; } other_ctx;
static void task_b(void *vctx, int t, int worker) {
  other_ctx *o = vctx;
  if (o->magic == 0x5eed) atomic_fetch_add(o->sum, t + 1);
}

int main(void) {
  for (int nthreads = 2; nthreads <= 4; nthreads++) {
    xl_pool *p = xl_pool_create(nthreads);
    atomic_int hits[64], bad = 0, sum = 0;
    long wrong = 0, early = 0, bsum_wrong = 0;
    for (int step = 0; step < 20000; step++) {
      if (step % 3 == 2) {
        other_ctx o = {0x5eed, &sum};
        atomic_store(&sum, 0);
        int n = 1 + step % 9;
        xl_pool_run(p, n, task_b, &o);
        if (atomic_load(&sum) != n * (n + 1) / 2) bsum_wrong++;
        continue;
      }
      int n = 1 + (step * 7) % 37;
      for (int i = 0; i < n; i++) atomic_store(&hits[i], 0);
      step_ctx c = {hits, n, step, &bad};
      xl_pool_run(p, n, task_a, &c);
      for (int i = 0; i < n; i++) {
        int h = atomic_load(&hits[i]);
        if (h == 0) early++;          /* returned before the task ran */
        else if (h != 1) wrong++;     /* ran twice */
      }
    }
    CHECK(wrong == 0 && early == 0 && atomic_load(&bad) == 0 && bsum_wrong == 0,
          "%d threads, 20000 steps of 1-37 tasks: %ld run twice, %ld missing at return, %d out of range, %ld wrong sums",
          nthreads, wrong, early, atomic_load(&bad), bsum_wrong);
    xl_pool_free(p);
  }
  /* a pool of one runs inline */
  xl_pool *p = xl_pool_create(1);
  atomic_int hits[8], bad = 0;
  for (int i = 0; i < 8; i++) atomic_store(&hits[i], 0);
  step_ctx c = {hits, 8, 0, &bad};
  xl_pool_run(p, 8, task_a, &c);
  int all = 1;
  for (int i = 0; i < 8; i++) all &= atomic_load(&hits[i]) == 1;
  CHECK(all && xl_pool_size(p) == 1, "a pool of one runs every task inline");
  xl_pool_free(p);
  return tl_done();
}
