/* sweep_run: the files of a run directory (see sweep_run.h). */
#include "sweep/sweep_run.h"
#include "cli/settings.h"
#include "sweep/choose.h"
#include "sweep/pareto.h"
#include "sweep/stats.h"
#include "io/records.h"
#include "sweep/sweep_search.h"
#include "sweep/sweep_trial.h"
#include "base/filekind.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cJSON *sw_read_trials(const char *path, size_t *torn, char *err, size_t errlen) {
  *torn = 0;
  size_t len;
  char *buf = xl_read_file(path, &len);
  if (!buf) {
    if (errno == ENOENT) return cJSON_CreateArray();
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  /* A kill can leave the last line half written: keep everything up to the last '\n',
   * and drop a final complete line only if it does not parse. */
  size_t good = len;
  while (good && buf[good - 1] != '\n') good--;
  if (good) {
    size_t start = good - 1;
    while (start && buf[start - 1] != '\n') start--;
    cJSON *last = cJSON_ParseWithLength(buf + start, good - start);
    int fine = last && cJSON_IsObject(last);
    int blank = strspn(buf + start, " \t\r\n") == good - start;
    cJSON_Delete(last);
    if (!fine && !blank) good = start;
  }
  *torn = len - good;
  cJSON *arr = rec_ndjson_parse(buf, good, path, err, errlen);
  free(buf);
  return arr;
}

/* A record that says which trial it is and how it went. */
static int complete(const cJSON *rec) {
  const char *slug = rec_str(rec, "slug");
  return cJSON_IsObject(rec) && slug && *slug && rec_str(rec, "status");
}

/* Drops every record of a trial (slug) but its first complete one; returns how many. */
static size_t dedupe(cJSON *trials) {
  size_t dropped = 0;
  for (int i = 0; i < cJSON_GetArraySize(trials);) {
    const cJSON *rec = cJSON_GetArrayItem(trials, i);
    const char *slug = rec_str(rec, "slug");
    int keep = -1;   /* the record of this slug to keep: the first complete one, else the first */
    for (int j = 0; slug && j < cJSON_GetArraySize(trials) && (keep < 0 || !complete(cJSON_GetArrayItem(trials, keep))); j++) {
      const char *s = rec_str(cJSON_GetArrayItem(trials, j), "slug");
      if (s && !strcmp(s, slug) && (keep < 0 || complete(cJSON_GetArrayItem(trials, j)))) keep = j;
    }
    if (keep >= 0 && keep != i) {
      cJSON_DeleteItemFromArray(trials, i);
      dropped++;
    } else
      i++;
  }
  return dropped;
}

/* Rewrites trials.jsonl with these records (temp + rename). Its first line may have been
 * one of the records dropped, so the file is known by its slugs, not its first key. */
static int save_records(const char *path, const cJSON *rows) { return rec_ndjson_save_kind(path, rows, "slug"); }

int sw_run_open(sw_rundir *r, const char *dir, int objective, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
  r->objective = objective;
  sw_setting_defaults(&r->defaults, 0);
  if (xl_mkdirs(dir)) {
    snprintf(err, errlen, "%s: %s", dir, strerror(errno));
    return -1;
  }
  r->dir = xl_strdup(dir);
  char *path = xl_path_join(dir, "trials.jsonl");
  r->trials = sw_read_trials(path, &r->torn_bytes, err, errlen);
  if (!r->trials) goto fail;
  /* A trial recorded twice (an old collect, a hand-made merge) would be counted twice:
   * keep its first complete record, and the file says so too (temp + rename). */
  r->duplicates = dedupe(r->trials);
  if (r->duplicates && save_records(path, r->trials)) {
    snprintf(err, errlen, "%s: cannot drop %zu duplicate record(s): %s", path, r->duplicates, strerror(errno));
    goto fail;
  }
  r->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (r->fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    goto fail;
  }
  if (r->torn_bytes && !r->duplicates) {   /* (a rewritten file has no torn line) */
    struct stat st;
    if (fstat(r->fd, &st) || ftruncate(r->fd, st.st_size - (off_t)r->torn_bytes)) {
      snprintf(err, errlen, "%s: cannot drop the torn last line: %s", path, strerror(errno));
      goto fail;
    }
  }
  free(path);
  return 0;
fail:
  free(path);
  sw_run_close(r);
  return -1;
}

void sw_run_close(sw_rundir *r) {
  if (r->fd >= 0) close(r->fd);
  cJSON_Delete(r->trials);
  free(r->dir);
  free(r->last_best);
  memset(r, 0, sizeof *r);
  r->fd = -1;
}

const cJSON *sw_run_find_key(const sw_rundir *r, const char *key) {
  const cJSON *it;
  cJSON_ArrayForEach(it, r->trials) {
    const char *s = rec_str(it, "key");
    if (s && !strcmp(s, key)) return it;
  }
  return NULL;
}

/* One write of the whole line, then fsync: a kill leaves at most a torn last line. */
static int append_line(int fd, const cJSON *rec) {
  char *s = cJSON_PrintUnformatted(rec);
  if (!s) return errno = ENOMEM, -1;
  size_t n = strlen(s);
  s = xl_realloc(s, n + 2);
  s[n++] = '\n';
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(fd, s + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      free(s);
      return -1;
    }
    off += (size_t)w;
  }
  free(s);
  return fsync(fd);
}

static int after(sw_rundir *r, const char *profile_out) {
  if (sw_run_write_summary(r)) return -1;
  return sw_run_write_best(r, profile_out, NULL);
}

int sw_run_add(sw_rundir *r, cJSON *rec, const char *profile_out) {
  int rc = append_line(r->fd, rec);
  cJSON_AddItemToArray(r->trials, rec);
  if (rc) return -1;
  return after(r, profile_out);
}

static int is_ok(const cJSON *rec) {
  const char *s = rec_str(rec, "status");
  return s && !strcmp(s, "ok");
}

int sw_run_collect(sw_rundir *r, const cJSON *records, const char *profile_out, size_t *added,
                   size_t *replaced, size_t *skipped, char *err, size_t errlen) {
  /* (shared measurements are filled in below, once both records are here) */
  *added = *replaced = *skipped = 0;
  const cJSON *rec;
  int rewrite = 0;
  cJSON_ArrayForEach(rec, records) {
    const char *slug = rec_str(rec, "slug");
    if (!slug || !*slug || !rec_str(rec, "status")) {
      snprintf(err, errlen, "a record without 'slug' or 'status' (not a trial record)");
      return -1;
    }
    int idx = 0, found = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, r->trials) {
      const char *s = rec_str(it, "slug");
      if (s && !strcmp(s, slug)) { found = idx; break; }
      idx++;
    }
    cJSON *copy = cJSON_Duplicate(rec, 1);
    if (found < 0) {
      if (append_line(r->fd, copy)) {
        snprintf(err, errlen, "%s/trials.jsonl: %s", r->dir, strerror(errno));
        cJSON_Delete(copy);
        return -1;
      }
      cJSON_AddItemToArray(r->trials, copy);
      (*added)++;
    } else if (!is_ok(cJSON_GetArrayItem(r->trials, found)) && is_ok(rec)) {
      cJSON_ReplaceItemInArray(r->trials, found, copy);   /* a retried trial succeeded */
      (*replaced)++;
      rewrite = 1;
    } else {
      cJSON_Delete(copy);
      (*skipped)++;
    }
  }
  /* Shared measurements (decode_from / prefill_from) whose source has arrived by now. */
  cJSON *it2;
  cJSON_ArrayForEach(it2, r->trials) {
    for (unsigned w = XS_AFFECTS_PREFILL; w <= XS_AFFECTS_DECODE; w <<= 1) {
      const char *from = rec_str(it2, w == XS_AFFECTS_PREFILL ? "prefill_from" : "decode_from");
      double have;
      if (!from || !rec_num(it2, w == XS_AFFECTS_PREFILL ? "prefill_tok_s" : "decode_tok_s", &have)) continue;
      const cJSON *src = NULL, *c2;
      cJSON_ArrayForEach(c2, r->trials) {
        const char *sl = rec_str(c2, "slug");
        if (sl && !strcmp(sl, from) && is_ok(c2)) src = c2;
      }
      if (!src) continue;
      sw_record_take(it2, src, w);
      rewrite = 1;
    }
  }
  if (rewrite) {
    /* Replacing a line in place is not possible: write the whole file anew. */
    char *path = xl_path_join(r->dir, "trials.jsonl");
    int rc = rec_ndjson_save(path, r->trials);
    if (!rc) {   /* the append descriptor still names the old file */
      close(r->fd);
      r->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
      if (r->fd < 0) rc = -1;
    }
    if (rc) snprintf(err, errlen, "%s: %s", path, strerror(errno));
    free(path);
    if (rc) return -1;
  }
  if (after(r, profile_out)) {
    snprintf(err, errlen, "%s: cannot write the summary or best files: %s", r->dir, strerror(errno));
    return -1;
  }
  return 0;
}

static double num_or_nan(const cJSON *o, const char *k) {
  double v;
  return rec_num(o, k, &v) ? NAN : v;
}

static int cmp_trial(const void *a, const void *b) {
  const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
  double tx = num_or_nan(x, "trial"), ty = num_or_nan(y, "trial");
  if (tx != ty && !isnan(tx) && !isnan(ty)) return tx < ty ? -1 : 1;
  const char *sx = rec_str(x, "slug"), *sy = rec_str(y, "slug");
  return strcmp(sx ? sx : "", sy ? sy : "");
}

int sw_run_write_summary(sw_rundir *r) {
  size_t n = (size_t)cJSON_GetArraySize(r->trials), i = 0;
  const cJSON **v = xl_malloc((n ? n : 1) * sizeof *v);
  const cJSON *it;
  cJSON_ArrayForEach(it, r->trials) v[i++] = it;
  qsort(v, n, sizeof *v, cmp_trial);
  char *path = xl_path_join(r->dir, "summary.csv");
  xl_atomic a;
  int rc = xl_kind_check(path, XK_CSV, sw_record_cols[0]) ? -1 : xl_atomic_open(&a, path);
  if (!rc) {
    rc = rec_csv_header(a.f, sw_record_cols, sw_record_ncols);
    for (i = 0; i < n && !rc; i++) rc = rec_csv_row(a.f, v[i], sw_record_cols, sw_record_ncols);
    if (rc) xl_atomic_abort(&a);
    else rc = xl_atomic_commit(&a);
  }
  free(path);
  free(v);
  return rc;
}


/* ---- the best setting ---- */
typedef struct {
  const cJSON *first;      /* a record of the setting, for its params */
  const cJSON *last;       /* its last ok record */
  sw_setting set;
  double pre, dec;         /* sums of the means over ok records */
  double pre_v, dec_v;     /* sums of the squared interval half widths (NaN once one is unknown) */
  double pre_sd, dec_sd;   /* of the single record, when there is one */
  double rss;              /* max */
  int nok, nfail;
  int npre, ndec;          /* ok records that had each speed (a prefill-only run has no decode) */
  cJSON *slugs;
  cJSON *contexts;
} agg;

static cJSON *params_of(const cJSON *rec) {
  cJSON *p = cJSON_CreateObject();
  for (int k = 0; k < XS_COUNT; k++) {   /* every run setting the record names: what ran */
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, xl_settings[k].key);
    if (v && (cJSON_IsNumber(v) || (cJSON_IsString(v) && *v->valuestring)))
      cJSON_AddItemToObject(p, xl_settings[k].key, cJSON_Duplicate(v, 1));
  }
  if (!cJSON_GetObjectItemCaseSensitive(p, "backend")) cJSON_AddStringToObject(p, "backend", "chunkwise");
  return p;
}

static void add_num(cJSON *o, const char *k, double v) {
  if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

/* Adds one record's mean and interval into a running sum of means and of squared half widths. */
static void fold(const cJSON *rec, const char *what, double *sum, double *var, int *n) {
  char k[48];
  snprintf(k, sizeof k, "%s_tok_s", what);
  double m = num_or_nan(rec, k);
  if (!isfinite(m)) return;
  snprintf(k, sizeof k, "%s_tok_s_ci95", what);
  double c = num_or_nan(rec, k);
  *sum += m;
  *var += isfinite(c) ? c * c : NAN;
  (*n)++;
}

/* Folds the records into one aggregate per setting (a needs room for every record);
 * returns how many settings. */
static size_t aggregate(const cJSON *trials, agg *a) {
  size_t na = 0;
  const cJSON *rec;
  cJSON_ArrayForEach(rec, trials) {
    sw_setting s;
    if (!rec_str(rec, "backend") || sw_setting_from_record(rec, &s)) continue;
    size_t k = 0;
    while (k < na && !sw_setting_eq(&a[k].set, &s)) k++;
    if (k == na) {
      a[na].first = rec;
      a[na].set = s;
      a[na].slugs = cJSON_CreateArray();
      a[na].contexts = cJSON_CreateArray();
      a[na].rss = NAN;
      na++;
    }
    if (!is_ok(rec)) { a[k].nfail++; continue; }
    a[k].last = rec;
    fold(rec, "prefill", &a[k].pre, &a[k].pre_v, &a[k].npre);
    fold(rec, "decode", &a[k].dec, &a[k].dec_v, &a[k].ndec);
    a[k].pre_sd = num_or_nan(rec, "prefill_tok_s_sd");
    a[k].dec_sd = num_or_nan(rec, "decode_tok_s_sd");
    double rss = num_or_nan(rec, "peak_rss_mb");
    if (isfinite(rss) && (isnan(a[k].rss) || rss > a[k].rss)) a[k].rss = rss;
    a[k].nok++;
    const char *slug = rec_str(rec, "slug");
    cJSON_AddItemToArray(a[k].slugs, cJSON_CreateString(slug ? slug : ""));
    cJSON_AddItemToArray(a[k].contexts, cJSON_CreateNumber(num_or_nan(rec, "prompt_tokens")));
  }
  return na;
}

/* The round-by-round comparison of two settings measured once each (one context) in one
 * interleaved batch; objs maps the table's objectives to "prefill"/"decode". */
typedef struct {
  const agg *a;
  const char *const *objs;
} runs_ctx;

static size_t runs_of(const cJSON *rec, const char *what, double *v, size_t cap, long *batch) {
  char k[48];
  snprintf(k, sizeof k, "%s_batch", what);
  double b;
  *batch = rec_num(rec, k, &b) ? 0 : (long)b;
  snprintf(k, sizeof k, "%s_tok_s_runs", what);
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(rec, k), *x;
  size_t n = 0;
  cJSON_ArrayForEach(x, arr) if (n < cap) v[n++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
  return n;
}

static int rounds_cmp(void *ctx, size_t i, size_t j, size_t o) {
  const runs_ctx *c = ctx;
  if (c->a[i].nok != 1 || c->a[j].nok != 1) return 2;
  double x[256], y[256];
  long bx, by;
  size_t nx = runs_of(c->a[i].last, c->objs[o], x, 256, &bx), ny = runs_of(c->a[j].last, c->objs[o], y, 256, &by);
  return st_cmp_rounds(x, nx, bx, y, ny, by);
}

/* A setting's mean over its contexts and the interval of that mean. */
static st_interval mean_of(double sum, double var, int n) {
  if (n <= 0) return (st_interval){NAN, NAN, NAN};
  return st_interval_of(sum / n, isfinite(var) ? sqrt(var) / n : NAN);
}

cJSON *sw_best(const cJSON *trials, int objective) { return sw_best_ex(trials, objective, NULL); }

cJSON *sw_best_ex(const cJSON *trials, int objective, const sw_setting *defaults) {
  size_t n = (size_t)cJSON_GetArraySize(trials);
  agg *a = xl_calloc(n ? n : 1, sizeof *a);
  size_t na = aggregate(trials, a);
  int most = 0;
  for (size_t k = 0; k < na; k++)
    if (!a[k].nfail && a[k].nok > most) most = a[k].nok;
  size_t cap = na ? na : 1;
  st_interval *iv = xl_malloc(2 * cap * sizeof *iv);
  sw_setting *sets = xl_malloc(cap * sizeof *sets);
  unsigned char *elig = xl_calloc(cap, 1), *front = xl_calloc(cap, 1);
  double maxp = 0, maxd = 0;
  for (size_t k = 0; k < na; k++) {
    sets[k] = a[k].set;
    elig[k] = most > 0 && !a[k].nfail && a[k].nok == most;
    iv[2 * k] = mean_of(a[k].pre, a[k].pre_v, a[k].npre);
    iv[2 * k + 1] = mean_of(a[k].dec, a[k].dec_v, a[k].ndec);
    if (elig[k]) {
      if (iv[2 * k].mean > maxp) maxp = iv[2 * k].mean;
      if (iv[2 * k + 1].mean > maxd) maxd = iv[2 * k + 1].mean;
    }
  }
  static const int max2[2] = {1, 1};
  static const unsigned aff2[2] = {XS_AFFECTS_PREFILL, XS_AFFECTS_DECODE};
  static const char *const names2[2] = {"prefill", "decode"};
  runs_ctx rc2 = {a, names2};
  ch_table t = {.n = na, .nobj = 2, .set = sets, .v = iv, .maximize = max2, .affects = aff2, .defaults = defaults,
                .cmp = rounds_cmp, .ctx = &rc2};
  long best = -1;
  ch_pick_info pi = {.row = -1, .runner_up = -1};
  if (objective == SW_OBJ_PARETO) {
    t.eligible = elig;
    ch_front(&t, front, NULL, NULL);
    double bs = -INFINITY;
    for (size_t k = 0; k < na; k++) {
      if (!front[k]) continue;
      double s = (maxp > 0 ? iv[2 * k].mean / maxp : 0) * (maxd > 0 ? iv[2 * k + 1].mean / maxd : 0);
      if (s > bs) bs = s, best = (long)k;
    }
  } else {
    /* one speed: the fastest, or the simplest setting its difference from is within the noise */
    size_t o = objective == SW_OBJ_PREFILL ? 0 : 1;
    st_interval *one = xl_malloc(cap * sizeof *one);
    for (size_t k = 0; k < na; k++) one[k] = iv[2 * k + o];
    runs_ctx rc1 = {a, &names2[o]};
    ch_table t1 = {.n = na, .nobj = 1, .set = sets, .v = one, .maximize = max2, .affects = &aff2[o],
                   .defaults = defaults, .cmp = rounds_cmp, .ctx = &rc1};
    best = ch_pick(&t1, elig, 0, 0, -1, &pi);
    free(one);
  }
  cJSON *out = NULL;
  if (best >= 0) {
    agg *b = &a[best];
    out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "params", params_of(b->first));
    const char *smp = rec_str(b->first, "sampling");
    if (smp) cJSON_AddStringToObject(out, "sampling", smp);
    cJSON *m = cJSON_AddObjectToObject(out, "metrics");
    add_num(m, "prefill_tok_s", b->npre ? iv[2 * best].mean : NAN);
    add_num(m, "decode_tok_s", b->ndec ? iv[2 * best + 1].mean : NAN);
    add_num(m, "prefill_tok_s_ci95", b->npre ? (iv[2 * best].hi - iv[2 * best].lo) / 2 : NAN);
    add_num(m, "decode_tok_s_ci95", b->ndec ? (iv[2 * best + 1].hi - iv[2 * best + 1].lo) / 2 : NAN);
    if (b->nok == 1) {
      add_num(m, "prefill_tok_s_sd", b->pre_sd);
      add_num(m, "decode_tok_s_sd", b->dec_sd);
      add_num(m, "prompt_tokens", cJSON_GetArrayItem(b->contexts, 0)->valuedouble);
    }
    add_num(m, "peak_rss_mb", b->rss);
    add_num(m, "new_tokens", num_or_nan(b->first, "new_tokens"));
    cJSON_AddItemToObject(m, "contexts", cJSON_Duplicate(b->contexts, 1));
    cJSON_AddStringToObject(out, "objective", sw_objective_name(objective));
    cJSON_AddItemToObject(out, "slugs", cJSON_Duplicate(b->slugs, 1));
    if (objective != SW_OBJ_PARETO) {
      /* which differences are real: the settings that tie with it, and whether it beats every other */
      cJSON_AddBoolToObject(out, "significant", pi.significant);
      cJSON *ties = cJSON_AddArrayToObject(out, "ties");
      for (size_t q = 0; q < pi.nties && q < 64; q++)
        if (pi.ties[q] != best) cJSON_AddItemToArray(ties, params_of(a[pi.ties[q]].first));
      if (pi.fastest >= 0 && pi.fastest != best)
        cJSON_AddStringToObject(out, "note", "the fastest mean is within the noise of this simpler setting");
    }
    if (objective == SW_OBJ_PARETO) {
      cJSON *f = cJSON_AddArrayToObject(out, "front");
      for (size_t k = 0; k < na; k++) {
        if (!front[k]) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "params", params_of(a[k].first));
        add_num(e, "prefill_tok_s", iv[2 * k].mean);
        add_num(e, "decode_tok_s", iv[2 * k + 1].mean);
        cJSON_AddItemToObject(e, "slugs", cJSON_Duplicate(a[k].slugs, 1));
        cJSON_AddItemToArray(f, e);
      }
    }
  }
  for (size_t k = 0; k < na; k++) {
    cJSON_Delete(a[k].slugs);
    cJSON_Delete(a[k].contexts);
  }
  free(a);
  free(iv);
  free(sets);
  free(elig);
  free(front);
  return out;
}

int sw_run_write_best(sw_rundir *r, const char *profile_out, int *changed) {
  if (changed) *changed = 0;
  cJSON *b = sw_best_ex(r->trials, r->objective, &r->defaults);
  if (!b) return 0;
  char *text = cJSON_PrintUnformatted(b);
  int rc = 0;
  if (!r->last_best || strcmp(r->last_best, text)) {
    char *p1 = xl_path_join(r->dir, "best.json"), *p2 = xl_path_join(r->dir, "best_profile.json");
    /* The profile is what xl-prefill/xl-decode --profile read: params + metrics (and the
     * sampling, which xl-decode takes as flags, for the reader). */
    cJSON *extra = cJSON_CreateObject();
    const cJSON *params = cJSON_GetObjectItem(b, "params");
    cJSON_AddItemToObject(extra, "metrics", cJSON_Duplicate(cJSON_GetObjectItem(b, "metrics"), 1));
    const cJSON *smp = cJSON_GetObjectItem(b, "sampling");
    if (smp) cJSON_AddItemToObject(extra, "sampling", cJSON_Duplicate(smp, 1));
    char perr[512];
    rc = rec_json_save(p1, b) || xl_settings_write_profile(p2, params, extra, perr, sizeof perr) ||
         (profile_out && xl_settings_write_profile(profile_out, params, extra, perr, sizeof perr));
    rc = rc ? -1 : 0;
    cJSON_Delete(extra);
    free(p1);
    free(p2);
    if (!rc) {
      free(r->last_best);
      r->last_best = text;
      text = NULL;
      if (changed) *changed = 1;
    }
  }
  free(text);
  cJSON_Delete(b);
  return rc;
}
