/* xl-merge: joins a sweep's speed measurements (summary.csv) with its quality
 * ratings (ratings.csv from the internal judge, ratings_ollama.csv from the external
 * one) on `slug`, compares every setting's quality with the reference output (the
 * setting with the default precision, device and sampling: fp32 greedy on the CPU) pair
 * by pair over the samples xl-save made, computes the Pareto front per context length
 * and recommends one profile per context length, all noise-aware (lib/sweep/choose.h):
 * a difference counts only where its 95% intervals separate (or the paired test says
 * so), a setting is never ranked by a measurement its knobs cannot change, and of
 * settings that tie the simpler wins. Outputs merged.csv, pareto.csv, quality.csv,
 * profile_ctx<N>.json and recommended.json (all atomic), one NDJSON summary line on
 * stdout, and its reasoning on stderr.
 * Not for: measuring anything or plotting (see xl-plot). */
#include "engine/blasenv.h"
#include "cli/version.h"
#include "io/csvtable.h"
#include "sweep/choose.h"
#include "sweep/stats.h"
#include "sweep/sweep_trial.h"
#include "sweep/pareto.h"
#include "sweep/tables.h"
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
      "Join summary.csv with ratings on slug, compare every setting's output quality with the\n"
      "reference output, find the Pareto front per context length and recommend a profile per\n"
      "context length; every comparison is noise-aware.\n"
      "\n"
      "  --summary F            speed table (default RUN_DIR/summary.csv)\n"
      "  --ratings F            internal judge ratings (default RUN_DIR/ratings.csv if present)\n"
      "  --ratings-ollama F     external judge ratings (default RUN_DIR/ratings_ollama.csv if present)\n"
      "  --outputs F            the saved outputs, for greedy agreement (default RUN_DIR/outputs.jsonl\n"
      "                         if present)\n"
      "  --no-ratings           ignore ratings files found in RUN_DIR\n"
      "  --objectives LIST      e.g. prefill_tok_s:max,decode_tok_s:max,avg_logprob:max,peak_rss_mb:min\n"
      "                         (default: prefill_tok_s, decode_tok_s and the quality column, all max)\n"
      "  --quality COL          avg_logprob or overall (default: avg_logprob if rated, else overall)\n"
      "  --quality-tolerance X  how far below the best quality a pick may be\n"
      "                         (default 0.05 for avg_logprob, 0.5 for overall)\n"
      "  --objective decode|prefill  which speed the pick maximizes (default decode)\n"
      "  --profile-dir DIR      where profile_ctx<N>.json and recommended.json go (default: -o DIR)\n"
      "  -o, --output DIR       output directory (default RUN_DIR)\n"
      "  -h, --help             this help\n"
      "\n"
      "Noise: a speed's 95% interval comes from its _ci95 column (else its _sd and repeats);\n"
      "two settings whose intervals overlap tie; two interleaved in one batch of the sweep\n"
      "(_batch) are compared round by round (a paired test of their runs, _tok_s_runs), so\n"
      "drift of the machine that hit both alike cancels. Quality: a trial's samples (xl-save --samples:\n"
      "ratings of SLUG and SLUG__s=k) are compared pair by pair (mean difference and its 95%\n"
      "interval); one sample gives no interval. Knobs: a measurement is never used to rank\n"
      "settings that differ only in knobs that cannot change it (the settings table's\n"
      "\"affects\": chunk size and backend cannot change decode speed or the output). Ties go to\n"
      "the simpler setting (fewer knobs away from the defaults, run_meta.json \"defaults\").\n"
      "\n"
      "Outputs: merged.csv (every summary row; + front, dominated_by, tied_with, vs_recommended,\n"
      "the quality's _n/_sd/_ci95 and its paired comparison with the reference), pareto.csv (the\n"
      "front rows), quality.csv (per context and output setting: the paired comparison with the\n"
      "reference and greedy agreement), profile_ctx<N>.json, recommended.json.\n"
      "Input tables are read strictly: a row with fewer or more cells than its header is an\n"
      "error naming the file and line (never padded into a row of its own).\n"
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
  size_t samples;       /* rating rows of a summary row's further samples (SLUG__s=k) */
} join_stats;

/* k >= 1 when slug is "BASE__s=k" (*base_len = the length of BASE), else 0. */
static long sample_of(const char *slug, size_t *base_len) {
  const char *p = strstr(slug, "__s=");
  long k = 0;
  while (p) {
    const char *next = strstr(p + 4, "__s=");
    if (!next) break;
    p = next;
  }
  if (!p || xl_parse_long(p + 4, 1, 1000000, &k)) return 0;
  *base_len = (size_t)(p - slug);
  return k;
}

/* The summary row whose slug is the first n bytes of slug, or -1. */
static long row_of(const csvt *m, int mslug, const char *slug, size_t n) {
  for (size_t i = 0; i < m->nrows; i++) {
    const char *s = csvt_get(m, i, mslug);
    if (strlen(s) == n && !strncmp(s, slug, n)) return (long)i;
  }
  return -1;
}

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
    size_t bl;
    if (!seen && sample_of(slug, &bl) && row_of(m, mslug, slug, bl) >= 0) { st->samples++; continue; }
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

/* ------------------------------------------------------------------ quality samples */

/* Each summary row's quality samples: sample 0 is its own rating, sample k its
 * SLUG__s=k rating (xl-save --samples). */
typedef struct {
  double *v;      /* [nrows * K], NaN where missing */
  size_t K;       /* samples per row (the largest k + 1 seen) */
} samples_t;

static void collect_samples(const csvt *m, const csvt *r, const char *label, const char *qcol, samples_t *S) {
  int mslug = csvt_col(m, "slug"), rslug = csvt_col(r, "slug"), rq = csvt_col(r, qcol);
  int rstatus = strcmp(label, "ratings_ollama") ? -1 : csvt_col(r, "status");
  if (rq < 0) return;
  size_t K = 1;
  for (size_t j = 0; j < r->nrows; j++) {
    size_t bl;
    long k = sample_of(csvt_get(r, j, rslug), &bl);
    if (k > 0 && (size_t)k + 1 > K && k < 4096) K = (size_t)k + 1;
  }
  free(S->v);
  S->K = K;
  S->v = xl_malloc((m->nrows ? m->nrows : 1) * K * sizeof *S->v);
  for (size_t i = 0; i < m->nrows * K; i++) S->v[i] = NAN;
  for (size_t j = 0; j < r->nrows; j++) {
    if (!rating_usable(r, j, rstatus)) continue;
    const char *slug = csvt_get(r, j, rslug);
    size_t bl = strlen(slug);
    long k = sample_of(slug, &bl);
    if (k >= (long)K) continue;
    long i = row_of(m, mslug, slug, k ? bl : strlen(slug));
    double q;
    if (i < 0 || csvt_num(r, j, rq, &q)) continue;
    double *cell = &S->v[(size_t)i * K + (size_t)k];
    if (isnan(*cell)) *cell = q;   /* the first rating of a slug, as the join */
  }
}

/* The token ids of every saved output (outputs.jsonl), by slug. */
typedef struct {
  cJSON *rows;    /* array of the lines */
} outputs_t;

static const cJSON *output_ids(const outputs_t *o, const char *slug) {
  const cJSON *it;
  cJSON_ArrayForEach(it, o->rows) {
    const char *s = rec_str(it, "slug");
    if (s && !strcmp(s, slug)) return cJSON_GetObjectItemCaseSensitive(it, "token_ids");
  }
  return NULL;
}

/* How much of b's tokens a reproduces from the start: the common prefix over b's length. */
static double agreement(const cJSON *a, const cJSON *b, int *identical) {
  int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b), k = 0;
  const cJSON *x = a ? a->child : NULL, *y = b ? b->child : NULL;
  while (x && y && x->valuedouble == y->valuedouble) k++, x = x->next, y = y->next;
  *identical = na == nb && k == na;
  return nb ? (double)k / nb : (na ? 0 : 1);
}

/* ------------------------------------------------------------------ state */

/* Everything computed from the merged table that the outputs need. */
typedef struct {
  csvt m;                  /* merged table */
  size_t n;                /* rows */
  unsigned char *ok;       /* [n] status ok */
  unsigned char *front;    /* [n] on the front of its group (ties collapsed) */
  long *dom, *tied;        /* [n] a row dominating it / the front row it ties with, -1 */
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
  /* noise-aware choice */
  sw_setting *set;         /* [n] each row's setting */
  sw_setting defaults;
  st_interval *iv;         /* [n * nobj] */
  unsigned affects[PARETO_MAX_OBJ];
  int maximize[PARETO_MAX_OBJ];
  int speed_obj, quality_obj;   /* objective indices, -1 when not an objective */
  samples_t qs;            /* quality samples */
  long *ref;               /* [n] the group's reference row, -1 */
  long *pick;              /* [ngroups] the recommended row, -1 */
  int spread_unknown;      /* some speed had no interval: its differences are ties */
  int *all_identical;      /* [ngroups] every rated output of the group is the same */
  double **runs[PARETO_MAX_OBJ];   /* [nobj][n] a speed's timed runs (NULL: none) */
  size_t *nruns[PARETO_MAX_OBJ];
  long *batch[PARETO_MAX_OBJ];     /* [nobj][n] the interleaved batch they ran in, 0 none */
  ch_table t;
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

/* What can move an objective: the speeds and the output's quality by the settings table's
 * "affects"; anything else (memory, ...) by any knob. */
static unsigned affects_of(const char *obj, const char *quality) {
  if (!strcmp(obj, "prefill_tok_s") || !strcmp(obj, "prefill_s")) return XS_AFFECTS_PREFILL;
  if (!strcmp(obj, "decode_tok_s") || !strcmp(obj, "decode_s")) return XS_AFFECTS_DECODE;
  static const char *const q[] = {"avg_logprob", "ppl", "overall", "coherence", "relevance", "fluency", "distinct2", "distinct3"};
  for (size_t k = 0; k < sizeof q / sizeof *q; k++)
    if (!strcmp(obj, q[k])) return XS_AFFECTS_OUTPUT;
  if (quality && !strcmp(obj, quality)) return XS_AFFECTS_OUTPUT;
  return 0;
}

static void set_cell_num(csvt *m, size_t row, const char *col, double v) {
  int c = csvt_col(m, col);
  if (c < 0) c = (int)csvt_add_col(m, col);
  char buf[40] = "";
  if (isfinite(v)) rec_format_number(buf, sizeof buf, v);
  csvt_set(m, row, (size_t)c, buf);
}

static void set_cell(csvt *m, size_t row, const char *col, const char *v) {
  int c = csvt_col(m, col);
  if (c < 0) c = (int)csvt_add_col(m, col);
  csvt_set(m, row, (size_t)c, v ? v : "");
}

/* The 95% interval of column col in row i (pareto_ci95); NaN bounds when unknown. */
static st_interval interval_of(const csvt *m, size_t i, const char *col) {
  double mean;
  if (csvt_num(m, i, csvt_col(m, col), &mean)) return (st_interval){NAN, NAN, NAN};
  return st_interval_of(mean, pareto_ci95(m, i, col));
}

/* Objective j's timed runs and batch, when it is a speed the sweep recorded them for
 * (<what>_tok_s_runs, <what>_batch). */
static void read_runs(merge_state *s, size_t j) {
  const char *name = s->objs[j].name;
  if (strcmp(name, "prefill_tok_s") && strcmp(name, "decode_tok_s")) return;
  char rc[96], bc[96];
  snprintf(rc, sizeof rc, "%s_runs", name);
  snprintf(bc, sizeof bc, "%.*s_batch", (int)strcspn(name, "_"), name);
  int cr = csvt_col(&s->m, rc), cb = csvt_col(&s->m, bc);
  if (cr < 0 || cb < 0) return;
  s->runs[j] = xl_calloc(s->n ? s->n : 1, sizeof *s->runs[j]);
  s->nruns[j] = xl_calloc(s->n ? s->n : 1, sizeof *s->nruns[j]);
  s->batch[j] = xl_calloc(s->n ? s->n : 1, sizeof *s->batch[j]);
  for (size_t i = 0; i < s->n; i++) {
    double b;
    cJSON *arr = cJSON_Parse(csvt_get(&s->m, i, cr));
    if (cJSON_IsArray(arr) && !csvt_num(&s->m, i, cb, &b) && b > 0) {
      size_t k = 0, na = (size_t)cJSON_GetArraySize(arr);
      s->runs[j][i] = xl_malloc((na ? na : 1) * sizeof(double));
      const cJSON *x;
      cJSON_ArrayForEach(x, arr) s->runs[j][i][k++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
      s->nruns[j][i] = k;
      s->batch[j][i] = (long)b;
    }
    cJSON_Delete(arr);
  }
}

/* The comparisons that replace the intervals' (choose.h cmp): quality, pair by pair over the
 * samples; a speed, round by round when both were interleaved in one batch. */
static int quality_cmp(void *ctx, size_t a, size_t b, size_t j) {
  merge_state *s = ctx;
  if ((int)j != s->quality_obj && s->runs[j]) {
    int v = st_cmp_rounds(s->runs[j][a], s->nruns[j][a], s->batch[j][a], s->runs[j][b], s->nruns[j][b], s->batch[j][b]);
    return v == 2 ? 2 : s->maximize[j] ? v : -v;
  }
  if ((int)j != s->quality_obj || !s->qs.v) return 2;
  const double *qa = &s->qs.v[a * s->qs.K], *qb = &s->qs.v[b * s->qs.K];
  int v;
  st_summary d = st_paired(qa, qb, s->qs.K, &v);
  if (d.n >= 1 && d.mean == 0 && (d.n == 1 || d.sd == 0)) return 0;   /* the same scores: the same output */
  if (d.n < 2) return 2;
  return s->maximize[j] ? v : -v;
}

/* Rows' settings, from the knob columns of the merged table. */
static void read_settings(merge_state *s, const char *run_dir) {
  s->set = xl_calloc(s->n ? s->n : 1, sizeof *s->set);
  for (int k = 0; k < SW_NKNOBS; k++) {
    int c = csvt_col(&s->m, sw_knob(k)->key);
    if (c < 0) continue;
    for (size_t i = 0; i < s->n; i++) {
      const char *v = csvt_get(&s->m, i, c);
      char e[256];
      if (*v && sw_setting_set(&s->set[i], k, v, e, sizeof e)) xl_warn("row %zu: %s: %s", i + 2, sw_knob(k)->key, e);
    }
  }
  for (size_t i = 0; i < s->n; i++) sw_setting_normalize(&s->set[i]);
  /* the defaults the sweep saw (the model's chunk size among them), else the table's */
  sw_setting_defaults(&s->defaults, 0);
  char *mp = xl_path_join(run_dir, "run_meta.json"), err[512];
  cJSON *meta = xl_exists(mp) ? rec_json_read(mp, err, sizeof err) : NULL;
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(meta, "defaults");
  if (cJSON_IsObject(d)) {
    sw_setting got;
    if (!sw_setting_from_record(d, &got))
      for (int k = 0; k < SW_NKNOBS; k++)
        if (got.v[k][0]) snprintf(s->defaults.v[k], SW_VAL_MAX, "%s", got.v[k]);
  }
  cJSON_Delete(meta);
  free(mp);
}

/* Whether row i's output-relevant knobs are the defaults (a reference output). */
static int is_reference(const merge_state *s, size_t i) {
  for (int k = 0; k < SW_NKNOBS; k++) {
    if (!(sw_knob(k)->affects & XS_AFFECTS_OUTPUT)) continue;
    const char *v = s->set[i].v[k];
    if (*v && strcmp(v, s->defaults.v[k])) return 0;
  }
  return 1;
}

/* A row's output-relevant knobs as text: "matmul=bf16", "device=cpu matmul=fp32". */
static void output_label(const sw_setting *st, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  for (int kb = 0; kb < SW_NKNOBS; kb++) {
    if (!(sw_knob(kb)->affects & XS_AFFECTS_OUTPUT) || !st->v[kb][0]) continue;
    int w = snprintf(buf + k, k < n ? n - k : 0, "%s%s=%s", k ? " " : "", sw_knob(kb)->key, st->v[kb]);
    if (w > 0) k += (size_t)w;
  }
  if (!buf[0]) snprintf(buf, n, "(defaults)");
}

/* Quality per row (the mean over its samples, with sd and interval), the reference row of
 * each group and every row's paired comparison with it: columns of merged.csv. */
static void quality_columns(merge_state *s, const outputs_t *outs) {
  s->ref = xl_malloc((s->n ? s->n : 1) * sizeof *s->ref);
  s->all_identical = xl_calloc(s->ngroups ? s->ngroups : 1, sizeof *s->all_identical);
  for (size_t i = 0; i < s->n; i++) s->ref[i] = -1;
  if (!s->quality || !s->qs.v) return;
  char c_n[96], c_sd[96], c_ci[96];
  snprintf(c_n, sizeof c_n, "%s_n", s->quality);
  snprintf(c_sd, sizeof c_sd, "%s_sd", s->quality);
  snprintf(c_ci, sizeof c_ci, "%s_ci95", s->quality);
  size_t K = s->qs.K;
  for (size_t i = 0; i < s->n; i++) {
    st_summary q = st_summarize(&s->qs.v[i * K], K);
    if (q.n > 1) set_cell_num(&s->m, i, s->quality, q.mean);   /* the mean over the samples */
    set_cell_num(&s->m, i, c_n, q.n);
    set_cell_num(&s->m, i, c_sd, q.sd);
    set_cell_num(&s->m, i, c_ci, q.ci95);
    s->qual[i] = q.n ? q.mean : NAN;
  }
  /* the reference of each group: the simplest ok, rated row at the default output settings */
  long *gref = xl_malloc((s->ngroups ? s->ngroups : 1) * sizeof *gref);
  for (size_t g = 0; g < s->ngroups; g++) gref[g] = -1;
  for (size_t i = 0; i < s->n; i++) {
    int g = s->group[i];
    if (g < 0 || !s->ok[i] || isnan(s->qual[i]) || !is_reference(s, i)) continue;
    if (gref[g] < 0 || ch_simpler(&s->t, i, (size_t)gref[g]) < 0) gref[g] = (long)i;
  }
  for (size_t g = 0; g < s->ngroups; g++) s->all_identical[g] = 1;
  for (size_t i = 0; i < s->n; i++) {
    int g = s->group[i];
    if (g < 0 || gref[g] < 0 || !s->ok[i] || isnan(s->qual[i])) {
      if (g >= 0 && s->ok[i] && !isnan(s->qual[i])) s->all_identical[g] = 0;   /* nothing to compare with */
      continue;
    }
    size_t r = (size_t)gref[g];
    s->ref[i] = (long)r;
    int v;
    st_summary d = st_paired(&s->qs.v[i * K], &s->qs.v[r * K], K, &v);
    set_cell(&s->m, i, "quality_ref", csvt_get(&s->m, r, csvt_col(&s->m, "slug")));
    set_cell_num(&s->m, i, "quality_diff", d.mean);
    set_cell_num(&s->m, i, "quality_diff_ci95", d.ci95);
    set_cell_num(&s->m, i, "quality_diff_n", d.n);
    /* greedy agreement, sample by sample, from the saved token ids */
    double agree = 0;
    int nagree = 0, nident = 0, same_scores = d.n > 0 && d.mean == 0 && (d.n == 1 || d.sd == 0);
    const char *slug = csvt_get(&s->m, i, csvt_col(&s->m, "slug")), *rslug = csvt_get(&s->m, r, csvt_col(&s->m, "slug"));
    for (size_t k = 0; outs->rows && k < K; k++) {
      char a[1024], b[1024];
      if (k) snprintf(a, sizeof a, "%s__s=%zu", slug, k), snprintf(b, sizeof b, "%s__s=%zu", rslug, k);
      else snprintf(a, sizeof a, "%s", slug), snprintf(b, sizeof b, "%s", rslug);
      const cJSON *ia = output_ids(outs, a), *ib = output_ids(outs, b);
      if (!ia || !ib) continue;
      int ident;
      agree += agreement(ia, ib, &ident);
      nagree++;
      nident += ident;
    }
    set_cell_num(&s->m, i, "greedy_agree", nagree ? agree / nagree : NAN);
    set_cell_num(&s->m, i, "identical_outputs", nagree ? nident : NAN);
    int identical = nagree ? nident == nagree : same_scores;
    if (!identical) s->all_identical[g] = 0;
    const char *verdict = (long)i == gref[g] ? "reference" : identical ? "identical" : v > 0 ? "better" : v < 0 ? "worse" : "tie";
    set_cell(&s->m, i, "quality_vs_ref", verdict);
  }
  free(gref);
}

/* quality.csv: per context group and output setting, the paired comparison with the
 * reference (one representative row each: the outputs of one output setting are the same
 * whatever the other knobs). */
static int write_quality_csv(const merge_state *s, const char *path) {
  static const char *const cols[] = {"context", "prompt_file", "setting", "slug", "reference", "samples",
                                     "quality", "quality_ref", "diff", "diff_ci95", "diff_lo", "diff_hi",
                                     "verdict", "greedy_agree", "identical_outputs", "all_identical"};
  csvt q;
  csvt_init(&q, sizeof cols / sizeof *cols, cols);
  size_t *order = xl_malloc((s->ngroups ? s->ngroups : 1) * sizeof *order);
  pareto_group_order(s->groups, s->ngroups, order);
  const csvt *m = &s->m;
  for (size_t oi = 0; oi < s->ngroups; oi++) {
    int g = (int)order[oi];
    char (*seen)[256] = xl_calloc(s->n ? s->n : 1, sizeof *seen);
    size_t nseen = 0;
    long first = -1;   /* the reference row first: it stands for its output setting */
    for (size_t i = 0; i < s->n && first < 0; i++)
      if (s->group[i] == g && s->ref[i] == (long)i) first = (long)i;
    for (size_t step = 0; step <= s->n; step++) {
      size_t i = step == 0 ? (size_t)(first >= 0 ? first : 0) : step - 1;
      if ((step == 0 && first < 0) || s->group[i] != g || s->ref[i] < 0) continue;
      char lab[256];
      output_label(&s->set[i], lab, sizeof lab);
      int dup = 0;
      for (size_t k = 0; k < nseen && !dup; k++) dup = !strcmp(seen[k], lab);
      if (dup) continue;
      snprintf(seen[nseen++], 256, "%s", lab);
      char ctx[32], smp[16], qv[40] = "", qr[40] = "", lo[40] = "", hi[40] = "";
      if (isnan(s->groups[g].ctx)) snprintf(ctx, sizeof ctx, "%s", "");
      else snprintf(ctx, sizeof ctx, "%.0f", s->groups[g].ctx);
      snprintf(smp, sizeof smp, "%s", csvt_get(m, i, csvt_col(m, "quality_diff_n")));
      if (isfinite(s->qual[i])) rec_format_number(qv, sizeof qv, s->qual[i]);
      if (isfinite(s->qual[s->ref[i]])) rec_format_number(qr, sizeof qr, s->qual[s->ref[i]]);
      double d, c;
      if (!csvt_num(m, i, csvt_col(m, "quality_diff"), &d) && !csvt_num(m, i, csvt_col(m, "quality_diff_ci95"), &c)) {
        rec_format_number(lo, sizeof lo, d - c);
        rec_format_number(hi, sizeof hi, d + c);
      }
      const char *vals[] = {ctx, s->groups[g].pfile, lab, csvt_get(m, i, csvt_col(m, "slug")),
                            csvt_get(m, (size_t)s->ref[i], csvt_col(m, "slug")), smp, qv, qr,
                            csvt_get(m, i, csvt_col(m, "quality_diff")), csvt_get(m, i, csvt_col(m, "quality_diff_ci95")),
                            lo, hi, csvt_get(m, i, csvt_col(m, "quality_vs_ref")), csvt_get(m, i, csvt_col(m, "greedy_agree")),
                            csvt_get(m, i, csvt_col(m, "identical_outputs")), s->all_identical[g] ? "yes" : "no"};
      csvt_add_row(&q, vals);
    }
    free(seen);
  }
  free(order);
  int rc = csvt_write(&q, path);
  csvt_free(&q);
  return rc;
}

/* Eligibility (status ok), context groups, intervals and the front per group. */
static void compute_front(merge_state *s, const char *run_dir, const outputs_t *outs) {
  csvt *m = &s->m;
  size_t n = s->n = m->nrows, k = (size_t)s->nobj;
  int cstatus = csvt_col(m, "status");
  s->cpf = csvt_col(m, "prompt_file");
  s->ok = xl_malloc(n ? n : 1);
  s->front = xl_malloc(n ? n : 1);
  s->dom = xl_malloc((n ? n : 1) * sizeof *s->dom);
  s->tied = xl_malloc((n ? n : 1) * sizeof *s->tied);
  s->group = xl_malloc((n ? n : 1) * sizeof *s->group);
  s->groups = xl_malloc((n ? n : 1) * sizeof *s->groups);
  for (size_t i = 0; i < n; i++) {
    s->ok[i] = cstatus < 0 || !strcmp(csvt_get(m, i, cstatus), "ok");
    s->nok += s->ok[i];
  }
  s->ngroups = pareto_group_table(m, NULL, s->group, s->groups);
  for (size_t g = 1; g < s->ngroups; g++) s->several_files |= strcmp(s->groups[g].pfile, s->groups[0].pfile) != 0;
  s->speed = column_values(m, csvt_col(m, s->speed_col));
  s->qual = s->quality ? column_values(m, csvt_col(m, s->quality)) : NULL;
  read_settings(s, run_dir);
  s->t = (ch_table){.n = n, .nobj = k, .set = s->set, .maximize = s->maximize, .affects = s->affects,
                    .group = s->group, .eligible = s->ok, .defaults = &s->defaults, .cmp = quality_cmp, .ctx = s};
  quality_columns(s, outs);
  s->iv = xl_malloc((n ? n : 1) * k * sizeof *s->iv);
  s->speed_obj = s->quality_obj = -1;
  for (size_t j = 0; j < k; j++) {
    const char *name = s->objs[j].name;
    s->maximize[j] = s->objs[j].maximize;
    s->affects[j] = affects_of(name, s->quality);
    if (!strcmp(name, s->speed_col)) s->speed_obj = (int)j;
    if (s->quality && !strcmp(name, s->quality)) s->quality_obj = (int)j;
    for (size_t i = 0; i < n; i++) {
      st_interval v = interval_of(m, i, name);
      if (s->quality_obj == (int)j && s->qual) {   /* the mean over the samples, its interval */
        double ci;
        char cc[96];
        snprintf(cc, sizeof cc, "%s_ci95", name);
        v = st_interval_of(s->qual[i], csvt_num(m, i, csvt_col(m, cc), &ci) ? NAN : ci);
      }
      if (s->ok[i] && isfinite(v.mean) && !isfinite(v.lo) && s->affects[j] != XS_AFFECTS_OUTPUT) s->spread_unknown = 1;
      s->iv[i * k + j] = v;
    }
  }
  for (size_t j = 0; j < k; j++) read_runs(s, j);
  s->t.v = s->iv;
  s->nfront = ch_front(&s->t, s->front, s->dom, s->tied);
  if (s->spread_unknown)
    xl_warn("some speeds have no measured spread (one repeat, or a summary without _sd/_ci95): "
            "their differences cannot be told from noise, so those settings tie and the simplest stands for them");
}

/* One comparison as a word for reports: "better", "worse", "tie". */
static const char *cmp_word(int c) { return c > 0 ? "better" : c < 0 ? "worse" : "tie"; }

/* Columns front, dominated_by, tied_with and vs_recommended of merged.csv. */
static void front_columns(merge_state *s) {
  csvt *m = &s->m;
  int cs = csvt_col(m, "slug");
  for (size_t i = 0; i < s->n; i++) {
    set_cell(m, i, "front", s->front[i] ? "1" : "0");
    set_cell(m, i, "dominated_by", s->dom[i] >= 0 ? csvt_get(m, (size_t)s->dom[i], cs) : "");
    set_cell(m, i, "tied_with", s->tied[i] >= 0 ? csvt_get(m, (size_t)s->tied[i], cs) : "");
    int g = s->group[i];
    long p = g >= 0 ? s->pick[g] : -1;
    char buf[512] = "";
    if (p >= 0 && (long)i != p && s->ok[i]) {
      size_t k = 0;
      for (int j = 0; j < s->nobj; j++) {
        int c = ch_cmp(&s->t, i, (size_t)p, (size_t)j);
        int w = snprintf(buf + k, sizeof buf - k, "%s%s:%s", j ? "," : "", s->objs[j].name, cmp_word(c));
        if (w > 0 && (size_t)w < sizeof buf - k) k += (size_t)w;
      }
    } else if (p >= 0 && (long)i == p) {
      snprintf(buf, sizeof buf, "recommended");
    }
    set_cell(m, i, "vs_recommended", buf);
  }
}

/* The ok row of group g with every knob at its default (the simplest such), or -1. */
static long default_row(const merge_state *s, int g) {
  long best = -1;
  for (size_t i = 0; i < s->n; i++) {
    if (s->group[i] != g || !s->ok[i] || ch_nondefault(&s->t, i)) continue;
    if (!strcmp(s->set[i].v[XS_BACKEND], "recurrent")) continue;
    if (best < 0 || ch_simpler(&s->t, i, (size_t)best) < 0) best = (long)i;
  }
  return best;
}

/* Whether row i's quality is within the tolerance of the best row's: with paired samples,
 * unless the whole 95% interval of the difference lies below -tolerance (a loss beyond the
 * noise); with one sample, by the values themselves. */
static int quality_within(const merge_state *s, size_t i, size_t best, double best_q) {
  if (isnan(s->qual[i])) return 0;
  if (s->qs.v && s->qs.K > 1) {
    int v;
    st_summary d = st_paired(&s->qs.v[i * s->qs.K], &s->qs.v[best * s->qs.K], s->qs.K, &v);
    if (d.n >= 2 && isfinite(d.ci95)) return d.mean + d.ci95 >= -s->tolerance - 1e-12;
  }
  return s->qual[i] >= best_q - s->tolerance - 1e-12 * (1 + fabs(best_q));
}

/* Picks group g's profile, says why on stderr, writes profile_ctx<N>.json into
 * profile_dir and returns its JSON (with "file"), or NULL if the group has no pick. */
static cJSON *make_profile(merge_state *s, size_t g, const char *profile_dir) {
  static const char *metric_cols[] = {"prefill_tok_s", "decode_tok_s", "prefill_tok_s_sd", "decode_tok_s_sd",
                                      "prefill_tok_s_ci95", "decode_tok_s_ci95", "peak_rss_mb", "prompt_tokens",
                                      "new_tokens", "avg_logprob", "avg_logprob_ci95", "ppl", "overall",
                                      "quality_diff", "quality_diff_ci95", "greedy_agree", "load_1m"};
  const csvt *m = &s->m;
  int cs = csvt_col(m, "slug");
  const pareto_group *gi = &s->groups[g];
  char ctxlabel[64], where[384];
  if (isnan(gi->ctx)) snprintf(ctxlabel, sizeof ctxlabel, "unknown");
  else snprintf(ctxlabel, sizeof ctxlabel, "%.0f", gi->ctx);
  snprintf(where, sizeof where, "%s%s%.300s", ctxlabel, s->several_files ? " " : "", s->several_files ? gi->pfile : "");
  /* candidates: front rows whose quality is within the tolerance of the best measured */
  double best_q = NAN;
  long bq_row = -1;
  for (size_t i = 0; s->qual && i < s->n; i++)
    if (s->group[i] == (int)g && s->ok[i] && !isnan(s->qual[i]) && (isnan(best_q) || s->qual[i] > best_q))
      best_q = s->qual[i], bq_row = (long)i;
  unsigned char *cand = xl_calloc(s->n ? s->n : 1, 1);
  size_t ncand = 0, nfront = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (s->group[i] != (int)g || !s->front[i]) continue;
    nfront++;
    if (!isnan(best_q) && !quality_within(s, i, (size_t)bq_row, best_q)) continue;
    cand[i] = 1;
    ncand++;
  }
  int within = 1, on_front = 1;
  if (!ncand && nfront && !isnan(best_q)) {
    /* no front setting is close enough in quality (the front ranks quality only beyond the
     * noise): the settings that are, wherever they stand */
    on_front = 0;
    for (size_t i = 0; i < s->n; i++)
      if (s->group[i] == (int)g && s->ok[i] && quality_within(s, i, (size_t)bq_row, best_q)) cand[i] = 1, ncand++;
  }
  if (!ncand && nfront) {   /* nothing is close enough: the best quality on the front */
    within = 0;
    long bq = -1;
    for (size_t i = 0; i < s->n; i++)
      if (s->group[i] == (int)g && s->front[i] && !isnan(s->qual[i]) && (bq < 0 || s->qual[i] > s->qual[bq])) bq = (long)i;
    if (bq >= 0) cand[bq] = 1, ncand = 1;
  }
  ch_pick_info pi;
  long r;
  st_interval *sp_iv = NULL;
  if (s->speed_obj >= 0) {
    r = ch_pick(&s->t, cand, (int)g, (size_t)s->speed_obj, s->quality_obj, &pi);
  } else {   /* the speed is not an objective of the front: pick on it alone */
    sp_iv = xl_malloc((s->n ? s->n : 1) * sizeof *sp_iv);
    for (size_t i = 0; i < s->n; i++) sp_iv[i] = interval_of(m, i, s->speed_col);
    static const int mx = 1;
    unsigned aff = affects_of(s->speed_col, NULL);
    ch_table t1 = {.n = s->n, .nobj = 1, .set = s->set, .v = sp_iv, .maximize = &mx, .affects = &aff,
                   .group = s->group, .eligible = s->ok, .defaults = &s->defaults};
    r = ch_pick(&t1, cand, (int)g, 0, -1, &pi);
  }
  free(cand);
  s->pick[g] = r;
  if (r < 0) {
    free(sp_iv);
    xl_warn("context %s: no profile: no successful trial has every objective measured", where);
    return NULL;
  }
  const char *slug = csvt_get(m, (size_t)r, cs);
  char reason[2048], ties[1024] = "";
  size_t tk = 0;
  for (size_t q = 0; q < pi.nties && q < 64; q++) {
    if (pi.ties[q] == r) continue;
    int w = snprintf(ties + tk, sizeof ties - tk, "%s%s", tk ? ", " : "", csvt_get(m, (size_t)pi.ties[q], cs));
    if (w > 0 && (size_t)w < sizeof ties - tk) tk += (size_t)w;
  }
  size_t k = (size_t)snprintf(reason, sizeof reason, "%s %.4g tok/s", s->speed_col, s->speed[r]);
  st_interval sv = s->speed_obj >= 0 ? s->iv[(size_t)r * (size_t)s->nobj + (size_t)s->speed_obj] : sp_iv[r];
  free(sp_iv);
  if (isfinite(sv.lo)) k += (size_t)snprintf(reason + k, sizeof reason - k, " (95%% interval %.4g-%.4g)", sv.lo, sv.hi);
  if (pi.significant)
    k += (size_t)snprintf(reason + k, sizeof reason - k, ", significantly faster than every other candidate (next: %s)",
                          csvt_get(m, (size_t)pi.runner_up, cs));
  else if (pi.nties > 1)
    k += (size_t)snprintf(reason + k, sizeof reason - k,
                          "; ties within the noise (or on knobs that cannot change %s) with %s: the %s",
                          s->speed_col, ties, pi.fastest == r ? "fastest and simplest of them" : "simplest of them");
  else if (pi.runner_up >= 0)
    k += (size_t)snprintf(reason + k, sizeof reason - k, ", not significantly faster than %s", csvt_get(m, (size_t)pi.runner_up, cs));
  if (s->qual && !isnan(best_q)) {
    if (within)
      k += (size_t)snprintf(reason + k, sizeof reason - k, "; %s (%zu setting(s)) with %s %.4g, not below the best measured (%.4g) by more than %g beyond the noise",
                            on_front ? "on the Pareto front" : "off the Pareto front, whose settings all fall short in quality",
                            nfront, s->quality, s->qual[r], best_q, s->tolerance);
    else
      k += (size_t)snprintf(reason + k, sizeof reason - k, "; no front setting has %s within %g of the best measured (%.4g): the best %s on the front (%.4g)",
                            s->quality, s->tolerance, best_q, s->quality, s->qual[r]);
    const char *vr = csvt_get(m, (size_t)r, csvt_col(m, "quality_vs_ref"));
    if (*vr && strcmp(vr, "reference"))
      snprintf(reason + k, sizeof reason - k, "; its output against the reference %s: %s (mean difference %s)",
               csvt_get(m, (size_t)r, csvt_col(m, "quality_ref")), vr, csvt_get(m, (size_t)r, csvt_col(m, "quality_diff")));
  } else {
    snprintf(reason + k, sizeof reason - k, "; on the Pareto front (%zu setting(s)); no quality was measured", nfront);
  }
  /* the settings that tie with it on every objective (the front keeps the simplest of them) */
  size_t neq = 0;
  char eq[1024] = "";
  size_t ek = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (s->tied[i] != r) continue;
    if (neq < 4) {
      int w = snprintf(eq + ek, sizeof eq - ek, "%s%s", ek ? ", " : "", csvt_get(m, i, cs));
      if (w > 0 && (size_t)w < sizeof eq - ek) ek += (size_t)w;
    }
    neq++;
  }
  k = strlen(reason);
  if (neq)
    k += (size_t)snprintf(reason + k, sizeof reason - k, "; %zu other setting(s) tie with it on every objective within the noise "
                          "(%s%s): it is the simplest", neq, eq, neq > 4 ? ", ..." : "");
  /* against the default setting: is the change worth making at all? */
  long def = default_row(s, (int)g);
  char vsd[512] = "";
  if (def >= 0 && def != r) {
    size_t vk = 0;
    int any = 0;
    for (int q = 0; q < s->nobj; q++) {
      int c = ch_cmp(&s->t, (size_t)r, (size_t)def, (size_t)q);
      any |= c != 0;
      int w = snprintf(vsd + vk, sizeof vsd - vk, "%s%s %s", q ? ", " : "", s->objs[q].name, cmp_word(c));
      if (w > 0 && (size_t)w < sizeof vsd - vk) vk += (size_t)w;
    }
    if (k < sizeof reason)
      snprintf(reason + k, sizeof reason - k, "; against the default setting (%s): %s%s", csvt_get(m, (size_t)def, cs), vsd,
               any ? "" : " - every difference is within the noise, so the default is as good a choice");
  }
  xl_warn("context %s: recommend %s: %s", where, slug, reason);

  cJSON *p = cJSON_CreateObject();
  cJSON *params = cJSON_AddObjectToObject(p, "params");
  for (int kb = 0; kb < XS_COUNT; kb++) {
    int c = csvt_col(m, xl_settings[kb].key);
    json_add_cell(params, xl_settings[kb].key, m, (size_t)r, c, sw_knob_is_int(kb));
  }
  int csmp = csvt_col(m, "sampling");
  if (csmp >= 0 && *csvt_get(m, (size_t)r, csmp)) {   /* xl-decode takes it as flags, not from a profile */
    json_add_cell(p, "sampling", m, (size_t)r, csmp, 0);
    json_add_cell(p, "sampling_seed", m, (size_t)r, csvt_col(m, "sampling_seed"), 0);
  }
  cJSON *metrics = cJSON_AddObjectToObject(p, "metrics");
  for (size_t q = 0; q < sizeof metric_cols / sizeof *metric_cols; q++)
    json_add_cell(metrics, metric_cols[q], m, (size_t)r, csvt_col(m, metric_cols[q]), 1);
  for (int q = 0; q < s->nobj; q++)
    if (!cJSON_GetObjectItemCaseSensitive(metrics, s->objs[q].name))
      json_add_cell(metrics, s->objs[q].name, m, (size_t)r, csvt_col(m, s->objs[q].name), 1);
  if (isnan(gi->ctx)) cJSON_AddNullToObject(p, "context");
  else cJSON_AddNumberToObject(p, "context", gi->ctx);
  if (s->cpf >= 0) cJSON_AddStringToObject(p, "prompt_file", gi->pfile);
  cJSON_AddStringToObject(p, "slug", slug);
  json_add_cell(p, "trial", m, (size_t)r, csvt_col(m, "trial"), 1);
  cJSON_AddStringToObject(p, "reason", reason);
  cJSON_AddBoolToObject(p, "significant", pi.significant);
  cJSON *jt = cJSON_AddArrayToObject(p, "ties");   /* front settings that tie with it on speed */
  for (size_t q = 0; q < pi.nties && q < 64; q++)
    if (pi.ties[q] != r) cJSON_AddItemToArray(jt, cJSON_CreateString(csvt_get(m, (size_t)pi.ties[q], cs)));
  if (def >= 0 && def != r) {   /* the default setting, objective by objective */
    cJSON *vd = cJSON_AddObjectToObject(p, "vs_default");
    cJSON_AddStringToObject(vd, "slug", csvt_get(m, (size_t)def, cs));
    for (int q = 0; q < s->nobj; q++)
      cJSON_AddStringToObject(vd, s->objs[q].name, cmp_word(ch_cmp(&s->t, (size_t)r, (size_t)def, (size_t)q)));
  }
  cJSON *je = cJSON_AddArrayToObject(p, "equivalent");   /* settings that tie with it on everything */
  for (size_t i = 0; i < s->n; i++)
    if (s->tied[i] == r) cJSON_AddItemToArray(je, cJSON_CreateString(csvt_get(m, i, cs)));
  if (pi.runner_up >= 0) {
    cJSON *vs = cJSON_AddObjectToObject(p, "vs_next");   /* the next fastest candidate, objective by objective */
    cJSON_AddStringToObject(vs, "slug", csvt_get(m, (size_t)pi.runner_up, cs));
    for (int q = 0; q < s->nobj; q++)
      cJSON_AddStringToObject(vs, s->objs[q].name, cmp_word(ch_cmp(&s->t, (size_t)r, (size_t)pi.runner_up, (size_t)q)));
  }
  cJSON *sel = cJSON_AddObjectToObject(p, "selection");
  cJSON_AddStringToObject(sel, "speed", s->speed_col);
  if (s->quality) cJSON_AddStringToObject(sel, "quality", s->quality); else cJSON_AddNullToObject(sel, "quality");
  cJSON_AddNumberToObject(sel, "tolerance", s->tolerance);
  if (isnan(best_q)) cJSON_AddNullToObject(sel, "best_quality");
  else cJSON_AddNumberToObject(sel, "best_quality", best_q);
  cJSON_AddNumberToObject(sel, "front_size", (double)nfront);
  cJSON_AddNumberToObject(sel, "candidates", (double)ncand);
  cJSON_AddBoolToObject(sel, "within_tolerance", within);
  cJSON_AddBoolToObject(sel, "on_front", on_front);
  cJSON_AddStringToObject(sel, "rule", "noise-aware: 95% intervals; ties to the simplest setting");
  cJSON_AddBoolToObject(p, "all_outputs_identical", s->all_identical[g] != 0);

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
static size_t write_recommended(merge_state *s, const char *run_dir, const char *profile_dir, const char *rec_path) {
  cJSON *rec = cJSON_CreateObject();
  cJSON_AddStringToObject(rec, "run_dir", run_dir);
  cJSON_AddStringToObject(rec, "speed", s->speed_col);
  if (s->quality) cJSON_AddStringToObject(rec, "quality", s->quality); else cJSON_AddNullToObject(rec, "quality");
  cJSON_AddNumberToObject(rec, "tolerance", s->tolerance);
  cJSON_AddStringToObject(rec, "noise", "a difference counts where 95% intervals separate (quality: a paired test over the "
                                        "samples); a setting is never ranked by a measurement its knobs cannot change; "
                                        "ties go to the simplest setting");
  cJSON_AddBoolToObject(rec, "spread_unknown", s->spread_unknown);
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
  const char *run_dir, *summary_path, *ratings_path, *ollama_path, *outputs_path;
  const char *objectives_spec, *quality_opt, *speed_col, *profile_dir, *out_dir;
  double tolerance;   /* NaN: the quality measure's default */
  char *own[4];       /* default paths made here */
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
    else if ((v = xl_flag_value(argc, argv, &i, "--outputs"))) o->outputs_path = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--objectives"))) o->objectives_spec = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--quality"))) o->quality_opt = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--quality-tolerance"))) o->tolerance = xl_flag_double("--quality-tolerance", v, 0, 1e9);
    else if ((v = xl_flag_value(argc, argv, &i, "--objective"))) speed_opt = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--profile-dir"))) o->profile_dir = v;
    else if ((v = xl_flag_value(argc, argv, &i, "-o")) || (v = xl_flag_value(argc, argv, &i, "--output"))) o->out_dir = v;
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
  if (!o->outputs_path) {
    o->own[3] = xl_path_join(o->run_dir, "outputs.jsonl");
    if (xl_exists(o->own[3])) o->outputs_path = o->own[3];
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
    cJSON_AddNumberToObject(o, "samples", (double)js[k].samples);
    cJSON_AddNumberToObject(o, "judge_failed", (double)js[k].judge_failed);
  }
  if (s->quality) cJSON_AddStringToObject(sum, "quality", s->quality); else cJSON_AddNullToObject(sum, "quality");
  cJSON_AddNumberToObject(sum, "quality_samples", (double)s->qs.K);
  cJSON_AddStringToObject(sum, "objectives", spec);
  cJSON_AddNumberToObject(sum, "contexts", (double)s->ngroups);
  cJSON_AddNumberToObject(sum, "pareto_rows", (double)s->nfront);
  cJSON_AddNumberToObject(sum, "profiles", (double)nprofiles);
  cJSON_AddBoolToObject(sum, "spread_unknown", s->spread_unknown);
  char *line = cJSON_PrintUnformatted(sum);
  printf("%s\n", line);
  free(line);
  cJSON_Delete(sum);
}

int main(int argc, char **argv) {
  xl_blas_setup_unused(argc, argv);   /* no BLAS here: under ulimit -v, no OpenBLAS threads either */
  xl_version_if_asked(argc, argv, "xl-merge");
  xl_set_progname(argv[0]);
  merge_opts o;
  parse_args(argc, argv, &o);
  if (xl_mkdirs(o.out_dir)) xl_die("%s: %s", o.out_dir, strerror(errno));
  if (xl_mkdirs(o.profile_dir)) xl_die("%s: %s", o.profile_dir, strerror(errno));

  char err[1024];
  csvt m;
  /* strict: a row with a cell missing is an error, never padded into a bogus row */
  if (sw_table_read(&m, o.summary_path, err, sizeof err)) xl_die("%s", err);
  if (csvt_col(&m, "slug") < 0) xl_die("%s: no 'slug' column (cannot join on slug)", o.summary_path);
  join_stats js[2] = {{.label = "ratings", .path = o.ratings_path}, {.label = "ratings_ollama", .path = o.ollama_path}};
  const char *prefixes[2] = {"ratings_", "ollama_"};
  csvt rt[2];
  int have_rt[2] = {0, 0};
  for (int k = 0; k < 2; k++) {
    if (!js[k].path) continue;
    if (sw_table_read(&rt[k], js[k].path, err, sizeof err)) xl_die("%s", err);
    have_rt[k] = 1;
    join_ratings(&m, &rt[k], prefixes[k], &js[k]);
  }

  merge_state s = {.m = m, .speed_col = o.speed_col};
  s.quality = choose_quality(&s.m, o.quality_opt);
  s.tolerance = !isnan(o.tolerance) ? o.tolerance : s.quality && !strcmp(s.quality, "overall") ? 0.5 : 0.05;
  /* the quality's samples, from the ratings file that holds that column */
  for (int k = 0; s.quality && k < 2; k++)
    if (have_rt[k] && csvt_col(&rt[k], s.quality) >= 0 && !s.qs.v) collect_samples(&s.m, &rt[k], js[k].label, s.quality, &s.qs);
  for (int k = 0; k < 2; k++)
    if (have_rt[k]) csvt_free(&rt[k]);
  outputs_t outs = {NULL};
  if (o.outputs_path && !(outs.rows = rec_ndjson_read(o.outputs_path, err, sizeof err))) xl_warn("%s; no greedy agreement", err);
  char spec[512];
  set_objectives(&s, &o, spec, sizeof spec);
  compute_front(&s, o.run_dir, &outs);
  s.pick = xl_malloc((s.ngroups ? s.ngroups : 1) * sizeof *s.pick);
  for (size_t g = 0; g < s.ngroups; g++) s.pick[g] = -1;

  char *merged_path = xl_path_join(o.out_dir, "merged.csv");
  char *pareto_path = xl_path_join(o.out_dir, "pareto.csv");
  char *quality_path = xl_path_join(o.out_dir, "quality.csv");
  char *rec_path = xl_path_join(o.profile_dir, "recommended.json");
  size_t nprofiles = write_recommended(&s, o.run_dir, o.profile_dir, rec_path);
  front_columns(&s);
  if (csvt_write(&s.m, merged_path)) xl_die("%s: %s", merged_path, strerror(errno));
  if (csvt_write_rows(&s.m, pareto_path, s.front)) xl_die("%s: %s", pareto_path, strerror(errno));
  if (s.quality && s.qs.v && write_quality_csv(&s, quality_path)) xl_die("%s: %s", quality_path, strerror(errno));
  for (size_t g = 0; s.quality && g < s.ngroups; g++)
    if (s.all_identical[g])
      xl_warn("context %.0f: every setting gave the same output (the quality cannot tell them apart)", s.groups[g].ctx);
  print_summary(&s, js, spec, (const char *[3]){merged_path, pareto_path, rec_path}, nprofiles);

  free(rec_path); free(merged_path); free(pareto_path); free(quality_path);
  free(s.speed); free(s.qual); free(s.ok); free(s.front); free(s.group); free(s.groups);
  free(s.dom); free(s.tied); free(s.set); free(s.iv); free(s.qs.v); free(s.ref); free(s.pick); free(s.all_identical);
  cJSON_Delete(outs.rows);
  for (int j = 0; j < s.nobj; j++) {
    for (size_t i = 0; s.runs[j] && i < s.n; i++) free(s.runs[j][i]);
    free(s.runs[j]); free(s.nruns[j]); free(s.batch[j]);
  }
  csvt_free(&s.m);
  for (int k = 0; k < 4; k++) free(o.own[k]);
  xl_finish_stdout();
  return 0;
}
