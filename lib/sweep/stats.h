/* stats: the small statistics behind noise-aware measurement: mean, standard deviation and
 * a 95% confidence interval (Student's t) of repeated timings, and the comparison of two
 * intervals or of paired differences that decides whether a difference is real.
 * Not for: choosing settings (choose.h) or reading files. */
#ifndef XL_SWEEP_STATS_H
#define XL_SWEEP_STATS_H
#include <stddef.h>

/* The two-sided 95% critical value of Student's t with df degrees of freedom (df >= 1;
 * exact table to 30, then an expansion good to 1e-4; 1.96 in the limit). NaN for df < 1. */
double st_t95(int df);

typedef struct {
  int n;          /* finite values */
  double mean;    /* NaN when n == 0 */
  double sd;      /* sample standard deviation; NaN when n < 2 */
  double ci95;    /* half width of the 95% interval of the mean: t95(n-1) * sd / sqrt(n); NaN when n < 2 */
} st_summary;

/* Summarizes v[0..n) (non-finite values skipped). */
st_summary st_summarize(const double *v, size_t n);

/* A measured value and its 95% interval [lo, hi]; lo = hi = mean when the spread is
 * known to be zero; both NaN when the spread is unknown (a single run). */
typedef struct { double mean, lo, hi; } st_interval;
st_interval st_interval_of(double mean, double ci95);

/* How a compares with b, larger being better: +1 when a's interval lies entirely above b's,
 * -1 when entirely below, 0 when they overlap or a spread is unknown (a tie: the
 * difference is within the noise). Equal means always tie. */
int st_cmp_intervals(st_interval a, st_interval b);

/* Paired differences a[i] - b[i] over the i where both are finite: their summary, and the
 * verdict: +1 when the 95% interval of the mean difference lies above 0, -1 below, 0
 * otherwise (all-zero differences: 0 with sd 0). */
st_summary st_paired(const double *a, const double *b, size_t n, int *verdict);

/* Two measurements interleaved in one batch: their timed runs ran round by round, run k of
 * each in round k, so machine drift hits both alike. The paired verdict on a[k] - b[k]
 * (as st_paired), 2 when they cannot be paired (not the same batch, counts differ, < 2 runs). */
int st_cmp_rounds(const double *a, size_t na, long batch_a, const double *b, size_t nb, long batch_b);

#endif
