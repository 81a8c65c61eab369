/* test_fanout: the fan-out helper (base/fanout.h) runs every job exactly once over the
 * threads asked for, names workers within range, runs jobs in order on the caller alone
 * for one thread, and stops handing out jobs when one asks it to (the jobs run are then a
 * prefix: they are handed out in index order). */
#include "testlib.h"
#include "base/fanout.h"
#include "base/util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

typedef struct {
  size_t njobs, nworkers;
  atomic_int *runs;         /* [njobs] times each job ran */
  atomic_int bad_worker;    /* a worker index out of range was seen */
  atomic_int running, peak; /* jobs running at once, and the most seen */
  atomic_size_t order_errors;
  pthread_mutex_t mu;
  size_t last_started;      /* the highest job started so far, +1 */
  pthread_t caller;
  atomic_int on_caller, off_caller;
  long stop_at;             /* job index that asks to stop, -1 none */
} probe;

static void nap(long us) {
  struct timespec ts = {0, us * 1000};
  nanosleep(&ts, NULL);
}

static int job(void *ctx, size_t i, size_t worker) {
  probe *p = ctx;
  atomic_fetch_add(&p->runs[i], 1);
  if (worker >= p->nworkers) atomic_store(&p->bad_worker, 1);
  if (pthread_equal(pthread_self(), p->caller)) atomic_fetch_add(&p->on_caller, 1);
  else atomic_fetch_add(&p->off_caller, 1);
  pthread_mutex_lock(&p->mu);
  if (i + 1 < p->last_started) atomic_fetch_add(&p->order_errors, 1);   /* handed out late */
  if (i + 1 > p->last_started) p->last_started = i + 1;
  pthread_mutex_unlock(&p->mu);
  int now = atomic_fetch_add(&p->running, 1) + 1, peak = atomic_load(&p->peak);
  while (now > peak && !atomic_compare_exchange_weak(&p->peak, &peak, now)) {}
  nap(2000);   /* long enough for the other threads to pick up jobs meanwhile */
  atomic_fetch_sub(&p->running, 1);
  return p->stop_at >= 0 && (long)i == p->stop_at;
}

static void run(size_t njobs, size_t threads, long stop_at, const char *what) {
  probe p = {.njobs = njobs, .nworkers = xl_fanout_workers(njobs, threads), .stop_at = stop_at};
  p.runs = xl_calloc(njobs ? njobs : 1, sizeof *p.runs);
  pthread_mutex_init(&p.mu, NULL);
  p.caller = pthread_self();
  size_t ran = xl_fanout(njobs, threads, job, &p);
  size_t once = 0, twice = 0;
  for (size_t i = 0; i < njobs; i++) {
    once += atomic_load(&p.runs[i]) == 1;
    twice += atomic_load(&p.runs[i]) > 1;
  }
  if (stop_at < 0) {
    CHECK(ran == njobs && once == njobs && !twice, "%s: every job ran once (%zu of %zu)", what, once, njobs);
  } else {
    /* no job is handed out once the stopping one has returned; those handed out before
     * (by other workers while it ran) still run, so the jobs run are a prefix */
    size_t prefix = 0;
    while (prefix < njobs && atomic_load(&p.runs[prefix]) == 1) prefix++;
    int exact = p.nworkers == 1 ? ran == (size_t)stop_at + 1 : ran > (size_t)stop_at && ran < njobs;
    CHECK(exact && prefix == ran && once == ran && !twice, "%s: stopped after job %ld (%zu ran, %zu workers)", what,
          stop_at, ran, p.nworkers);
  }
  CHECK(!atomic_load(&p.bad_worker), "%s: worker indices below %zu", what, p.nworkers);
  if (p.nworkers == 1) {
    /* (with several workers, a job handed out first may still enter the callback later) */
    CHECK(atomic_load(&p.order_errors) == 0, "%s: jobs run in index order", what);
    CHECK(atomic_load(&p.off_caller) == 0, "%s: one worker runs everything on the caller", what);
  } else if (stop_at < 0) {
    CHECK(atomic_load(&p.peak) > 1 && atomic_load(&p.peak) <= (int)p.nworkers && atomic_load(&p.on_caller) > 0,
          "%s: up to %zu at once (peak %d), the caller among them", what, p.nworkers, atomic_load(&p.peak));
  }
  pthread_mutex_destroy(&p.mu);
  free(p.runs);
}

int main(void) {
  CHECK(xl_fanout_workers(0, 4) == 0 && xl_fanout_workers(3, 8) == 3 && xl_fanout_workers(10, 4) == 4 &&
        xl_fanout_workers(5, 0) == 1, "worker count is min(threads, jobs), at least one for a job");
  CHECK(xl_fanout(0, 4, job, NULL) == 0, "no jobs: nothing runs");
  run(1, 1, -1, "1 job, 1 thread");
  run(17, 1, -1, "17 jobs, 1 thread");
  run(40, 4, -1, "40 jobs, 4 threads");
  run(3, 16, -1, "3 jobs, 16 threads");
  run(30, 1, 5, "stop at job 5 of 30, 1 thread");
  run(60, 4, 10, "stop at job 10 of 60, 4 threads");
  return tl_done();
}
