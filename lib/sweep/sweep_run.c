/* sweep_run: the files of a run directory (see sweep_run.h). */
#include "sweep/sweep_run.h"
#include "cli/settings.h"
#include "sweep/pareto.h"
#include "io/records.h"
#include "sweep/sweep_search.h"
#include "sweep/sweep_trial.h"
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

int sw_run_open(sw_rundir *r, const char *dir, int objective, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
  r->objective = objective;
  if (xl_mkdirs(dir)) {
    snprintf(err, errlen, "%s: %s", dir, strerror(errno));
    return -1;
  }
  r->dir = xl_strdup(dir);
  char *path = xl_path_join(dir, "trials.jsonl");
  r->trials = sw_read_trials(path, &r->torn_bytes, err, errlen);
  if (!r->trials) goto fail;
  r->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (r->fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    goto fail;
  }
  if (r->torn_bytes) {
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
  int rc = xl_atomic_open(&a, path);
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
  double pre, dec;         /* sums over ok records */
  double pre_sd, dec_sd;   /* of the single record, when there is one */
  double rss;              /* max */
  int nok, nfail;
  int npre, ndec;          /* ok records that had each speed (a prefill-only run has no decode) */
  cJSON *slugs;
  cJSON *contexts;
} agg;

static int same_setting(const cJSON *a, const cJSON *b) {
  static const char *const k[] = {"chunk_size", "heads_per_band", "workers"};
  const char *ba = rec_str(a, "backend"), *bb = rec_str(b, "backend");
  if (!ba || !bb || strcmp(ba, bb)) return 0;
  for (int i = 0; i < 3; i++)
    if (num_or_nan(a, k[i]) != num_or_nan(b, k[i])) return 0;
  return 1;
}

static cJSON *params_of(const cJSON *rec) {
  cJSON *p = cJSON_CreateObject();
  const char *b = rec_str(rec, "backend");
  cJSON_AddStringToObject(p, "backend", b ? b : "chunkwise");
  cJSON_AddNumberToObject(p, "chunk_size", num_or_nan(rec, "chunk_size"));
  cJSON_AddNumberToObject(p, "heads_per_band", num_or_nan(rec, "heads_per_band"));
  cJSON_AddNumberToObject(p, "workers", num_or_nan(rec, "workers"));
  return p;
}

static void add_num(cJSON *o, const char *k, double v) {
  if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

/* Folds the records into one aggregate per setting (a needs room for every record);
 * returns how many settings. */
static size_t aggregate(const cJSON *trials, agg *a) {
  size_t na = 0;
  const cJSON *rec;
  cJSON_ArrayForEach(rec, trials) {
    if (!rec_str(rec, "backend")) continue;
    size_t k = 0;
    while (k < na && !same_setting(a[k].first, rec)) k++;
    if (k == na) {
      a[na].first = rec;
      a[na].slugs = cJSON_CreateArray();
      a[na].contexts = cJSON_CreateArray();
      a[na].rss = NAN;
      na++;
    }
    if (!is_ok(rec)) { a[k].nfail++; continue; }
    double p = num_or_nan(rec, "prefill_tok_s"), d = num_or_nan(rec, "decode_tok_s");
    a[k].pre += isfinite(p) ? p : 0;
    a[k].dec += isfinite(d) ? d : 0;
    a[k].npre += isfinite(p) != 0;
    a[k].ndec += isfinite(d) != 0;
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

cJSON *sw_best(const cJSON *trials, int objective) {
  size_t n = (size_t)cJSON_GetArraySize(trials);
  agg *a = xl_calloc(n ? n : 1, sizeof *a);
  size_t na = aggregate(trials, a);
  int most = 0;
  for (size_t k = 0; k < na; k++)
    if (!a[k].nfail && a[k].nok > most) most = a[k].nok;
  /* Candidates: complete settings. vals = (prefill, decode) means. */
  double *vals = xl_malloc(2 * (na ? na : 1) * sizeof *vals);
  unsigned char *elig = xl_calloc(na ? na : 1, 1), *front = xl_calloc(na ? na : 1, 1);
  double maxp = 0, maxd = 0;
  for (size_t k = 0; k < na; k++) {
    elig[k] = most > 0 && !a[k].nfail && a[k].nok == most;
    vals[2 * k] = a[k].nok ? a[k].pre / a[k].nok : NAN;
    vals[2 * k + 1] = a[k].nok ? a[k].dec / a[k].nok : NAN;
    if (elig[k]) {
      if (vals[2 * k] > maxp) maxp = vals[2 * k];
      if (vals[2 * k + 1] > maxd) maxd = vals[2 * k + 1];
    }
  }
  long best = -1;
  double bs = -INFINITY;
  if (objective == SW_OBJ_PARETO) {
    static const int max2[2] = {1, 1};
    pareto_front(vals, na, 2, max2, NULL, elig, front);
    for (size_t k = 0; k < na; k++) {
      if (!front[k]) continue;
      double s = (maxp > 0 ? vals[2 * k] / maxp : 0) * (maxd > 0 ? vals[2 * k + 1] / maxd : 0);
      if (s > bs) bs = s, best = (long)k;
    }
  } else {
    int o = objective == SW_OBJ_PREFILL ? 0 : 1;
    for (size_t k = 0; k < na; k++)
      if (elig[k] && vals[2 * k + o] > bs) bs = vals[2 * k + o], best = (long)k;
  }
  cJSON *out = NULL;
  if (best >= 0) {
    agg *b = &a[best];
    out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "params", params_of(b->first));
    cJSON *m = cJSON_AddObjectToObject(out, "metrics");
    add_num(m, "prefill_tok_s", b->npre ? vals[2 * best] : NAN);
    add_num(m, "decode_tok_s", b->ndec ? vals[2 * best + 1] : NAN);
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
    if (objective == SW_OBJ_PARETO) {
      cJSON *f = cJSON_AddArrayToObject(out, "front");
      for (size_t k = 0; k < na; k++) {
        if (!front[k]) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "params", params_of(a[k].first));
        add_num(e, "prefill_tok_s", vals[2 * k]);
        add_num(e, "decode_tok_s", vals[2 * k + 1]);
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
  free(vals);
  free(elig);
  free(front);
  return out;
}

int sw_run_write_best(sw_rundir *r, const char *profile_out, int *changed) {
  if (changed) *changed = 0;
  cJSON *b = sw_best(r->trials, r->objective);
  if (!b) return 0;
  char *text = cJSON_PrintUnformatted(b);
  int rc = 0;
  if (!r->last_best || strcmp(r->last_best, text)) {
    char *p1 = xl_path_join(r->dir, "best.json"), *p2 = xl_path_join(r->dir, "best_profile.json");
    /* The profile is what xl-prefill/xl-decode --profile read: params + metrics only. */
    cJSON *extra = cJSON_CreateObject();
    const cJSON *params = cJSON_GetObjectItem(b, "params");
    cJSON_AddItemToObject(extra, "metrics", cJSON_Duplicate(cJSON_GetObjectItem(b, "metrics"), 1));
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
