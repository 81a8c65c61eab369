/* pool: a fixed set of worker threads that run the tasks of one parallel step (the head
 * bands of a layer, the row bands of a matvec) and return when all are done.
 * The calling thread is worker 0 and takes tasks too, so a pool of N uses N cores.
 * Workers spin briefly between steps (decode issues thousands of tiny steps per second,
 * where a sleep/wake per step would cost more than the work), then sleep.
 * Not for: long-lived background jobs (telemetry has its own thread). */
#ifndef XL_POOL_H
#define XL_POOL_H

typedef struct xl_pool xl_pool;
typedef void (*xl_task_fn)(void *ctx, int task, int worker);

/* nthreads >= 1 (1: everything runs inline on the caller). */
xl_pool *xl_pool_create(int nthreads);
void xl_pool_free(xl_pool *p);
int xl_pool_size(const xl_pool *p);
/* Runs fn(ctx, t, worker) for t in [0, ntasks); returns when all have finished. */
void xl_pool_run(xl_pool *p, int ntasks, xl_task_fn fn, void *ctx);

#endif
