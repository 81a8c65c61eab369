/* choose: noise-aware choice among measured settings, shared by xl-sweep (best.json) and
 * xl-merge (the Pareto front and the recommended profiles). Rules:
 *   - On one objective, a row is better than another only where their 95% intervals
 *     separate (or, where the caller supplies one, a paired test says so); otherwise the
 *     two tie: the difference is within the noise.
 *   - A row is never ranked by an objective none of the knobs it differs in can affect
 *     (the settings table's "affects": chunk size cannot change decode speed, so two rows
 *     that differ only in chunk size tie on decode whatever was measured).
 *   - A row dominates another when it is better on some objective and worse on none.
 *   - Of rows that tie on every objective the simpler one stands for them (the front keeps
 *     it, the others are "tied with" it): fewer knobs away from the defaults, then
 *     integer knobs nearer their defaults (by ratio), then the earlier row.
 * Not for: reading files or measuring; values come in as intervals (stats.h). */
#ifndef XL_SWEEP_CHOOSE_H
#define XL_SWEEP_CHOOSE_H
#include "sweep/stats.h"
#include "sweep/sweep_space.h"
#include <stddef.h>

#define CH_MAX_OBJ 16

typedef struct {
  size_t n, nobj;
  const sw_setting *set;          /* [n] each row's setting */
  const st_interval *v;           /* [n * nobj] row i, objective j at v[i * nobj + j] */
  const int *maximize;            /* [nobj] 1: larger is better */
  const unsigned *affects;        /* [nobj] XS_AFFECTS_* that can move the objective; 0: any knob */
  const int *group;               /* [n] rows are compared within their group only; NULL: one group */
  const unsigned char *eligible;  /* [n] NULL: all rows */
  const sw_setting *defaults;     /* the default setting (for simplicity); NULL: table defaults */
  /* optional: a comparison of rows a and b on objective j that replaces the intervals'
   * (e.g. a paired test of quality): +1 a better, -1 worse, 0 tie, 2 use the intervals */
  int (*cmp)(void *ctx, size_t a, size_t b, size_t j);
  void *ctx;
} ch_table;

/* +1 when row a is significantly better than b on objective j, -1 worse, 0 a tie
 * (overlapping intervals, unknown spread, a missing value, or no knob that differs can
 * affect the objective). */
int ch_cmp(const ch_table *t, size_t a, size_t b, size_t j);
/* 1 when a is better than b on some objective and worse on none (both must have every
 * objective). */
int ch_dominates(const ch_table *t, size_t a, size_t b);
/* 1 when a and b tie on every objective. */
int ch_ties(const ch_table *t, size_t a, size_t b);
/* < 0 when a is simpler than b, > 0 when b is (never 0 for a != b: the earlier row wins). */
int ch_simpler(const ch_table *t, size_t a, size_t b);
/* Knobs of s away from the defaults. */
int ch_nondefault(const ch_table *t, size_t a);

/* The front per group: front[i] = 1 for an eligible row with every objective that no row
 * of its group dominates and that does not tie on every objective with a simpler front
 * row; dom[i] = a row dominating i (else -1); tied[i] = the front row i ties with (else
 * -1). Returns the number of front rows. */
size_t ch_front(const ch_table *t, unsigned char *front, long *dom, long *tied);

/* The recommended row of group g among the rows with cand[i] set: the best on objective
 * `speed` (the largest mean); then, of the candidates that tie with it on `speed`, the one
 * better on `quality` (when quality >= 0), then on the other objectives in order, then the
 * simplest. */
typedef struct {
  long row;              /* -1: no candidate */
  long fastest;          /* the candidate with the largest mean speed */
  size_t nties;          /* candidates tying with the fastest on speed (it included) */
  long ties[64];         /* the first of them */
  int significant;       /* 1: the pick is significantly faster than every other candidate */
  long runner_up;        /* the fastest other candidate, -1 when none */
} ch_pick_info;
long ch_pick(const ch_table *t, const unsigned char *cand, int g, size_t speed, long quality, ch_pick_info *info);

#endif
