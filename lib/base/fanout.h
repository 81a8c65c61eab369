/* fanout: runs N independent jobs over up to K threads, each job exactly once, handed out
 * in index order as threads come free. The calling thread is one of the K, so K = 1 runs
 * everything in order on the caller, with no thread started.
 * For: tools that run slow, independent jobs at once (xl-save's generations, xl-judge's
 * HTTP requests). Not for: the engine's per-token work (engine/pool.h is built for that).
 *
 * A job returns 0 to go on, non-zero to stop handing out jobs (those already running
 * finish). Jobs share ctx; they take their own locks for whatever they share. worker
 * (0 .. xl_fanout_workers() - 1) names the thread running the job, so per-thread state
 * (an HTTP handle, say) can live in an array indexed by it. */
#ifndef XL_FANOUT_H
#define XL_FANOUT_H
#include <stddef.h>

typedef int (*xl_fanout_job)(void *ctx, size_t job, size_t worker);

/* How many threads xl_fanout(njobs, threads, ...) uses: min(threads, njobs), at least 1
 * when there is a job. */
size_t xl_fanout_workers(size_t njobs, size_t threads);

/* Runs job(ctx, i, worker) for i = 0 .. njobs-1 and returns when all are done (or a job
 * asked to stop). A thread that cannot be started is done without: its share runs on the
 * others. Returns how many jobs ran. */
size_t xl_fanout(size_t njobs, size_t threads, xl_fanout_job job, void *ctx);

#endif
