/* fanout: N jobs over K threads with a shared next-job counter. See fanout.h. */
#include "base/fanout.h"
#include "base/util.h"
#include <pthread.h>
#include <stdlib.h>

typedef struct {
  size_t njobs, next, ran;
  int stop;
  xl_fanout_job job;
  void *ctx;
  pthread_mutex_t mu;
} fanout;

typedef struct {
  fanout *f;
  size_t worker;
} seat;

static void *work(void *arg) {
  seat *s = arg;
  fanout *f = s->f;
  for (;;) {
    pthread_mutex_lock(&f->mu);
    if (f->stop || f->next >= f->njobs) {
      pthread_mutex_unlock(&f->mu);
      return NULL;
    }
    size_t i = f->next++;
    f->ran++;
    pthread_mutex_unlock(&f->mu);
    if (f->job(f->ctx, i, s->worker)) {
      pthread_mutex_lock(&f->mu);
      f->stop = 1;
      pthread_mutex_unlock(&f->mu);
    }
  }
}

size_t xl_fanout_workers(size_t njobs, size_t threads) {
  if (!njobs) return 0;
  if (!threads) threads = 1;
  return threads < njobs ? threads : njobs;
}

size_t xl_fanout(size_t njobs, size_t threads, xl_fanout_job job, void *ctx) {
  size_t nw = xl_fanout_workers(njobs, threads);
  if (!nw) return 0;
  fanout f = {.njobs = njobs, .job = job, .ctx = ctx};
  pthread_mutex_init(&f.mu, NULL);
  seat *seats = xl_calloc(nw, sizeof *seats);
  pthread_t *th = xl_calloc(nw, sizeof *th);
  size_t started = 1;   /* seat 0 is the calling thread */
  for (size_t k = 0; k < nw; k++) seats[k] = (seat){&f, k};
  while (started < nw && !pthread_create(&th[started], NULL, work, &seats[started])) started++;
  work(&seats[0]);
  for (size_t k = 1; k < started; k++) pthread_join(th[k], NULL);
  pthread_mutex_destroy(&f.mu);
  free(th);
  free(seats);
  return f.ran;
}
