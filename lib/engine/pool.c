/* pool: see pool.h. A generation number tells sleeping or spinning workers that a new
 * step has been posted. Tasks are claimed from one 64-bit word holding (generation, next
 * index), so a worker still finishing the previous step can never claim a task of the next
 * one with stale fn/ctx/ntasks, or count a task into the next step's `done`.
 * Waiting is tiered: a short busy spin with the CPU's pause hint (a decode step posts the
 * next band within microseconds), then sched_yield (lets other processes run on a loaded
 * machine), then sleep on the condition variable. */
#include "engine/pool.h"
#include "base/util.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

struct xl_pool {
  int n;
  pthread_t *threads;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  atomic_uint gen;          /* bumped for every posted step, after `next` is set for it */
  _Atomic uint64_t next;    /* (generation << 32) | next task index to claim */
  atomic_int done;          /* tasks finished in this step */
  atomic_int quit;
  atomic_int ntasks;        /* read by workers racing the next post: the claim CAS settles it */
  xl_task_fn fn;
  void *ctx;
};

typedef struct { xl_pool *p; int id; } worker_arg;

/* Runs tasks of step `gen` until none is left; returns at once if the pool has moved on. */
static void run_tasks(xl_pool *p, int id, unsigned gen) {
  for (;;) {
    uint64_t v = atomic_load(&p->next);
    do {
      if ((unsigned)(v >> 32) != gen || (int)(uint32_t)v >= p->ntasks) return;
    } while (!atomic_compare_exchange_weak(&p->next, &v, v + 1));
    p->fn(p->ctx, (int)(uint32_t)v, id);
    atomic_fetch_add(&p->done, 1);
  }
}

/* ~0.5 ms of pause-spinning covers the gaps inside a decode step; past that a worker yields
 * a little and then sleeps, so an idle pool does not take CPU from OpenBLAS's threads while
 * the prefill GEMMs run (a long yield-spin measurably slowed prefill on 2 cores). */
#ifndef XL_SPIN_ROUNDS
#define XL_SPIN_ROUNDS 4200
#endif
enum { PAUSE_ROUNDS = 4000, SPIN_ROUNDS = XL_SPIN_ROUNDS };

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void *worker_main(void *arg) {
  worker_arg a = *(worker_arg *)arg;
  free(arg);
  xl_pool *p = a.p;
  unsigned seen = 0;
  for (;;) {
    int spins = 0;
    while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) {
      if (++spins < PAUSE_ROUNDS) { cpu_relax(); continue; }
      if (spins < SPIN_ROUNDS) { sched_yield(); continue; }
      pthread_mutex_lock(&p->mu);
      while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->mu);
      pthread_mutex_unlock(&p->mu);
    }
    if (atomic_load(&p->quit)) return NULL;
    seen = atomic_load(&p->gen);
    run_tasks(p, a.id, seen);
  }
}

xl_pool *xl_pool_create(int nthreads) {
  xl_pool *p = xl_calloc(1, sizeof *p);
  p->n = nthreads < 1 ? 1 : nthreads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  if (p->n > 1) {
    p->threads = xl_calloc((size_t)p->n, sizeof *p->threads);
    for (int i = 1; i < p->n; i++) {
      worker_arg *a = xl_malloc(sizeof *a);
      a->p = p;
      a->id = i;
      if (pthread_create(&p->threads[i], NULL, worker_main, a)) xl_die("cannot start worker thread %d", i);
    }
  }
  return p;
}

int xl_pool_size(const xl_pool *p) { return p ? p->n : 1; }

void xl_pool_run(xl_pool *p, int ntasks, xl_task_fn fn, void *ctx) {
  if (!p || p->n == 1 || ntasks <= 1) {
    for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
    return;
  }
  /* Only this thread posts steps, and every claimed task of the previous one has finished.
   * Order matters: first move `next` to the new generation, which makes any late claim of
   * the old one fail; only then change ntasks/fn/ctx/done (so nobody who can still claim
   * sees them); then publish the generation, which workers read before claiming. */
  unsigned gen = atomic_load(&p->gen) + 1;
  atomic_store(&p->next, (uint64_t)gen << 32);
  p->fn = fn;
  p->ctx = ctx;
  atomic_store(&p->ntasks, ntasks);
  atomic_store(&p->done, 0);
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->gen, gen);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  run_tasks(p, 0, gen);
  for (int spins = 0; atomic_load(&p->done) < ntasks; spins++) {
    if (spins < PAUSE_ROUNDS) cpu_relax();
    else sched_yield();
  }
}

void xl_pool_free(xl_pool *p) {
  if (!p) return;
  if (p->n > 1) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
  }
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  free(p->threads);
  free(p);
}
