/* pareto: non-dominated selection over several objectives (each maximized or
 * minimized), computed separately inside groups (one group per context length),
 * and the choice of a recommended setting on a front: the fastest whose quality is
 * within a tolerance of the best quality measured in its group.
 * Values are plain doubles with NaN meaning "not measured": a row missing any
 * objective is never on a front. Not for: reading files (see csvtable.h). */
#ifndef XL_PARETO_H
#define XL_PARETO_H
#include "io/csvtable.h"
#include <stddef.h>

#define PARETO_MAX_OBJ 16

typedef struct {
  char name[64];   /* column name */
  int maximize;    /* 1 = larger is better, 0 = smaller is better */
} pareto_obj;

/* Parses "a:max,b:min,c" (direction defaults to max) into objs[max].
 * Returns the count, or -1 with a message in err (empty name, bad direction,
 * duplicate, too many). */
int pareto_parse_objectives(const char *spec, pareto_obj *objs, int max, char *err, size_t errlen);

/* 1 if a dominates b: a is at least as good on all k objectives and strictly
 * better on one. Rows equal on every objective do not dominate each other.
 * Any NaN makes the answer 0. */
int pareto_dominates(const double *a, const double *b, size_t k, const int *maximize);

/* Marks front[i] = 1 for each row i that is eligible (eligible == NULL: all rows),
 * has all k objectives (vals[i*k .. i*k+k-1] not NaN), and is not dominated by any
 * other such row of the same group (group == NULL: one group). Returns the number
 * of rows marked. O(n^2 k), fine for the hundreds of trials of a sweep. */
size_t pareto_front(const double *vals, size_t n, size_t k, const int *maximize,
                    const int *group, const unsigned char *eligible, unsigned char *front);

/* The outcome of pareto_recommend. */
typedef struct {
  long row;            /* chosen row, -1 if the group's front is empty */
  double best_quality; /* best quality measured among eligible rows of the group; NaN if none */
  int within;          /* 1 if the choice met the tolerance; 0 if it fell back (see below) */
  size_t ncand;        /* front rows within the tolerance */
  size_t nfront;       /* front rows of the group */
} pareto_pick;

/* Chooses the recommended row of group g (group == NULL: all rows) among the rows
 * with front[i] set: the largest speed among those whose quality is within tol of
 * the best quality (max) measured over the group's eligible rows (ties: higher
 * quality, then the earlier row). quality == NULL or no measured quality in the
 * group: simply the fastest front row. If no front row is within the tolerance,
 * falls back to the front row with the best quality (within = 0).
 * Returns out->row. */
long pareto_recommend(const double *speed, const double *quality, const unsigned char *front,
                      const unsigned char *eligible, const int *group, int g, size_t n,
                      double tol, pareto_pick *out);

/* ---- context groups: a front is computed per prompt, so both the merge and the plots
 * group a trial table the same way ---- */

/* The rows of a trial table that share a prompt length (prompt_tokens) and prompt file. */
typedef struct {
  double ctx;          /* prompt_tokens, NaN when missing or not a number */
  const char *pfile;   /* prompt_file, "" when missing (points into the table) */
  size_t first;        /* its first row */
} pareto_group;

/* Groups the rows i of t with eligible[i] set (eligible NULL: every row): group[i] gets
 * the index of its group in groups (first-seen order), -1 for an ineligible row.
 * Missing lengths group together. groups needs room for t->nrows. Returns the count. */
size_t pareto_group_table(const csvt *t, const unsigned char *eligible, int *group, pareto_group *groups);

/* The quality measure of a merged trial table, as the merge and the plots choose it:
 * avg_logprob (the internal judge's) when some row has a value, else overall (the
 * external judge's), else NULL. */
const char *pareto_quality_column(const csvt *t);

/* The half width of the 95% interval of column col (a speed) in row i of a trial table:
 * its col_ci95 cell, else col_sd with the count (<what>_n, else repeats) by Student's t;
 * NaN when unknown (a single run, or an older table). */
double pareto_ci95(const csvt *t, size_t row, const char *col);

/* order[0..ng) gets the group indices in report order: by context length (missing
 * last), then prompt file, then first row. */
void pareto_group_order(const pareto_group *groups, size_t ng, size_t *order);

#endif
