/* sweep_search: the adaptive searches of xl-sweep over a sw_space: a genetic algorithm
 * on one objective (population, elites, binary tournaments, uniform crossover, per-gene
 * mutation clamped to the value lists) and an NSGA-II style multi-objective search on
 * (prefill tok/s, decode tok/s): non-dominated sorting and crowding distance.
 * Both are driven by a seeded PRNG and ask a callback for each individual's fitness, so
 * the same seed and the same answers give the same sequence of settings (that is what
 * makes a resumed run regenerate the trials it already has).
 * Not for: measuring (the callback does that, with its own cache) or files. */
#ifndef XL_SWEEP_SEARCH_H
#define XL_SWEEP_SEARCH_H
#include "sweep/sweep_space.h"
#include <stddef.h>
#include <stdint.h>

enum { SW_OBJ_DECODE = 0, SW_OBJ_PREFILL = 1, SW_OBJ_PARETO = 2 };
const char *sw_objective_name(int obj);
int sw_objective_parse(const char *s);   /* -1 if unknown */

/* What a setting scored; a failed setting scores 0 on both. */
typedef struct {
  double prefill;   /* tok/s */
  double decode;    /* tok/s */
  int ok;
} sw_fit;

/* Measures (or looks up) n settings, one batch: a generation's population (so the
 * driver can interleave their runs). Fills out[0..n). Returns 0, or non-zero to stop the
 * search (interrupted), which the search then returns. */
typedef int (*sw_eval_fn)(void *ctx, const sw_setting *s, size_t n, sw_fit *out);

typedef struct {
  int population;     /* individuals per generation (>= 2) */
  int elites;         /* GA: best individuals copied unchanged (< population) */
  int generations;    /* generations evaluated, the random first one included */
  double mutation;    /* per-gene mutation probability */
  uint64_t seed;
  int objective;      /* GA: SW_OBJ_DECODE or SW_OBJ_PREFILL */
} sw_search_opts;

/* Runs the GA / NSGA-II; returns 0, or the callback's non-zero value. */
int sw_search_ga(const sw_space *sp, const sw_search_opts *o, sw_eval_fn eval, void *ctx);
int sw_search_nsga2(const sw_space *sp, const sw_search_opts *o, sw_eval_fn eval, void *ctx);

/* Non-dominated sorting of n points with two maximized objectives obj[i*2 + {0,1}]:
 * rank[i] = 0 for the first front, 1 for the next, ... */
void sw_nd_sort(const double *obj, size_t n, int *rank);
/* Crowding distance of the m points members[] (one front): the boundary points of each
 * objective get INFINITY, the others the sum over objectives of the normalized gap
 * between their neighbours. */
void sw_crowding(const double *obj, const size_t *members, size_t m, double *dist);

#endif
