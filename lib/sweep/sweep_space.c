/* sweep_space: value lists, settings keys and slugs, the PRNG and the grid/random plans
 * of xl-sweep (see sweep_space.h). */
#include "sweep/sweep_space.h"
#include "base/util.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SW_LIST_MAX 4096

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

/* Parses a whole integer token s[0..n) into *out. */
static int parse_num(const char *s, size_t n, long *out) {
  char buf[32];
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, s, n);
  buf[n] = 0;
  return xl_parse_long(buf, LONG_MIN / 4, LONG_MAX / 4, out);
}

static int push(sw_list *l, size_t *cap, long v, long lo, long hi, char *err, size_t errlen) {
  if (v < lo || v > hi) {
    snprintf(err, errlen, "value %ld out of range [%ld, %ld]", v, lo, hi);
    return -1;
  }
  if (l->n >= SW_LIST_MAX) {
    snprintf(err, errlen, "more than %d values", SW_LIST_MAX);
    return -1;
  }
  if (l->n == *cap) {
    *cap = *cap ? *cap * 2 : 8;
    l->v = xl_realloc(l->v, *cap * sizeof *l->v);
  }
  l->v[l->n++] = v;
  return 0;
}

/* One item: "a", "a-b", "a-b+s", "a-b*m". */
static int parse_item(const char *it, size_t n, long lo, long hi, sw_list *l, size_t *cap,
                      char *err, size_t errlen) {
  /* The first character may be a sign, so look for '-' after it. */
  const char *dash = n > 1 ? memchr(it + 1, '-', n - 1) : NULL;
  long a, b, step = 1;
  int mult = 0;
  if (!dash) {
    if (parse_num(it, n, &a)) goto bad;
    return push(l, cap, a, lo, hi, err, errlen);
  }
  if (parse_num(it, (size_t)(dash - it), &a)) goto bad;
  const char *rest = dash + 1, *end = it + n;
  const char *op = NULL;
  for (const char *p = rest + 1; p < end; p++)
    if (*p == '+' || *p == '*') { op = p; break; }
  if (parse_num(rest, (size_t)((op ? op : end) - rest), &b)) goto bad;
  if (op) {
    if (parse_num(op + 1, (size_t)(end - op - 1), &step)) goto bad;
    mult = *op == '*';
    if ((mult && step < 2) || (!mult && step < 1)) {
      snprintf(err, errlen, "'%.*s': the step must be %s", (int)n, it, mult ? ">= 2" : ">= 1");
      return -1;
    }
  }
  if (b < a) {
    snprintf(err, errlen, "'%.*s': the range ends before it starts", (int)n, it);
    return -1;
  }
  if (mult && a <= 0) {
    snprintf(err, errlen, "'%.*s': a multiplicative range must start above 0", (int)n, it);
    return -1;
  }
  for (long v = a;; v = mult ? v * step : v + step) {
    if (push(l, cap, v, lo, hi, err, errlen)) return -1;
    if (mult ? v > b / step : v > b - step) break;   /* the next value passes b (and may not fit a long) */
  }
  return 0;
bad:
  snprintf(err, errlen, "'%.*s' is not a number or a range like 1-4, 16-256*2, 8-64+8", (int)n, it);
  return -1;
}

int sw_list_parse(const char *spec, long lo, long hi, sw_list *out, char *err, size_t errlen) {
  sw_list l = {0};
  size_t cap = 0;
  const char *p = spec ? spec : "";
  for (;;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    while (n && (*p == ' ' || *p == '\t')) p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    if (!n) {
      snprintf(err, errlen, "'%s': empty item in the list", spec ? spec : "");
      free(l.v);
      return -1;
    }
    if (parse_item(p, n, lo, hi, &l, &cap, err, errlen)) {
      free(l.v);
      return -1;
    }
    if (!c) break;
    p = c + 1;
  }
  qsort(l.v, l.n, sizeof *l.v, cmp_long);
  size_t k = 0;
  for (size_t i = 0; i < l.n; i++)
    if (!k || l.v[k - 1] != l.v[i]) l.v[k++] = l.v[i];
  l.n = k;
  *out = l;
  return 0;
}

const char *sw_backend_name(int b) { return b == SW_RECURRENT ? "recurrent" : "chunkwise"; }

int sw_backend_parse(const char *s) {
  if (!strcmp(s, "chunkwise")) return SW_CHUNKWISE;
  if (!strcmp(s, "recurrent")) return SW_RECURRENT;
  return -1;
}

int sw_backends_parse(const char *spec, sw_list *out, char *err, size_t errlen) {
  int have[2] = {0, 0};
  const char *p = spec ? spec : "";
  for (;;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    char name[32];
    while (n && *p == ' ') p++, n--;
    while (n && p[n - 1] == ' ') n--;
    int b = -1;
    if (n && n < sizeof name) {
      memcpy(name, p, n);
      name[n] = 0;
      b = sw_backend_parse(name);
    }
    if (b < 0) {
      snprintf(err, errlen, "'%.*s' is not a backend (chunkwise or recurrent)", (int)n, p);
      return -1;
    }
    have[b] = 1;
    if (!c) break;
    p = c + 1;
  }
  out->n = 0;
  out->v = xl_malloc(2 * sizeof *out->v);
  for (int b = 0; b < 2; b++)
    if (have[b]) out->v[out->n++] = b;
  return 0;
}

void sw_list_free(sw_list *l) {
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

void sw_space_free(sw_space *s) {
  for (int g = 0; g < SW_NGENES; g++) sw_list_free(&s->gene[g]);
}

void sw_setting_normalize(sw_setting *s) {
  if (s->backend == SW_RECURRENT) s->chunk_size = 1;
}

int sw_setting_eq(const sw_setting *a, const sw_setting *b) {
  return a->backend == b->backend && a->chunk_size == b->chunk_size &&
         a->heads_per_band == b->heads_per_band && a->workers == b->workers;
}

sw_setting sw_space_pick(const sw_space *sp, const int idx[SW_NGENES]) {
  sw_setting s = {
      .backend = (int)sp->gene[SW_G_BACKEND].v[idx[SW_G_BACKEND]],
      .chunk_size = (int)sp->gene[SW_G_CHUNK].v[idx[SW_G_CHUNK]],
      .heads_per_band = (int)sp->gene[SW_G_HEADS].v[idx[SW_G_HEADS]],
      .workers = (int)sp->gene[SW_G_WORKERS].v[idx[SW_G_WORKERS]],
  };
  sw_setting_normalize(&s);
  return s;
}

void sw_key(const sw_setting *s, long context, char *buf, size_t n) {
  snprintf(buf, n, "b=%s__ck=%d__h=%d__w=%d__ctx=%ld", sw_backend_name(s->backend), s->chunk_size,
           s->heads_per_band, s->workers, context);
}

void sw_slug(const char *key, long trial, char *buf, size_t n) {
  snprintf(buf, n, "%s__i=%ld", key, trial);
}

/* ---- PRNG: splitmix64 (Steele, Lea, Flood 2014), tiny and well mixed ---- */
void sw_rng_seed(sw_rng *r, uint64_t seed) { r->s = seed; }

uint64_t sw_rng_next(sw_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

size_t sw_rng_below(sw_rng *r, size_t n) {
  if (n <= 1) return 0;
  uint64_t lim = UINT64_MAX - UINT64_MAX % n;   /* reject the biased tail */
  uint64_t x;
  do x = sw_rng_next(r);
  while (x >= lim);
  return (size_t)(x % n);
}

double sw_rng_unit(sw_rng *r) { return (double)(sw_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* ---- plans ---- */
static int seen(const sw_setting *v, size_t n, const sw_setting *s) {
  for (size_t i = 0; i < n; i++)
    if (sw_setting_eq(&v[i], s)) return 1;
  return 0;
}

size_t sw_plan_grid(const sw_space *sp, sw_setting **out) {
  size_t total = 1;
  for (int g = 0; g < SW_NGENES; g++) total *= sp->gene[g].n ? sp->gene[g].n : 1;
  sw_setting *v = xl_malloc((total ? total : 1) * sizeof *v);
  size_t n = 0;
  for (int g = 0; g < SW_NGENES; g++)
    if (!sp->gene[g].n) { *out = v; return 0; }
  int idx[SW_NGENES] = {0};
  for (size_t k = 0; k < total; k++) {
    sw_setting s = sw_space_pick(sp, idx);
    /* Only recurrent settings can collide, and only with the first of their kind. */
    if (s.backend != SW_RECURRENT || !seen(v, n, &s)) v[n++] = s;
    for (int g = SW_NGENES - 1; g >= 0; g--) {   /* odometer: the last gene fastest */
      if (++idx[g] < (int)sp->gene[g].n) break;
      idx[g] = 0;
    }
  }
  *out = v;
  return n;
}

size_t sw_space_size(const sw_space *sp) {
  sw_setting *v;
  size_t n = sw_plan_grid(sp, &v);
  free(v);
  return n;
}

size_t sw_plan_random(const sw_space *sp, uint64_t seed, size_t trials, sw_setting **out) {
  size_t avail = sw_space_size(sp);
  if (trials > avail) trials = avail;
  sw_setting *v = xl_malloc((trials ? trials : 1) * sizeof *v);
  sw_rng r;
  sw_rng_seed(&r, seed);
  size_t n = 0;
  while (n < trials) {
    int idx[SW_NGENES];
    for (int g = 0; g < SW_NGENES; g++) idx[g] = (int)sw_rng_below(&r, sp->gene[g].n);
    sw_setting s = sw_space_pick(sp, idx);
    /* Rejection keeps the draws distinct; the space holds at least `trials` settings. */
    if (!seen(v, n, &s)) v[n++] = s;
  }
  *out = v;
  return n;
}
