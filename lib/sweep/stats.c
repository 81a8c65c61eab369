/* stats: means, intervals and significance of repeated measurements. See stats.h. */
#include "sweep/stats.h"
#include <math.h>

double st_t95(int df) {
  static const double t[31] = {NAN,    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
                               2.2010, 2.1788,  2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796,
                               2.0739, 2.0687,  2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423};
  if (df < 1) return NAN;
  if (df <= 30) return t[df];
  /* Cornish-Fisher expansion of t around the normal quantile z = 1.959964 */
  double z = 1.959963985, z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z, n = df;
  return z + (z3 + z) / (4 * n) + (5 * z5 + 16 * z3 + 3 * z) / (96 * n * n) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * n * n * n);
}

st_summary st_summarize(const double *v, size_t n) {
  st_summary s = {0, NAN, NAN, NAN};
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(v[i])) sum += v[i], s.n++;
  if (!s.n) return s;
  s.mean = sum / s.n;
  if (s.n < 2) return s;
  double ss = 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(v[i])) ss += (v[i] - s.mean) * (v[i] - s.mean);
  s.sd = sqrt(ss / (s.n - 1));
  s.ci95 = st_t95(s.n - 1) * s.sd / sqrt((double)s.n);
  return s;
}

st_interval st_interval_of(double mean, double ci95) {
  st_interval r = {mean, NAN, NAN};
  if (isfinite(mean) && isfinite(ci95) && ci95 >= 0) r.lo = mean - ci95, r.hi = mean + ci95;
  return r;
}

int st_cmp_intervals(st_interval a, st_interval b) {
  if (!isfinite(a.mean) || !isfinite(b.mean) || a.mean == b.mean) return 0;
  if (!isfinite(a.lo) || !isfinite(b.lo)) return 0;   /* spread unknown: cannot tell */
  if (a.lo > b.hi) return 1;
  if (a.hi < b.lo) return -1;
  return 0;
}

st_summary st_paired(const double *a, const double *b, size_t n, int *verdict) {
  double d[4096];
  size_t k = 0;
  for (size_t i = 0; i < n && k < sizeof d / sizeof *d; i++)
    if (isfinite(a[i]) && isfinite(b[i])) d[k++] = a[i] - b[i];
  st_summary s = st_summarize(d, k);
  int v = 0;
  if (s.n >= 2 && isfinite(s.ci95) && s.sd > 0) {
    if (s.mean - s.ci95 > 0) v = 1;
    else if (s.mean + s.ci95 < 0) v = -1;
  } else if (s.n >= 2 && s.sd == 0 && s.mean != 0) {
    v = s.mean > 0 ? 1 : -1;   /* the same nonzero difference every time: no noise at all */
  }
  if (verdict) *verdict = v;
  return s;
}

int st_cmp_rounds(const double *a, size_t na, long batch_a, const double *b, size_t nb, long batch_b) {
  if (batch_a <= 0 || batch_a != batch_b || na != nb || na < 2) return 2;
  int v;
  st_paired(a, b, na, &v);
  return v;
}
