/* choose: noise-aware comparisons, fronts and picks. See choose.h. */
#include "sweep/choose.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const st_interval *val(const ch_table *t, size_t i, size_t j) { return &t->v[i * t->nobj + j]; }

static int usable(const ch_table *t, size_t i) {
  if (t->eligible && !t->eligible[i]) return 0;
  for (size_t j = 0; j < t->nobj; j++)
    if (!isfinite(val(t, i, j)->mean)) return 0;
  return 1;
}

int ch_cmp(const ch_table *t, size_t a, size_t b, size_t j) {
  if (a == b) return 0;
  /* never ranked by a measurement none of the differing knobs can move */
  if (t->affects && t->affects[j] && !sw_can_differ(&t->set[a], &t->set[b], t->affects[j])) return 0;
  if (t->cmp) {
    int c = t->cmp(t->ctx, a, b, j);
    if (c != 2) return c;
  }
  int c = st_cmp_intervals(*val(t, a, j), *val(t, b, j));
  return t->maximize[j] ? c : -c;
}

int ch_dominates(const ch_table *t, size_t a, size_t b) {
  int better = 0;
  for (size_t j = 0; j < t->nobj; j++) {
    if (!isfinite(val(t, a, j)->mean) || !isfinite(val(t, b, j)->mean)) return 0;
    int c = ch_cmp(t, a, b, j);
    if (c < 0) return 0;
    if (c > 0) better = 1;
  }
  return better;
}

int ch_ties(const ch_table *t, size_t a, size_t b) {
  for (size_t j = 0; j < t->nobj; j++)
    if (ch_cmp(t, a, b, j)) return 0;
  return 1;
}

static const sw_setting *defaults_of(const ch_table *t, sw_setting *buf) {
  if (t->defaults) return t->defaults;
  sw_setting_defaults(buf, 0);
  return buf;
}

int ch_nondefault(const ch_table *t, size_t a) {
  sw_setting d;
  const sw_setting *def = defaults_of(t, &d);
  int n = 0;
  for (int k = 0; k < SW_NKNOBS; k++) {
    const char *v = t->set[a].v[k];
    if (!v[0] || !strcmp(v, def->v[k])) continue;
    /* the recurrent backend's chunk size 1 is part of choosing that backend, not a knob of its own */
    if (k == XS_CHUNK_SIZE && !strcmp(t->set[a].v[XS_BACKEND], "recurrent")) continue;
    n++;
  }
  return n;
}

/* How far the integer knobs of a are from their defaults: the sum of |log2(v / default)|. */
static double distance(const ch_table *t, size_t a) {
  sw_setting d;
  const sw_setting *def = defaults_of(t, &d);
  double s = 0;
  for (int k = 0; k < SW_NKNOBS; k++) {
    if (!sw_knob_is_int(k) || !t->set[a].v[k][0]) continue;
    if (k == XS_CHUNK_SIZE && !strcmp(t->set[a].v[XS_BACKEND], "recurrent")) continue;
    double v = atof(t->set[a].v[k]), d0 = atof(def->v[k]);
    if (v > 0 && d0 > 0) s += fabs(log2(v / d0));
  }
  return s;
}

int ch_simpler(const ch_table *t, size_t a, size_t b) {
  int na = ch_nondefault(t, a), nb = ch_nondefault(t, b);
  if (na != nb) return na < nb ? -1 : 1;
  double da = distance(t, a), db = distance(t, b);
  if (da != db) return da < db ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

static int same_group(const ch_table *t, size_t a, size_t b) { return !t->group || t->group[a] == t->group[b]; }

/* qsort has no context: the table being sorted. */
static const ch_table *sort_t;
static int by_simplicity(const void *x, const void *y) {
  return ch_simpler(sort_t, *(const size_t *)x, *(const size_t *)y);
}

size_t ch_front(const ch_table *t, unsigned char *front, long *dom, long *tied) {
  size_t n = t->n, count = 0, m = 0;
  size_t *cand = xl_malloc((n ? n : 1) * sizeof *cand);
  for (size_t i = 0; i < n; i++) {
    front[i] = 0;
    if (dom) dom[i] = -1;
    if (tied) tied[i] = -1;
    if (!usable(t, i)) continue;
    long by = -1;
    for (size_t o = 0; o < n && by < 0; o++)
      if (o != i && usable(t, o) && same_group(t, o, i) && ch_dominates(t, o, i)) by = (long)o;
    if (dom) dom[i] = by;
    if (by < 0) cand[m++] = i;
  }
  /* simplest first: a row tying on everything with a simpler kept row is represented by it */
  sort_t = t;
  qsort(cand, m, sizeof *cand, by_simplicity);
  for (size_t q = 0; q < m; q++) {
    size_t i = cand[q];
    long rep = -1;
    for (size_t p = 0; p < q && rep < 0; p++)
      if (front[cand[p]] && same_group(t, cand[p], i) && ch_ties(t, cand[p], i)) rep = (long)cand[p];
    if (rep >= 0) {
      if (tied) tied[i] = rep;
      continue;
    }
    front[i] = 1;
    count++;
  }
  free(cand);
  return count;
}

/* Whether candidate r is preferred over c, which tie on speed. */
static int preferred(const ch_table *t, size_t r, size_t c, size_t speed, long quality) {
  if (quality >= 0) {
    int q = ch_cmp(t, r, c, (size_t)quality);
    if (q) return q > 0;
  }
  for (size_t j = 0; j < t->nobj; j++) {
    if (j == speed || (long)j == quality) continue;
    int x = ch_cmp(t, r, c, j);
    if (x) return x > 0;
  }
  return ch_simpler(t, r, c) < 0;
}

long ch_pick(const ch_table *t, const unsigned char *cand, int g, size_t speed, long quality, ch_pick_info *info) {
  ch_pick_info pi;
  memset(&pi, 0, sizeof pi);
  pi.row = pi.fastest = pi.runner_up = -1;
  int dir = t->maximize[speed] ? 1 : -1;
  for (size_t i = 0; i < t->n; i++) {
    if (!cand[i] || (t->group && t->group[i] != g) || !isfinite(val(t, i, speed)->mean)) continue;
    if (pi.fastest < 0 || dir * val(t, i, speed)->mean > dir * val(t, (size_t)pi.fastest, speed)->mean) pi.fastest = (long)i;
  }
  if (pi.fastest < 0) {
    if (info) *info = pi;
    return -1;
  }
  /* the candidates that tie with the fastest on speed, simplest first */
  size_t *tie = xl_malloc(t->n * sizeof *tie), m = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (!cand[i] || (t->group && t->group[i] != g) || !isfinite(val(t, i, speed)->mean)) continue;
    if (ch_cmp(t, i, (size_t)pi.fastest, speed) >= 0) tie[m++] = i;
  }
  sort_t = t;
  qsort(tie, m, sizeof *tie, by_simplicity);
  size_t best = tie[0];
  for (size_t q = 1; q < m; q++)
    if (preferred(t, tie[q], best, speed, quality)) best = tie[q];
  pi.row = (long)best;
  pi.nties = m;
  for (size_t q = 0; q < m && q < 64; q++) pi.ties[q] = (long)tie[q];
  free(tie);
  /* significant: faster than every other candidate beyond the noise */
  pi.significant = 1;
  for (size_t i = 0; i < t->n; i++) {
    if (!cand[i] || (long)i == pi.row || (t->group && t->group[i] != g) || !isfinite(val(t, i, speed)->mean)) continue;
    if (pi.runner_up < 0 || dir * val(t, i, speed)->mean > dir * val(t, (size_t)pi.runner_up, speed)->mean) pi.runner_up = (long)i;
    if (ch_cmp(t, (size_t)pi.row, i, speed) <= 0) pi.significant = 0;
  }
  if (pi.runner_up < 0) pi.significant = 0;
  if (info) *info = pi;
  return pi.row;
}
