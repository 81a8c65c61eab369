/* sweep_search: GA and NSGA-II over gene index vectors (see sweep_search.h).
 * Individuals are indices into the space's value lists, so crossover and mutation can
 * never leave the bounds; settings are compared after normalization so two index
 * vectors that mean the same thing (recurrent, any chunk size) count as one. */
#include "sweep/sweep_search.h"
#include "sweep/pareto.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *sw_objective_name(int o) {
  return o == SW_OBJ_PREFILL ? "prefill" : o == SW_OBJ_PARETO ? "pareto" : "decode";
}

int sw_objective_parse(const char *s) {
  if (!strcmp(s, "decode")) return SW_OBJ_DECODE;
  if (!strcmp(s, "prefill")) return SW_OBJ_PREFILL;
  if (!strcmp(s, "pareto")) return SW_OBJ_PARETO;
  return -1;
}

typedef struct {
  int idx[SW_NKNOBS];
  sw_setting s;
  sw_fit fit;
} indiv;

static void random_indiv(const sw_space *sp, sw_rng *r, indiv *x) {
  for (int g = 0; g < SW_NKNOBS; g++) x->idx[g] = sp->knob[g].n ? (int)sw_rng_below(r, sp->knob[g].n) : 0;
  x->s = sw_space_pick(sp, x->idx);
}

static int in_pop(const indiv *pop, size_t n, const sw_setting *s) {
  for (size_t i = 0; i < n; i++)
    if (sw_setting_eq(&pop[i].s, s)) return 1;
  return 0;
}

/* Fills pop[0..n) with random individuals, distinct while the space allows. */
static void init_pop(const sw_space *sp, sw_rng *r, indiv *pop, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int tries = 0;
    do random_indiv(sp, r, &pop[i]);
    while (in_pop(pop, i, &pop[i].s) && ++tries < 50);
  }
}

/* Uniform crossover, then each gene moves by +-1 or +-2 places with probability pm,
 * clamped to its list. */
static void make_child(const sw_space *sp, sw_rng *r, const indiv *a, const indiv *b, double pm,
                       indiv *c) {
  for (int g = 0; g < SW_NKNOBS; g++) {
    if (!sp->knob[g].n) { c->idx[g] = 0; continue; }
    c->idx[g] = (sw_rng_next(r) >> 63) ? a->idx[g] : b->idx[g];
  }
  for (int g = 0; g < SW_NKNOBS; g++) {
    if (!sp->knob[g].n) continue;
    if (sw_rng_unit(r) >= pm) continue;
    int step = 1 + (int)sw_rng_below(r, 2);
    int v = c->idx[g] + ((sw_rng_next(r) >> 63) ? step : -step);
    int hi = (int)sp->knob[g].n - 1;
    c->idx[g] = v < 0 ? 0 : v > hi ? hi : v;
  }
  c->s = sw_space_pick(sp, c->idx);
}

/* One batch: the whole population is measured together (interleaved by the driver). */
static int eval_all(indiv *pop, size_t n, sw_eval_fn eval, void *ctx) {
  sw_setting *s = xl_malloc((n ? n : 1) * sizeof *s);
  sw_fit *f = xl_calloc(n ? n : 1, sizeof *f);
  for (size_t i = 0; i < n; i++) s[i] = pop[i].s;
  int rc = eval(ctx, s, n, f);
  for (size_t i = 0; !rc && i < n; i++) {
    pop[i].fit = f[i];
    if (!pop[i].fit.ok || !isfinite(pop[i].fit.prefill)) pop[i].fit.prefill = 0;
    if (!pop[i].fit.ok || !isfinite(pop[i].fit.decode)) pop[i].fit.decode = 0;
  }
  free(s);
  free(f);
  return rc;
}

static void check_opts(const sw_space *sp, const sw_search_opts *o) {
  for (int g = 0; g < SW_NKNOBS; g++)
    if (SW_CLASSIC(g) && !sp->knob[g].n) xl_die("sweep: an empty value list");
  if (o->population < 2 || o->generations < 1) xl_die("sweep: population must be >= 2, generations >= 1");
}

/* ---- GA ---- */
static double score(const indiv *x, int objective) {
  return objective == SW_OBJ_PREFILL ? x->fit.prefill : x->fit.decode;
}

static const indiv *tournament(sw_rng *r, const indiv *pop, size_t n, int objective) {
  size_t i = sw_rng_below(r, n), j = sw_rng_below(r, n);
  double si = score(&pop[i], objective), sj = score(&pop[j], objective);
  if (sj > si || (sj == si && j < i)) return &pop[j];
  return &pop[i];
}

int sw_search_ga(const sw_space *sp, const sw_search_opts *o, sw_eval_fn eval, void *ctx) {
  check_opts(sp, o);
  size_t P = (size_t)o->population, E = o->elites < 0 ? 0 : (size_t)o->elites;
  if (E >= P) E = P - 1;
  sw_rng r;
  sw_rng_seed(&r, o->seed);
  indiv *pop = xl_calloc(P, sizeof *pop), *next = xl_calloc(P, sizeof *next);
  init_pop(sp, &r, pop, P);
  int rc = 0;
  for (int gen = 0; gen < o->generations; gen++) {
    if ((rc = eval_all(pop, P, eval, ctx))) break;
    if (gen == o->generations - 1) break;
    /* Best first; a stable insertion sort so ties keep their order (qsort is not
     * stable, and the order must be the same on every machine). */
    for (size_t i = 1; i < P; i++) {
      indiv x = pop[i];
      size_t j = i;
      while (j > 0 && score(&pop[j - 1], o->objective) < score(&x, o->objective)) pop[j] = pop[j - 1], j--;
      pop[j] = x;
    }
    for (size_t i = 0; i < E; i++) next[i] = pop[i];
    for (size_t i = E; i < P; i++) {
      int tries = 0;
      do {
        const indiv *a = tournament(&r, pop, P, o->objective), *b = tournament(&r, pop, P, o->objective);
        make_child(sp, &r, a, b, o->mutation, &next[i]);
      } while (in_pop(next, i, &next[i].s) && ++tries < 20);
    }
    indiv *t = pop; pop = next; next = t;
  }
  free(pop);
  free(next);
  return rc;
}

/* ---- NSGA-II ---- */
static const int maximize2[2] = {1, 1};

void sw_nd_sort(const double *obj, size_t n, int *rank) {
  for (size_t i = 0; i < n; i++) rank[i] = -1;
  size_t left = n;
  for (int front = 0; left; front++) {
    /* A point joins this front when no other unranked point dominates it. */
    size_t added = 0;
    for (size_t i = 0; i < n; i++) {
      if (rank[i] >= 0) continue;
      int dom = 0;
      for (size_t j = 0; j < n && !dom; j++)
        if (j != i && (rank[j] < 0 || rank[j] == front) &&
            pareto_dominates(obj + 2 * j, obj + 2 * i, 2, maximize2))
          dom = 1;
      if (!dom) rank[i] = -2 - front;   /* mark, commit after the pass */
    }
    for (size_t i = 0; i < n; i++)
      if (rank[i] == -2 - front) rank[i] = front, added++;
    if (!added) {   /* cannot happen with a strict dominance relation; stay safe */
      for (size_t i = 0; i < n; i++)
        if (rank[i] < 0) rank[i] = front;
      break;
    }
    left -= added;
  }
}

/* qsort has no context argument; sw_crowding is not re-entrant for that reason. */
static const double *crowd_obj;
static int crowd_k;
static int cmp_crowd(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  double vx = crowd_obj[2 * x + crowd_k], vy = crowd_obj[2 * y + crowd_k];
  if (vx != vy) return vx < vy ? -1 : 1;
  return (x > y) - (x < y);
}

void sw_crowding(const double *obj, const size_t *members, size_t m, double *dist) {
  for (size_t i = 0; i < m; i++) dist[i] = 0;
  if (m <= 2) {
    for (size_t i = 0; i < m; i++) dist[i] = INFINITY;
    return;
  }
  size_t *ord = xl_malloc(m * sizeof *ord);
  for (int k = 0; k < 2; k++) {
    /* Sort positions 0..m-1 by the members' objective k. */
    size_t *keys = xl_malloc(m * sizeof *keys);
    for (size_t i = 0; i < m; i++) keys[i] = members[i];
    crowd_obj = obj;
    crowd_k = k;
    qsort(keys, m, sizeof *keys, cmp_crowd);
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < m; j++)
        if (members[j] == keys[i]) { ord[i] = j; break; }
    free(keys);
    double lo = obj[2 * members[ord[0]] + k], hi = obj[2 * members[ord[m - 1]] + k];
    dist[ord[0]] = dist[ord[m - 1]] = INFINITY;
    if (hi <= lo) continue;
    for (size_t i = 1; i + 1 < m; i++)
      dist[ord[i]] += (obj[2 * members[ord[i + 1]] + k] - obj[2 * members[ord[i - 1]] + k]) / (hi - lo);
  }
  free(ord);
}

/* Rank and crowding of every point in pop[0..n). */
static void rank_and_crowd(const indiv *pop, size_t n, int *rank, double *crowd) {
  double *obj = xl_malloc(2 * n * sizeof *obj);
  for (size_t i = 0; i < n; i++) obj[2 * i] = pop[i].fit.prefill, obj[2 * i + 1] = pop[i].fit.decode;
  sw_nd_sort(obj, n, rank);
  size_t *mem = xl_malloc(n * sizeof *mem);
  double *d = xl_malloc(n * sizeof *d);
  for (int f = 0;; f++) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
      if (rank[i] == f) mem[m++] = i;
    if (!m) break;
    sw_crowding(obj, mem, m, d);
    for (size_t i = 0; i < m; i++) crowd[mem[i]] = d[i];
  }
  free(obj);
  free(mem);
  free(d);
}

/* The crowded-comparison operator: lower rank, then larger crowding, then lower index. */
static int crowded_better(size_t i, size_t j, const int *rank, const double *crowd) {
  if (rank[i] != rank[j]) return rank[i] < rank[j];
  if (crowd[i] != crowd[j]) return crowd[i] > crowd[j];
  return i < j;
}

int sw_search_nsga2(const sw_space *sp, const sw_search_opts *o, sw_eval_fn eval, void *ctx) {
  check_opts(sp, o);
  size_t P = (size_t)o->population;
  sw_rng r;
  sw_rng_seed(&r, o->seed);
  indiv *all = xl_calloc(2 * P, sizeof *all);   /* parents [0,P) + offspring [P,2P) */
  int *rank = xl_malloc(2 * P * sizeof *rank);
  double *crowd = xl_malloc(2 * P * sizeof *crowd);
  size_t *order = xl_malloc(2 * P * sizeof *order);
  indiv *tmp = xl_calloc(2 * P, sizeof *tmp);
  init_pop(sp, &r, all, P);
  int rc = eval_all(all, P, eval, ctx);
  for (int gen = 1; !rc && gen < o->generations; gen++) {
    rank_and_crowd(all, P, rank, crowd);
    for (size_t i = 0; i < P; i++) {
      indiv *c = &all[P + i];
      int tries = 0;
      do {
        size_t a1 = sw_rng_below(&r, P), a2 = sw_rng_below(&r, P);
        size_t b1 = sw_rng_below(&r, P), b2 = sw_rng_below(&r, P);
        size_t a = crowded_better(a1, a2, rank, crowd) ? a1 : a2;
        size_t b = crowded_better(b1, b2, rank, crowd) ? b1 : b2;
        make_child(sp, &r, &all[a], &all[b], o->mutation, c);
      } while (in_pop(all, P + i, &c->s) && ++tries < 20);
    }
    if ((rc = eval_all(all + P, P, eval, ctx))) break;
    /* Survivors: drop repeated settings, then whole fronts, then the most crowded-apart. */
    size_t n = 0;
    for (size_t i = 0; i < 2 * P; i++)
      if (!in_pop(tmp, n, &all[i].s)) tmp[n++] = all[i];
    rank_and_crowd(tmp, n, rank, crowd);
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = 1; i < n; i++) {   /* insertion sort by the crowded comparison */
      size_t x = order[i], j = i;
      while (j > 0 && crowded_better(x, order[j - 1], rank, crowd)) order[j] = order[j - 1], j--;
      order[j] = x;
    }
    size_t keep = n < P ? n : P;
    for (size_t i = 0; i < keep; i++) all[i] = tmp[order[i]];
    /* A space smaller than the population: refill with fresh random settings. */
    for (size_t i = keep; i < P; i++) {
      random_indiv(sp, &r, &all[i]);
      if ((rc = eval_all(&all[i], 1, eval, ctx))) break;
    }
  }
  free(all);
  free(rank);
  free(crowd);
  free(order);
  free(tmp);
  return rc;
}
