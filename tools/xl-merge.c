/* xl-merge: joins a sweep's speed measurements (summary.csv) with its quality
 * ratings (ratings.csv from the internal judge, ratings_ollama.csv from the external
 * one) on `slug`, computes the Pareto front per context length, and recommends one
 * profile per context length: the fastest front setting whose quality is within a
 * tolerance of the best measured. Outputs merged.csv, pareto.csv,
 * profile_ctx<N>.json and recommended.json (all atomic), one NDJSON summary line on
 * stdout, and its reasoning on stderr.
 * Not for: measuring anything or plotting (see xl-plot). */
#include "cli/version.h"
#include "io/csvtable.h"
#include "sweep/pareto.h"
#include "cli/settings.h"
#include "io/records.h"
#include "base/util.h"
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fputs(
      "Usage: xl-merge RUN_DIR [options]\n"
      "Join summary.csv with ratings on slug, find the Pareto front per context length\n"
      "and recommend a profile per context length.\n"
      "\n"
      "  --summary F            speed table (default RUN_DIR/summary.csv)\n"
      "  --ratings F            internal judge ratings (default RUN_DIR/ratings.csv if present)\n"
      "  --ratings-ollama F     external judge ratings (default RUN_DIR/ratings_ollama.csv if present)\n"
      "  --no-ratings           ignore ratings files found in RUN_DIR\n"
      "  --objectives LIST      e.g. prefill_tok_s:max,decode_tok_s:max,avg_logprob:max,peak_rss_mb:min\n"
      "                         (default: prefill_tok_s, decode_tok_s and the quality column, all max)\n"
      "  --quality COL          avg_logprob or overall (default: avg_logprob if rated, else overall)\n"
      "  --quality-tolerance X  how far below the best quality a pick may be\n"
      "                         (default 0.05 for avg_logprob, 0.5 for overall)\n"
      "  --objective decode|prefill  which speed the pick maximizes (default decode)\n"
      "  --profile-dir DIR      where profile_ctx<N>.json and recommended.json go (default: -o DIR)\n"
      "  -o DIR                 output directory (default RUN_DIR)\n"
      "  -h, --help             this help\n"
      "\n"
      "Outputs: merged.csv, pareto.csv, profile_ctx<N>.json, recommended.json.\n"
      "stdout: one NDJSON line with counts. Exit 0 ok, 1 data error, 2 usage error.\n",
      f);
}

/* How one ratings file joined. */
typedef struct {
  const char *label;    /* "ratings" or "ratings_ollama" */
  const char *path;
  size_t rows;          /* rows in the file */
  size_t joined;        /* summary rows that got a rating */
  size_t unrated;       /* summary rows without one */
  size_t orphans;       /* rating rows whose slug is not in the summary */
  size_t judge_failed;  /* rating rows skipped because their status is not ok */
} join_stats;

/* Prints at most a handful of slugs after a message. */
static void report_slugs(const char *msg, const char **slugs, size_t n) {
  if (!n) return;
  char buf[1024];
  size_t k = 0;
  k += snprintf(buf, sizeof buf, "%s", msg);
  for (size_t i = 0; i < n && i < 12 && k < sizeof buf - 64; i++)
    k += snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : " ", slugs[i]);
  if (n > 12 && k < sizeof buf) snprintf(buf + k, sizeof buf - k, ", ... (%zu more)", n - 12);
  xl_warn("%s", buf);
}

static int rating_usable(const csvt *r, size_t row, int status_col) {
  if (status_col < 0) return 1;
  const char *s = csvt_get(r, row, status_col);
  return !*s || !strcmp(s, "ok");
}

/* Adds the columns of r (all but slug) to m, prefixed with prefix when the name is
 * taken, and fills them from the first usable row of r with the same slug. */
static void join_ratings(csvt *m, const csvt *r, const char *prefix, join_stats *st) {
  int mslug = csvt_col(m, "slug"), rslug = csvt_col(r, "slug");
  if (rslug < 0) xl_die("%s: no 'slug' column (cannot join on slug)", st->path);
  /* A judge that failed on an output gives no score: leave the row unrated. */
  int rstatus = strcmp(st->label, "ratings_ollama") ? -1 : csvt_col(r, "status");
  st->rows = r->nrows;
  size_t *map = xl_malloc((r->ncols ? r->ncols : 1) * sizeof *map);
  for (size_t c = 0; c < r->ncols; c++) {
    if ((int)c == rslug) continue;
    char name[256];
    snprintf(name, sizeof name, "%s", r->header[c]);
    while (csvt_col(m, name) >= 0) {
      char tmp[256];
      snprintf(tmp, sizeof tmp, "%s%s", prefix, name);
      memcpy(name, tmp, sizeof name);
    }
    map[c] = csvt_add_col(m, name);
  }
  const char **list = xl_malloc((m->nrows + r->nrows + 1) * sizeof *list);
  size_t nlist = 0;
  for (size_t i = 0; i < m->nrows; i++) {
    const char *slug = csvt_get(m, i, mslug);
    long hit = -1;
    for (size_t j = 0; j < r->nrows && hit < 0; j++)
      if (!strcmp(csvt_get(r, j, rslug), slug) && rating_usable(r, j, rstatus)) hit = (long)j;
    if (hit < 0) { list[nlist++] = slug; st->unrated++; continue; }
    st->joined++;
    for (size_t c = 0; c < r->ncols; c++)
      if ((int)c != rslug) csvt_set(m, i, map[c], csvt_get(r, (size_t)hit, (int)c));
  }
  char msg[512];
  snprintf(msg, sizeof msg, "%zu summary row(s) have no rating in %s:", nlist, st->path);
  report_slugs(msg, list, nlist);

  nlist = 0;
  size_t ndup = 0;
  for (size_t j = 0; j < r->nrows; j++) {
    const char *slug = csvt_get(r, j, rslug);
    if (!rating_usable(r, j, rstatus)) { st->judge_failed++; continue; }
    int seen = 0, dup = 0;
    for (size_t i = 0; i < m->nrows && !seen; i++) seen = !strcmp(csvt_get(m, i, mslug), slug);
    for (size_t k = 0; k < j && !dup; k++) dup = !strcmp(csvt_get(r, k, rslug), slug) && rating_usable(r, k, rstatus);
    if (dup) ndup++;
    if (!seen) { list[nlist++] = slug; st->orphans++; }
  }
  snprintf(msg, sizeof msg, "%zu row(s) of %s have no trial in the summary:", nlist, st->path);
  report_slugs(msg, list, nlist);
  if (ndup) xl_warn("%s: %zu duplicate slug(s); the first rating of each was used", st->path, ndup);
  if (st->judge_failed) xl_warn("%s: %zu rating(s) with a status other than ok were ignored", st->path, st->judge_failed);
  free(list);
  free(map);
}

/* A column's cells as doubles, NaN when missing (or when the column is absent). */
static double *column_values(const csvt *t, int col) {
  double *v = xl_malloc((t->nrows ? t->nrows : 1) * sizeof *v);
  for (size_t i = 0; i < t->nrows; i++)
    if (csvt_num(t, i, col, &v[i])) v[i] = NAN;
  return v;
}

/* Adds a cell as a JSON number when it parses, a string when it does not, and
 * nothing when it is empty. */
static void json_add_cell(cJSON *o, const char *key, const csvt *t, size_t row, int col, int as_number) {
  const char *s = csvt_get(t, row, col);
  double v;
  if (col < 0) return;
  if (as_number && !xl_parse_double(s, -1e308, 1e308, &v)) cJSON_AddNumberToObject(o, key, v);
  else if (as_number && !*s) cJSON_AddNullToObject(o, key);
  else if (*s) cJSON_AddStringToObject(o, key, s);
}

static void write_json(const char *path, const cJSON *j) {
  if (rec_json_save(path, j)) xl_die("%s: %s", path, strerror(errno));
}

/* Keeps a file-name fragment to [A-Za-z0-9._-]. */
static void sanitize(char *dst, size_t n, const char *src) {
  const char *base = strrchr(src, '/');
  base = base ? base + 1 : src;
  size_t k = 0;
  for (; *base && k + 1 < n; base++) {
    char c = *base;
    if (c == '.') break;  /* drop the extension */
    dst[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ? c : '_';
  }
  dst[k] = 0;
}

/* Everything computed from the merged table that the outputs need. */
typedef struct {
  csvt m;                  /* merged table */
  size_t n;                /* rows */
  unsigned char *ok;       /* [n] status ok */
  unsigned char *front;    /* [n] on the front of its group */
  int *group;              /* [n] context group */
  pareto_group *groups;    /* [ngroups], first-seen order */
  size_t ngroups, nok, nfront;
  int several_files;       /* groups differ by prompt_file, not only length */
  int cpf;                 /* prompt_file column or -1 */
  const char *quality;     /* quality column or NULL */
  const char *speed_col;   /* what a pick maximizes */
  double tolerance;
  double *speed, *qual;    /* [n], NaN missing; qual NULL without quality */
  pareto_obj objs[PARETO_MAX_OBJ];
  int nobj;
} merge_state;

/* Quality: the one asked for, else the internal judge's, else the external one's. */
static const char *choose_quality(const csvt *m, const char *opt) {
  if (opt) {
    if (csvt_col(m, opt) < 0)
      xl_die("--quality %s: no such column after the join (is %s given?)", opt,
             !strcmp(opt, "overall") ? "ratings_ollama.csv" : "ratings.csv");
    return opt;
  }
  const char *q = pareto_quality_column(m);
  if (q) return q;
  if (csvt_col(m, "avg_logprob") >= 0 || csvt_col(m, "overall") >= 0) xl_warn("no quality value joined (avg_logprob/overall all empty): the front uses speed only");
  return NULL;
}

/* Eligibility (status ok), context groups and the front per group. */
static void compute_front(merge_state *s) {
  csvt *m = &s->m;
  size_t n = s->n = m->nrows, k = (size_t)s->nobj;
  double *vals = xl_malloc((n ? n : 1) * k * sizeof *vals);
  int dirs[PARETO_MAX_OBJ];
  for (size_t j = 0; j < k; j++) {
    dirs[j] = s->objs[j].maximize;
    double *col = column_values(m, csvt_col(m, s->objs[j].name));
    for (size_t i = 0; i < n; i++) vals[i * k + j] = col[i];
    free(col);
  }
  int cstatus = csvt_col(m, "status");
  s->cpf = csvt_col(m, "prompt_file");
  s->ok = xl_malloc(n ? n : 1);
  s->front = xl_malloc(n ? n : 1);
  s->group = xl_malloc((n ? n : 1) * sizeof *s->group);
  s->groups = xl_malloc((n ? n : 1) * sizeof *s->groups);
  for (size_t i = 0; i < n; i++) {
    s->ok[i] = cstatus < 0 || !strcmp(csvt_get(m, i, cstatus), "ok");
    s->nok += s->ok[i];
  }
  s->ngroups = pareto_group_table(m, NULL, s->group, s->groups);
  for (size_t g = 1; g < s->ngroups; g++) s->several_files |= strcmp(s->groups[g].pfile, s->groups[0].pfile) != 0;
  s->nfront = pareto_front(vals, n, k, dirs, s->group, s->ok, s->front);
  s->speed = column_values(m, csvt_col(m, s->speed_col));
  s->qual = s->quality ? column_values(m, csvt_col(m, s->quality)) : NULL;
  free(vals);
}

/* Picks group g's profile, says why on stderr, writes profile_ctx<N>.json into
 * profile_dir and returns its JSON (with "file"), or NULL if the group has no pick. */
static cJSON *make_profile(const merge_state *s, size_t g, const char *profile_dir) {
  static const char *param_cols[] = {"backend", "chunk_size", "heads_per_band", "workers"};
  static const char *metric_cols[] = {"prefill_tok_s", "decode_tok_s", "prefill_tok_s_sd", "decode_tok_s_sd",
                                      "peak_rss_mb", "prompt_tokens", "new_tokens", "avg_logprob", "ppl", "overall"};
  const csvt *m = &s->m;
  const pareto_group *gi = &s->groups[g];
  char ctxlabel[64], where[384];
  if (isnan(gi->ctx)) snprintf(ctxlabel, sizeof ctxlabel, "unknown");
  else snprintf(ctxlabel, sizeof ctxlabel, "%.0f", gi->ctx);
  snprintf(where, sizeof where, "%s%s%.300s", ctxlabel, s->several_files ? " " : "", s->several_files ? gi->pfile : "");
  pareto_pick pk;
  long r = pareto_recommend(s->speed, s->qual, s->front, s->ok, s->group, (int)g, s->n, s->tolerance, &pk);
  if (r < 0) {
    xl_warn("context %s: no profile: no successful trial has every objective measured", where);
    return NULL;
  }
  const char *slug = csvt_get(m, (size_t)r, csvt_col(m, "slug"));
  char reason[768];
  if (!s->qual || isnan(pk.best_quality))
    snprintf(reason, sizeof reason, "fastest %s on the Pareto front (%.4g tok/s, %zu front setting(s)); no quality was measured",
             s->speed_col, s->speed[r], pk.nfront);
  else if (pk.within)
    snprintf(reason, sizeof reason,
             "fastest %s on the Pareto front (%.4g tok/s) among %zu of %zu front setting(s) whose %s is within %g of the best measured (%.4g); this one has %.4g",
             s->speed_col, s->speed[r], pk.ncand, pk.nfront, s->quality, s->tolerance, pk.best_quality, s->qual[r]);
  else
    snprintf(reason, sizeof reason,
             "no front setting has %s within %g of the best measured (%.4g); chose the front setting with the best %s (%.4g, %.4g tok/s)",
             s->quality, s->tolerance, pk.best_quality, s->quality, s->qual[r], s->speed[r]);
  xl_warn("context %s: recommend %s: %s", where, slug, reason);

  cJSON *p = cJSON_CreateObject();
  cJSON *params = cJSON_AddObjectToObject(p, "params");
  for (size_t k = 0; k < sizeof param_cols / sizeof *param_cols; k++)
    json_add_cell(params, param_cols[k], m, (size_t)r, csvt_col(m, param_cols[k]), k > 0);
  cJSON *metrics = cJSON_AddObjectToObject(p, "metrics");
  for (size_t k = 0; k < sizeof metric_cols / sizeof *metric_cols; k++)
    json_add_cell(metrics, metric_cols[k], m, (size_t)r, csvt_col(m, metric_cols[k]), 1);
  for (int k = 0; k < s->nobj; k++)
    if (!cJSON_GetObjectItemCaseSensitive(metrics, s->objs[k].name))
      json_add_cell(metrics, s->objs[k].name, m, (size_t)r, csvt_col(m, s->objs[k].name), 1);
  if (isnan(gi->ctx)) cJSON_AddNullToObject(p, "context");
  else cJSON_AddNumberToObject(p, "context", gi->ctx);
  if (s->cpf >= 0) cJSON_AddStringToObject(p, "prompt_file", gi->pfile);
  cJSON_AddStringToObject(p, "slug", slug);
  json_add_cell(p, "trial", m, (size_t)r, csvt_col(m, "trial"), 1);
  cJSON_AddStringToObject(p, "reason", reason);
  cJSON *sel = cJSON_AddObjectToObject(p, "selection");
  cJSON_AddStringToObject(sel, "speed", s->speed_col);
  if (s->quality) cJSON_AddStringToObject(sel, "quality", s->quality); else cJSON_AddNullToObject(sel, "quality");
  cJSON_AddNumberToObject(sel, "tolerance", s->tolerance);
  if (isnan(pk.best_quality)) cJSON_AddNullToObject(sel, "best_quality");
  else cJSON_AddNumberToObject(sel, "best_quality", pk.best_quality);
  cJSON_AddNumberToObject(sel, "front_size", (double)pk.nfront);
  cJSON_AddNumberToObject(sel, "candidates", (double)pk.ncand);
  cJSON_AddBoolToObject(sel, "within_tolerance", pk.within);

  char fname[256], pfx[96] = "";
  if (s->several_files && *gi->pfile) {
    char b[80];
    sanitize(b, sizeof b, gi->pfile);
    snprintf(pfx, sizeof pfx, "_%s", b);
  }
  snprintf(fname, sizeof fname, "profile_ctx%s%s.json", ctxlabel, pfx);
  char *ppath = xl_path_join(profile_dir, fname);
  char perr[1024];
  if (xl_settings_write_profile(ppath, cJSON_GetObjectItemCaseSensitive(p, "params"), p, perr, sizeof perr)) xl_die("%s", perr);
  free(ppath);
  cJSON_AddStringToObject(p, "file", fname);
  return p;
}

/* recommended.json: the selection rule and every profile, in order of context length. */
static size_t write_recommended(const merge_state *s, const char *run_dir, const char *profile_dir, const char *rec_path) {
  cJSON *rec = cJSON_CreateObject();
  cJSON_AddStringToObject(rec, "run_dir", run_dir);
  cJSON_AddStringToObject(rec, "speed", s->speed_col);
  if (s->quality) cJSON_AddStringToObject(rec, "quality", s->quality); else cJSON_AddNullToObject(rec, "quality");
  cJSON_AddNumberToObject(rec, "tolerance", s->tolerance);
  cJSON *jobjs = cJSON_AddArrayToObject(rec, "objectives");
  for (int k = 0; k < s->nobj; k++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", s->objs[k].name);
    cJSON_AddStringToObject(o, "direction", s->objs[k].maximize ? "max" : "min");
    cJSON_AddItemToArray(jobjs, o);
  }
  cJSON *profiles = cJSON_AddArrayToObject(rec, "profiles");
  size_t ng = s->ngroups, nprofiles = 0;
  size_t *order = xl_malloc((ng ? ng : 1) * sizeof *order);
  pareto_group_order(s->groups, ng, order);
  for (size_t oi = 0; oi < ng; oi++) {
    cJSON *p = make_profile(s, order[oi], profile_dir);
    if (p) { cJSON_AddItemToArray(profiles, p); nprofiles++; }
  }
  write_json(rec_path, rec);
  cJSON_Delete(rec);
  free(order);
  return nprofiles;
}

typedef struct {
  const char *run_dir, *summary_path, *ratings_path, *ollama_path;
  const char *objectives_spec, *quality_opt, *speed_col, *profile_dir, *out_dir;
  double tolerance;   /* NaN: the quality measure's default */
  char *own[3];       /* default paths made here */
} merge_opts;

static void parse_args(int argc, char **argv, merge_opts *o) {
  const char *speed_opt = "decode";
  int no_ratings = 0;
  memset(o, 0, sizeof *o);
  o->tolerance = NAN;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); xl_finish_stdout(); exit(0); }
    else if ((v = xl_flag_value(argc, argv, &i, "--summary"))) o->summary_path = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--ratings"))) o->ratings_path = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--ratings-ollama"))) o->ollama_path = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--objectives"))) o->objectives_spec = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--quality"))) o->quality_opt = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--quality-tolerance"))) o->tolerance = xl_flag_double("--quality-tolerance", v, 0, 1e9);
    else if ((v = xl_flag_value(argc, argv, &i, "--objective"))) speed_opt = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--profile-dir"))) o->profile_dir = v;
    else if ((v = xl_flag_value(argc, argv, &i, "-o"))) o->out_dir = v;
    else if (!strcmp(argv[i], "--no-ratings")) no_ratings = 1;
    else if (argv[i][0] == '-' && argv[i][1]) xl_usage_error("unknown option '%s'", argv[i]);
    else if (!o->run_dir) o->run_dir = argv[i];
    else xl_usage_error("unexpected argument '%s'", argv[i]);
  }
  if (!o->run_dir) xl_usage_error("missing RUN_DIR");
  if (o->quality_opt && strcmp(o->quality_opt, "avg_logprob") && strcmp(o->quality_opt, "overall"))
    xl_usage_error("--quality must be avg_logprob or overall, not '%s'", o->quality_opt);
  if (strcmp(speed_opt, "decode") && strcmp(speed_opt, "prefill"))
    xl_usage_error("--objective must be decode or prefill, not '%s'", speed_opt);
  o->speed_col = !strcmp(speed_opt, "prefill") ? "prefill_tok_s" : "decode_tok_s";
  /* the run directory's files by default; a ratings file only when it is there */
  if (!o->summary_path) o->summary_path = o->own[0] = xl_path_join(o->run_dir, "summary.csv");
  if (!o->ratings_path && !no_ratings) {
    o->own[1] = xl_path_join(o->run_dir, "ratings.csv");
    if (xl_exists(o->own[1])) o->ratings_path = o->own[1];
  }
  if (!o->ollama_path && !no_ratings) {
    o->own[2] = xl_path_join(o->run_dir, "ratings_ollama.csv");
    if (xl_exists(o->own[2])) o->ollama_path = o->own[2];
  }
  if (!o->out_dir) o->out_dir = o->run_dir;
  if (!o->profile_dir) o->profile_dir = o->out_dir;
}

/* The objectives of the front: --objectives, else both speeds and the quality measure.
 * spec gets the list used. */
static void set_objectives(merge_state *s, const merge_opts *o, char *spec, size_t n) {
  char err[512];
  if (o->objectives_spec) snprintf(spec, n, "%s", o->objectives_spec);
  else if (s->quality) snprintf(spec, n, "prefill_tok_s:max,decode_tok_s:max,%s:max", s->quality);
  else snprintf(spec, n, "prefill_tok_s:max,decode_tok_s:max");
  s->nobj = pareto_parse_objectives(spec, s->objs, PARETO_MAX_OBJ, err, sizeof err);
  if (s->nobj < 0) xl_usage_error("--objectives: %s", err);
  for (int k = 0; k < s->nobj; k++)
    if (csvt_col(&s->m, s->objs[k].name) < 0) xl_die("objective '%s' is not a column of the merged table", s->objs[k].name);
  if (csvt_col(&s->m, s->speed_col) < 0) xl_die("%s: no '%s' column", o->summary_path, s->speed_col);
}

/* The one-line summary for scripts. */
static void print_summary(const merge_state *s, const join_stats *js, const char *spec, const char *paths[3],
                          size_t nprofiles) {
  cJSON *sum = cJSON_CreateObject();
  cJSON_AddStringToObject(sum, "merged", paths[0]);
  cJSON_AddStringToObject(sum, "pareto", paths[1]);
  cJSON_AddStringToObject(sum, "recommended", paths[2]);
  cJSON_AddNumberToObject(sum, "rows", (double)s->n);
  cJSON_AddNumberToObject(sum, "ok_rows", (double)s->nok);
  for (int k = 0; k < 2; k++) {
    if (!js[k].path) { cJSON_AddNullToObject(sum, js[k].label); continue; }
    cJSON *o = cJSON_AddObjectToObject(sum, js[k].label);
    cJSON_AddStringToObject(o, "file", js[k].path);
    cJSON_AddNumberToObject(o, "rows", (double)js[k].rows);
    cJSON_AddNumberToObject(o, "joined", (double)js[k].joined);
    cJSON_AddNumberToObject(o, "summary_unrated", (double)js[k].unrated);
    cJSON_AddNumberToObject(o, "unmatched", (double)js[k].orphans);
    cJSON_AddNumberToObject(o, "judge_failed", (double)js[k].judge_failed);
  }
  if (s->quality) cJSON_AddStringToObject(sum, "quality", s->quality); else cJSON_AddNullToObject(sum, "quality");
  cJSON_AddStringToObject(sum, "objectives", spec);
  cJSON_AddNumberToObject(sum, "contexts", (double)s->ngroups);
  cJSON_AddNumberToObject(sum, "pareto_rows", (double)s->nfront);
  cJSON_AddNumberToObject(sum, "profiles", (double)nprofiles);
  char *line = cJSON_PrintUnformatted(sum);
  printf("%s\n", line);
  free(line);
  cJSON_Delete(sum);
}

int main(int argc, char **argv) {
  xl_version_if_asked(argc, argv, "xl-merge");
  xl_set_progname(argv[0]);
  merge_opts o;
  parse_args(argc, argv, &o);
  if (xl_mkdirs(o.out_dir)) xl_die("%s: %s", o.out_dir, strerror(errno));
  if (xl_mkdirs(o.profile_dir)) xl_die("%s: %s", o.profile_dir, strerror(errno));

  char err[1024];
  csvt m;
  if (csvt_read(&m, o.summary_path, err, sizeof err)) xl_die("%s", err);
  if (csvt_col(&m, "slug") < 0) xl_die("%s: no 'slug' column (cannot join on slug)", o.summary_path);
  join_stats js[2] = {{.label = "ratings", .path = o.ratings_path}, {.label = "ratings_ollama", .path = o.ollama_path}};
  const char *prefixes[2] = {"ratings_", "ollama_"};
  for (int k = 0; k < 2; k++) {
    if (!js[k].path) continue;
    csvt r;
    if (csvt_read(&r, js[k].path, err, sizeof err)) xl_die("%s", err);
    join_ratings(&m, &r, prefixes[k], &js[k]);
    csvt_free(&r);
  }

  merge_state s = {.m = m, .speed_col = o.speed_col};
  s.quality = choose_quality(&s.m, o.quality_opt);
  s.tolerance = !isnan(o.tolerance) ? o.tolerance : s.quality && !strcmp(s.quality, "overall") ? 0.5 : 0.05;
  char spec[512];
  set_objectives(&s, &o, spec, sizeof spec);
  compute_front(&s);

  char *merged_path = xl_path_join(o.out_dir, "merged.csv");
  char *pareto_path = xl_path_join(o.out_dir, "pareto.csv");
  char *rec_path = xl_path_join(o.profile_dir, "recommended.json");
  if (csvt_write(&s.m, merged_path)) xl_die("%s: %s", merged_path, strerror(errno));
  if (csvt_write_rows(&s.m, pareto_path, s.front)) xl_die("%s: %s", pareto_path, strerror(errno));
  size_t nprofiles = write_recommended(&s, o.run_dir, o.profile_dir, rec_path);
  print_summary(&s, js, spec, (const char *[3]){merged_path, pareto_path, rec_path}, nprofiles);

  free(rec_path); free(merged_path); free(pareto_path);
  free(s.speed); free(s.qual); free(s.ok); free(s.front); free(s.group); free(s.groups);
  csvt_free(&s.m);
  for (int k = 0; k < 3; k++) free(o.own[k]);
  xl_finish_stdout();
  return 0;
}
