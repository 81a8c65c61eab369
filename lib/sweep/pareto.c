/* pareto: multi-objective front per group and the recommended pick. See pareto.h. */
#include "sweep/pareto.h"
#include "sweep/stats.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

int pareto_parse_objectives(const char *spec, pareto_obj *objs, int max, char *err, size_t errlen) {
  int n = 0;
  const char *p = spec;
  if (!p || !*p) { snprintf(err, errlen, "empty objective list"); return -1; }
  for (;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *colon = memchr(p, ':', len);
    size_t nlen = colon ? (size_t)(colon - p) : len;
    if (nlen == 0 || nlen >= sizeof objs[0].name) {
      snprintf(err, errlen, "objective %d: empty or too long name", n + 1);
      return -1;
    }
    if (n == max) { snprintf(err, errlen, "too many objectives (at most %d)", max); return -1; }
    pareto_obj *o = &objs[n];
    memcpy(o->name, p, nlen);
    o->name[nlen] = 0;
    o->maximize = 1;
    if (colon) {
      size_t dlen = len - nlen - 1;
      const char *d = colon + 1;
      if (dlen == 3 && !memcmp(d, "max", 3)) o->maximize = 1;
      else if (dlen == 3 && !memcmp(d, "min", 3)) o->maximize = 0;
      else {
        snprintf(err, errlen, "objective '%s': direction must be max or min", o->name);
        return -1;
      }
    }
    for (int j = 0; j < n; j++)
      if (!strcmp(objs[j].name, o->name)) {
        snprintf(err, errlen, "objective '%s' given twice", o->name);
        return -1;
      }
    n++;
    if (!end) break;
    p = end + 1;
  }
  return n;
}

int pareto_dominates(const double *a, const double *b, size_t k, const int *maximize) {
  int strictly = 0;
  for (size_t j = 0; j < k; j++) {
    if (isnan(a[j]) || isnan(b[j])) return 0;
    /* Compare as "goodness": flip the sign of minimized objectives. */
    double ga = maximize[j] ? a[j] : -a[j];
    double gb = maximize[j] ? b[j] : -b[j];
    if (ga < gb) return 0;
    if (ga > gb) strictly = 1;
  }
  return strictly;
}

static int complete(const double *v, size_t k) {
  for (size_t j = 0; j < k; j++)
    if (isnan(v[j])) return 0;
  return 1;
}

size_t pareto_front(const double *vals, size_t n, size_t k, const int *maximize,
                    const int *group, const unsigned char *eligible, unsigned char *front) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    front[i] = 0;
    if ((eligible && !eligible[i]) || !complete(vals + i * k, k)) continue;
    int dominated = 0;
    for (size_t o = 0; o < n && !dominated; o++) {
      if (o == i || (eligible && !eligible[o])) continue;
      if (group && group[o] != group[i]) continue;
      if (pareto_dominates(vals + o * k, vals + i * k, k, maximize)) dominated = 1;
    }
    if (!dominated) { front[i] = 1; count++; }
  }
  return count;
}

long pareto_recommend(const double *speed, const double *quality, const unsigned char *front,
                      const unsigned char *eligible, const int *group, int g, size_t n,
                      double tol, pareto_pick *out) {
  pareto_pick pk = {.row = -1, .best_quality = NAN, .within = 1};
  for (size_t i = 0; i < n; i++) {
    if (group && group[i] != g) continue;
    if (front[i]) pk.nfront++;
    if (!quality || (eligible && !eligible[i]) || isnan(quality[i])) continue;
    if (isnan(pk.best_quality) || quality[i] > pk.best_quality) pk.best_quality = quality[i];
  }
  int use_q = !isnan(pk.best_quality);
  /* A little slack so that a value printed and re-read still counts as within. */
  double floor_q = use_q ? pk.best_quality - tol - 1e-12 * (1 + fabs(pk.best_quality)) : 0;
  for (size_t i = 0; i < n; i++) {
    if ((group && group[i] != g) || !front[i] || isnan(speed[i])) continue;
    if (use_q && (isnan(quality[i]) || quality[i] < floor_q)) continue;
    pk.ncand++;
    if (pk.row < 0 || speed[i] > speed[pk.row] ||
        (speed[i] == speed[pk.row] && use_q && quality[i] > quality[pk.row]))
      pk.row = (long)i;
  }
  if (pk.row < 0 && use_q) {
    /* Nothing fast enough is close enough in quality: keep the best quality instead. */
    pk.within = 0;
    for (size_t i = 0; i < n; i++) {
      if ((group && group[i] != g) || !front[i] || isnan(quality[i])) continue;
      if (pk.row < 0 || quality[i] > quality[pk.row] ||
          (quality[i] == quality[pk.row] && !isnan(speed[i]) &&
           (isnan(speed[pk.row]) || speed[i] > speed[pk.row])))
        pk.row = (long)i;
    }
  }
  if (out) *out = pk;
  return pk.row;
}

size_t pareto_group_table(const csvt *t, const unsigned char *eligible, int *group, pareto_group *groups) {
  int cctx = csvt_col(t, "prompt_tokens"), cpf = csvt_col(t, "prompt_file");
  size_t ng = 0;
  for (size_t i = 0; i < t->nrows; i++) {
    group[i] = -1;
    if (eligible && !eligible[i]) continue;
    double ctx;
    if (csvt_num(t, i, cctx, &ctx)) ctx = NAN;
    const char *pf = csvt_get(t, i, cpf);
    size_t g = 0;
    while (g < ng && !(((isnan(ctx) && isnan(groups[g].ctx)) || ctx == groups[g].ctx) && !strcmp(pf, groups[g].pfile))) g++;
    if (g == ng) groups[ng++] = (pareto_group){.ctx = ctx, .pfile = pf, .first = i};
    group[i] = (int)g;
  }
  return ng;
}

static int has_values(const csvt *t, int col) {
  double x;
  for (size_t i = 0; col >= 0 && i < t->nrows; i++)
    if (!csvt_num(t, i, col, &x)) return 1;
  return 0;
}

const char *pareto_quality_column(const csvt *t) {
  static const char *const cols[] = {"avg_logprob", "overall"};
  for (int k = 0; k < 2; k++)
    if (has_values(t, csvt_col(t, cols[k]))) return cols[k];
  return NULL;
}

static int group_cmp(const pareto_group *a, const pareto_group *b) {
  if (isnan(a->ctx) != isnan(b->ctx)) return isnan(a->ctx) ? 1 : -1;
  if (!isnan(a->ctx) && a->ctx != b->ctx) return a->ctx < b->ctx ? -1 : 1;
  int c = strcmp(a->pfile, b->pfile);
  if (c) return c;
  return a->first < b->first ? -1 : a->first > b->first;
}

void pareto_group_order(const pareto_group *groups, size_t ng, size_t *order) {
  for (size_t g = 0; g < ng; g++) order[g] = g;
  for (size_t a = 1; a < ng; a++)   /* insertion sort: a handful of groups */
    for (size_t b = a; b > 0 && group_cmp(&groups[order[b]], &groups[order[b - 1]]) < 0; b--) {
      size_t x = order[b];
      order[b] = order[b - 1];
      order[b - 1] = x;
    }
}

double pareto_ci95(const csvt *t, size_t row, const char *col) {
  double ci, sd, n = NAN;
  char k[96];
  snprintf(k, sizeof k, "%s_ci95", col);
  if (!csvt_num(t, row, csvt_col(t, k), &ci)) return ci;
  snprintf(k, sizeof k, "%s_sd", col);
  if (csvt_num(t, row, csvt_col(t, k), &sd)) return NAN;
  snprintf(k, sizeof k, "%.*s_n", (int)strcspn(col, "_"), col);   /* prefill_tok_s -> prefill_n */
  if (csvt_num(t, row, csvt_col(t, k), &n)) csvt_num(t, row, csvt_col(t, "repeats"), &n);
  return isfinite(n) && n >= 2 ? st_t95((int)n - 1) * sd / sqrt(n) : NAN;
}
