/* xl-plot: turns a sweep run directory into figures and a Markdown report.
 * It aggregates the tables in C (max decode tok/s per chunk size / heads per band /
 * workers and context length, prefill vs decode, speed vs quality with the Pareto
 * front, per-step decode speed, memory timeline), writes the small data files the
 * gnuplot scripts in plots/ read, runs `gnuplot -c plots/NAME.gp DATA OUT TERM` for
 * each figure (PNG via pngcairo and/or SVG, each written to a temp name and renamed),
 * and writes RUN_DIR/report.md with the figures, the recommended profiles and the
 * run's provenance. Figures whose input is absent are listed in the report as skipped.
 * Not for: computing the front or picking profiles (xl-merge does that). */
#define _GNU_SOURCE
#include "engine/blasenv.h"
#include "cli/version.h"
#include "io/csvtable.h"
#include "io/records.h"
#include "sweep/pareto.h"
#include "sweep/report.h"
#include "sweep/sweep_space.h"
#include "sweep/tables.h"
#include "base/filekind.h"
#include "base/util.h"
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void usage(FILE *f) {
  fputs(
      "Usage: xl-plot RUN_DIR [options]\n"
      "Render a run directory's figures with gnuplot and write RUN_DIR/report.md.\n"
      "\n"
      "  --format png|svg|both  figure formats (default both)\n"
      "  --stats-log F          per-step decode stats CSV (default RUN_DIR/stats.csv if present)\n"
      "  --mem-log F            memory telemetry CSV (default RUN_DIR/mem.csv if present)\n"
      "  -o, --output DIR       figures directory (default RUN_DIR/plots; data in DIR/data)\n"
      "  -h, --help             this help\n"
      "\n"
      "Reads merged.csv (else summary.csv), pareto.csv, recommended.json, run_meta.json.\n"
      "Scripts are found in XL_PLOTS_DIR, else ../plots next to the executable;\n"
      "the gnuplot binary is XL_GNUPLOT, else gnuplot on PATH.\n"
      "Exit 0 ok, 1 data error or a figure failed to render, 2 usage error.\n",
      f);
}

/* ---- inputs ---- */

/* The trial table and the columns the figures use. */
typedef struct {
  csvt t;
  const char *path;
  int merged;           /* 1 if it is merged.csv (has quality columns) */
  int slug, status, ctx, prefill, decode;
  const char *quality;  /* quality column with values, or NULL */
  int qcol;
  int *group;           /* [nrows] context group, -1 for failed / unusable rows */
  size_t ngroups;
  char labels[64][96];  /* legend label per group, e.g. "ctx 512" */
} runtab;

static int row_ok(const runtab *r, size_t i) {
  return r->status < 0 || !strcmp(csvt_get(&r->t, i, r->status), "ok");
}

/* Groups the successful rows by (prompt_tokens, prompt_file) as xl-merge does
 * (sweep/pareto.h), numbered in order of context length, and labels each group. */
static void group_rows(runtab *r) {
  size_t n = r->t.nrows;
  r->group = xl_malloc((n ? n : 1) * sizeof *r->group);
  unsigned char *ok = xl_malloc(n ? n : 1);
  pareto_group *gs = xl_malloc((n ? n : 1) * sizeof *gs);
  for (size_t i = 0; i < n; i++) ok[i] = row_ok(r, i);
  size_t ng = pareto_group_table(&r->t, ok, r->group, gs);
  if (ng > 64) {   /* the legend has room for 64 */
    xl_warn("more than 64 context groups; the rest are not plotted");
    ng = 64;
  }
  size_t order[64], rank[64];
  pareto_group_order(gs, ng, order);
  for (size_t k = 0; k < ng; k++) rank[order[k]] = k;
  for (size_t i = 0; i < n; i++)
    r->group[i] = r->group[i] >= 0 && (size_t)r->group[i] < ng ? (int)rank[r->group[i]] : -1;
  int files_differ = 0;
  for (size_t g = 1; g < ng; g++) files_differ |= strcmp(gs[g].pfile, gs[0].pfile) != 0;
  for (size_t k = 0; k < ng; k++) {
    const pareto_group *g = &gs[order[k]];
    char ctxs_s[32];
    if (isnan(g->ctx)) snprintf(ctxs_s, sizeof ctxs_s, "ctx ?");
    else snprintf(ctxs_s, sizeof ctxs_s, "ctx %.0f", g->ctx);
    if (files_differ) {
      const char *b = strrchr(g->pfile, '/');
      snprintf(r->labels[k], sizeof r->labels[k], "%s %s", ctxs_s, b ? b + 1 : g->pfile);
    } else {
      snprintf(r->labels[k], sizeof r->labels[k], "%s", ctxs_s);
    }
    /* Labels go into quoted gnuplot strings: keep them free of quotes. */
    for (char *p = r->labels[k]; *p; p++)
      if (*p == '"' || *p == '\\') *p = '_';
  }
  r->ngroups = ng;
  free(gs);
  free(ok);
}

static void load_runtab(runtab *r, const char *run_dir, char **paths) {
  char err[1024];
  paths[0] = xl_path_join(run_dir, "merged.csv");
  paths[1] = xl_path_join(run_dir, "summary.csv");
  memset(r, 0, sizeof *r);
  r->merged = xl_exists(paths[0]);
  r->path = r->merged ? paths[0] : paths[1];
  if (sw_table_read(&r->t, r->path, err, sizeof err)) xl_die("%s", err);   /* strict, as xl-merge */
  r->slug = csvt_col(&r->t, "slug");
  r->status = csvt_col(&r->t, "status");
  r->ctx = csvt_col(&r->t, "prompt_tokens");
  r->prefill = csvt_col(&r->t, "prefill_tok_s");
  r->decode = csvt_col(&r->t, "decode_tok_s");
  r->quality = pareto_quality_column(&r->t);
  r->qcol = r->quality ? csvt_col(&r->t, r->quality) : -1;
  group_rows(r);
}

/* ---- data files ---- */

/* One figure: its script, what it shows, and why it was skipped or failed. */
typedef struct {
  char name[64];        /* output base name, e.g. "decode_by_workers" */
  const char *script;   /* plots/<script>.gp */
  char title[160];
  char skipped[256];    /* non-empty: reason it was not drawn */
  int failed;           /* gnuplot failed */
  int made_png, made_svg;
  int has_settings;     /* data/<name>.set.gp holds its gnuplot settings */
} figure;

static FILE *open_data(xl_atomic *a, const char *data_dir, const char *name) {
  char fname[128];
  snprintf(fname, sizeof fname, "%s.dat", name);
  char *p = xl_path_join(data_dir, fname);
  if (xl_kind_check(p, XK_DATA, NULL) || xl_atomic_open(a, p)) xl_die("%s: %s", p, strerror(errno));
  free(p);
  fprintf(a->f, "# %s: data of a figure, written by xl-plot\n", name);
  return a->f;
}
static void close_data(xl_atomic *a) {
  char *p = xl_strdup(a->path);
  if (xl_atomic_commit(a)) xl_die("%s: %s", p, strerror(errno));
  free(p);
}

/* Text as a gnuplot single-quoted string: no escapes are processed inside one, a quote is
 * doubled, and line breaks (which would end the command) become spaces. */
static void gp_quote(FILE *f, const char *s) {
  fputc('\'', f);
  for (; *s; s++) {
    if (*s == '\'') fputs("''", f);
    else if (*s == '\n' || *s == '\r') fputc(' ', f);
    else fputc(*s, f);
  }
  fputc('\'', f);
}

/* A figure's gnuplot settings file, data/<name>.set.gp: `set` commands with quoted strings
 * that the script loads (no path or text ever goes through a shell). lines: pairs of
 * (command prefix, text), then raw lines with a NULL text (numbers only). */
static void write_settings(figure *fig, const char *data_dir, const char *const *cmd, const char *const *text, size_t n) {
  char fname[128];
  snprintf(fname, sizeof fname, "%s.set.gp", fig->name);
  char *p = xl_path_join(data_dir, fname);
  xl_atomic a;
  if (xl_kind_check(p, XK_TEXT, NULL) || xl_atomic_open(&a, p)) xl_die("%s: %s", p, strerror(errno));
  fprintf(a.f, "# gnuplot settings of %s, written by xl-plot\n", fig->name);
  for (size_t i = 0; i < n; i++) {
    if (text[i]) {   /* "set label 1|at graph ..." puts the text between the two parts */
      const char *bar = strchr(cmd[i], '|');
      fprintf(a.f, "%.*s ", bar ? (int)(bar - cmd[i]) : (int)strlen(cmd[i]), cmd[i]);
      gp_quote(a.f, text[i]);
      fprintf(a.f, "%s%s noenhanced", bar ? " " : "", bar ? bar + 1 : "");
      fputc('\n', a.f);
      continue;
    }
    fprintf(a.f, "%s\n", cmd[i]);
  }
  if (xl_atomic_commit(&a)) xl_die("%s: %s", p, strerror(errno));
  free(p);
  fig->has_settings = 1;
}

/* The half width of a row's interval for a speed column; 0 when unknown (no bar). */
static double err_of(const runtab *r, size_t i, const char *col) {
  double c = pareto_ci95(&r->t, i, col);
  return isfinite(c) ? c : 0;
}

/* The best `measure` (tok/s) per value of column `param` and context group, with the
 * 95% interval of that best trial. Values sort numerically when they are numbers, else in
 * order of appearance. */
static void data_max_by(const runtab *r, figure *fig, const char *param, const char *measure, const char *xlabel,
                        const char *data_dir) {
  int pc = csvt_col(&r->t, param), mc = csvt_col(&r->t, measure);
  if (pc < 0 || mc < 0) {
    snprintf(fig->skipped, sizeof fig->skipped, "%s has no '%s' column", r->path, pc < 0 ? param : measure);
    return;
  }
  size_t n = r->t.nrows, nv = 0;
  const char **vals = xl_malloc((n ? n : 1) * sizeof *vals);
  double x, d;
  int numeric = 1;
  for (size_t i = 0; i < n; i++) {
    const char *v = csvt_get(&r->t, i, pc);
    if (r->group[i] < 0 || !*v || csvt_num(&r->t, i, mc, &d)) continue;
    size_t u = 0;
    while (u < nv && strcmp(vals[u], v)) u++;
    if (u == nv) vals[nv++] = v;
    numeric &= !csvt_num(&r->t, i, pc, &x);
  }
  if (!nv) {
    snprintf(fig->skipped, sizeof fig->skipped, "no successful trial with both %s and %s in %s", param, measure, r->path);
    free(vals);
    return;
  }
  if (numeric) {   /* numbers in numeric order */
    double *num = xl_malloc(nv * sizeof *num);
    for (size_t u = 0; u < nv; u++) num[u] = atof(vals[u]);
    for (size_t a1 = 1; a1 < nv; a1++)
      for (size_t b = a1; b > 0 && num[b] < num[b - 1]; b--) {
        double t = num[b]; num[b] = num[b - 1]; num[b - 1] = t;
        const char *ts = vals[b]; vals[b] = vals[b - 1]; vals[b - 1] = ts;
      }
    free(num);
  }
  long *best = xl_malloc(nv * r->ngroups * sizeof *best);
  for (size_t k = 0; k < nv * r->ngroups; k++) best[k] = -1;
  for (size_t i = 0; i < n; i++) {
    if (r->group[i] < 0 || csvt_num(&r->t, i, mc, &d)) continue;
    const char *v = csvt_get(&r->t, i, pc);
    size_t u = 0;
    while (u < nv && strcmp(vals[u], v)) u++;
    if (u == nv) continue;
    long *b = &best[u * r->ngroups + (size_t)r->group[i]];
    double bd;
    if (*b < 0 || (!csvt_num(&r->t, (size_t)*b, mc, &bd) && d > bd)) *b = (long)i;
  }
  xl_atomic a;
  FILE *f = open_data(&a, data_dir, fig->name);
  fprintf(f, "%s", param);
  for (size_t g = 0; g < r->ngroups; g++) fprintf(f, " \"%s\" \"%s err\"", r->labels[g], r->labels[g]);
  fputc('\n', f);
  for (size_t u = 0; u < nv; u++) {
    fputc('"', f);
    for (const char *c = vals[u]; *c; c++) fputc(*c == '"' || *c == '\\' ? '_' : *c, f);
    fputc('"', f);
    for (size_t g = 0; g < r->ngroups; g++) {
      long b = best[u * r->ngroups + g];
      if (b < 0) fprintf(f, " - -");
      else fprintf(f, " %.6g %.6g", atof(csvt_get(&r->t, (size_t)b, mc)), err_of(r, (size_t)b, measure));
    }
    fputc('\n', f);
  }
  close_data(&a);
  char ylabel[160];
  snprintf(ylabel, sizeof ylabel, "best %s throughput (tokens/s), 95%% interval", !strcmp(measure, "prefill_tok_s") ? "prefill" : "decode");
  const char *cmd[] = {"set title", "set xlabel", "set ylabel"}, *text[] = {fig->title, xlabel, ylabel};
  write_settings(fig, data_dir, cmd, text, 3);
  free(best);
  free(vals);
}

static void data_prefill_decode(const runtab *r, figure *fig, const char *data_dir) {
  if (r->prefill < 0 || r->decode < 0) {
    snprintf(fig->skipped, sizeof fig->skipped, "%s lacks prefill_tok_s or decode_tok_s", r->path);
    return;
  }
  size_t npts = 0;
  xl_atomic a;
  FILE *f = open_data(&a, data_dir, fig->name);
  for (size_t g = 0; g < r->ngroups; g++) {
    fprintf(f, "%s\"%s\"\n", g ? "\n\n" : "", r->labels[g]);
    for (size_t i = 0; i < r->t.nrows; i++) {
      double p, d;
      if (r->group[i] != (int)g || csvt_num(&r->t, i, r->prefill, &p) || csvt_num(&r->t, i, r->decode, &d)) continue;
      fprintf(f, "%.6g %.6g %.6g %.6g\n", p, d, err_of(r, i, "prefill_tok_s"), err_of(r, i, "decode_tok_s"));
      npts++;
    }
  }
  if (!npts) {
    xl_atomic_abort(&a);
    snprintf(fig->skipped, sizeof fig->skipped, "no successful trial with both speeds in %s", r->path);
    return;
  }
  close_data(&a);
  const char *cmd[] = {"set title"}, *text[] = {fig->title};
  write_settings(fig, data_dir, cmd, text, 1);
}

/* Marks inpar[i] for the rows of the trial table that RUN_DIR/pareto.csv lists (the
 * front over every objective), matched by slug and context. 0 when there is no
 * pareto.csv. */
static int mark_pareto_rows(const runtab *r, const char *run_dir, unsigned char *inpar) {
  char *pp = xl_path_join(run_dir, "pareto.csv");
  int have = xl_exists(pp);
  if (have) {
    csvt par;
    char err[1024];
    if (sw_table_read(&par, pp, err, sizeof err)) xl_die("%s", err);
    int ps = csvt_col(&par, "slug"), pc = csvt_col(&par, "prompt_tokens");
    if (ps < 0) xl_die("%s: no 'slug' column", pp);
    for (size_t j = 0; j < par.nrows; j++)
      for (size_t i = 0; i < r->t.nrows; i++)
        if (!strcmp(csvt_get(&par, j, ps), csvt_get(&r->t, i, r->slug)) &&
            !strcmp(csvt_get(&par, j, pc), csvt_get(&r->t, i, r->ctx)))
          inpar[i] = 1;
    csvt_free(&par);
  }
  free(pp);
  return have;
}

static size_t distinct_values(const runtab *r, const char *key);

/* The output-relevant settings of row i that vary in the table as a label ("matmul=bf16");
 * "" when none varies. */
static void output_label(const runtab *r, size_t i, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  for (int kb = 0; kb < SW_NKNOBS; kb++) {
    if (!(sw_knob(kb)->affects & XS_AFFECTS_OUTPUT) || distinct_values(r, sw_knob(kb)->key) < 2) continue;
    const char *v = csvt_get(&r->t, i, csvt_col(&r->t, sw_knob(kb)->key));
    if (!*v) continue;
    int w = snprintf(buf + k, k < n ? n - k : 0, "%s%s=%s", k ? " " : "", sw_knob(kb)->key, v);
    if (w > 0) k += (size_t)w;
  }
  for (char *p = buf; *p; p++)
    if (*p == '"' || *p == '\\') *p = '_';
}

/* Speed vs quality: every rated trial with its intervals, the rows of pareto.csv as the
 * front line per context, and one label per output setting and context. Says in the figure
 * when every setting gave the same output (*identical). */
static void data_speed_quality(const runtab *r, figure *fig, const char *run_dir, const char *data_dir, int *identical) {
  *identical = 0;
  if (!r->merged) {
    snprintf(fig->skipped, sizeof fig->skipped, "no merged.csv in the run directory (run xl-merge first)");
    return;
  }
  if (!r->quality || r->decode < 0) {
    snprintf(fig->skipped, sizeof fig->skipped, "merged.csv has no quality values (avg_logprob or overall)");
    return;
  }
  size_t n = r->t.nrows;
  double *v = xl_malloc((n ? n : 1) * 2 * sizeof *v);
  unsigned char *inpar = xl_calloc(n ? n : 1, 1);
  size_t nrated = 0;
  double qmin = INFINITY, qmax = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    if (csvt_num(&r->t, i, r->decode, &v[2 * i])) v[2 * i] = NAN;
    if (csvt_num(&r->t, i, r->qcol, &v[2 * i + 1])) v[2 * i + 1] = NAN;
    if (r->group[i] >= 0 && !isnan(v[2 * i]) && !isnan(v[2 * i + 1])) {
      nrated++;
      if (v[2 * i + 1] < qmin) qmin = v[2 * i + 1];
      if (v[2 * i + 1] > qmax) qmax = v[2 * i + 1];
    }
  }
  if (!nrated) {
    snprintf(fig->skipped, sizeof fig->skipped, "no successful trial has both decode_tok_s and %s", r->quality);
    free(v); free(inpar);
    return;
  }
  mark_pareto_rows(r, run_dir, inpar);
  int is_lp = !strcmp(r->quality, "avg_logprob");
  char qci[96];
  snprintf(qci, sizeof qci, "%s_ci95", r->quality);
  int cqci = csvt_col(&r->t, qci), cid = csvt_col(&r->t, "identical_outputs"), cn = csvt_col(&r->t, "quality_diff_n");
  /* every rated output the same as the reference's (or, without outputs, every score the same) */
  int same = 1;
  for (size_t i = 0; i < n; i++) {
    if (r->group[i] < 0 || isnan(v[2 * i + 1])) continue;
    double a, b;
    if (cid >= 0 && !csvt_num(&r->t, i, cid, &a) && !csvt_num(&r->t, i, cn, &b)) same &= a == b;
    else same &= v[2 * i + 1] == qmin;
  }
  same &= qmin == qmax;
  *identical = same;
  xl_atomic a;
  FILE *f = open_data(&a, data_dir, fig->name);
  size_t *idx = xl_malloc((n ? n : 1) * sizeof *idx);
  int first = 1;
  for (int part = 0; part < 3; part++)
    for (size_t g = 0; g < r->ngroups; g++) {
      if (part < 2) fprintf(f, "%s\"%s%s\"\n", first ? "" : "\n\n", r->labels[g], part == 1 ? " front" : "");
      else fprintf(f, "\n\n# labels of %s\n", r->labels[g]);
      first = 0;
      size_t k = 0;
      for (size_t i = 0; i < n; i++) {
        if (r->group[i] != (int)g || isnan(v[2 * i]) || isnan(v[2 * i + 1])) continue;
        if (part == 1 && !inpar[i]) continue;
        idx[k++] = i;
      }
      /* the front line runs along quality */
      for (size_t a1 = 1; part == 1 && a1 < k; a1++)
        for (size_t b = a1; b > 0 && v[2 * idx[b] + 1] < v[2 * idx[b - 1] + 1]; b--) {
          size_t t = idx[b]; idx[b] = idx[b - 1]; idx[b - 1] = t;
        }
      char seen[64][128];
      size_t nseen = 0;
      for (size_t q = 0; q < k; q++) {
        size_t i = idx[q];
        if (part == 0) {
          double qe;
          if (csvt_num(&r->t, i, cqci, &qe)) qe = 0;
          fprintf(f, "%.6g %.6g %.6g %.6g\n", v[2 * i + 1], v[2 * i], qe, err_of(r, i, "decode_tok_s"));
        } else if (part == 1) {
          fprintf(f, "%.6g %.6g\n", v[2 * i + 1], v[2 * i]);
        } else {   /* one label per output setting: the fastest point of it */
          char lab[128];
          output_label(r, i, lab, sizeof lab);
          if (!lab[0]) continue;
          size_t u = 0;
          while (u < nseen && strcmp(seen[u], lab)) u++;
          if (u < nseen || nseen == 64) continue;
          long best = -1;
          for (size_t q2 = 0; q2 < k; q2++) {
            char l2[128];
            output_label(r, idx[q2], l2, sizeof l2);
            if (!strcmp(l2, lab) && (best < 0 || v[2 * idx[q2]] > v[2 * best])) best = (long)idx[q2];
          }
          snprintf(seen[nseen++], sizeof seen[0], "%s", lab);
          fprintf(f, "%.6g %.6g \"%s\"\n", v[2 * best + 1], v[2 * best], lab);
        }
      }
    }
  close_data(&a);
  char g_line[32], xr[96];
  snprintf(g_line, sizeof g_line, "G = %zu", r->ngroups);
  const char *xl = is_lp ? "quality: mean log-probability per generated token (higher is better), 95% interval"
                         : "quality: external judge overall score, 1-10 (higher is better)";
  const char *cmd[6] = {"set title", "set xlabel", g_line};
  const char *text[6] = {fig->title, xl, NULL};
  size_t nc = 3;
  if (same) {   /* one quality for all: say so, and give the axis some width */
    snprintf(xr, sizeof xr, "set xrange [%.6g:%.6g]", qmin - 0.05 * (fabs(qmin) + 1), qmax + 0.05 * (fabs(qmax) + 1));
    cmd[nc] = xr, text[nc++] = NULL;
    cmd[nc] = "set label 1|at graph 0.5, graph 0.92 center front tc rgb \"#c0392b\" font \",13\"", text[nc++] =
        "every setting gave the same output: quality cannot tell them apart";
  }
  write_settings(fig, data_dir, cmd, text, nc);
  free(idx); free(v); free(inpar);
}

/* A telemetry log (telemetry.h: the stats or the memory CSV) drawn over time: columns
 * x, y and an optional z ('-' where a row has none). */
typedef struct {
  const char *what, *flag, *file;   /* "stats log", "--stats-log", "stats.csv" */
  const char *cols[3];              /* x, y, z column names */
  const char *header;               /* the data file's column line */
  const char *xfmt;                 /* how x is printed */
  const char *phase;                /* keep only rows of this phase (when the log has one) */
  int from_zero;                    /* x relative to the first row */
} log_figure;

static const log_figure steps_log = {"stats log", "--stats-log", "stats.csv", {"step", "inst_tok_s", "avg_tok_s"},
                                     "step inst_tok_s avg_tok_s", "%.10g", "decode", 0};
static const log_figure memory_log = {"memory log", "--mem-log", "mem.csv", {"ts", "rss_mb", "avail_mb"},
                                      "t_s rss_mb avail_mb", "%.3f", NULL, 1};

static void data_log(figure *fig, const log_figure *lf, const char *path, const char *data_dir) {
  if (!path) {
    snprintf(fig->skipped, sizeof fig->skipped, "no %s (pass %s F, or put %s in the run directory)", lf->what, lf->flag,
             lf->file);
    return;
  }
  csvt t;
  char err[1024];
  if (csvt_read(&t, path, err, sizeof err)) xl_die("%s", err);
  int cx = csvt_col(&t, lf->cols[0]), cy = csvt_col(&t, lf->cols[1]), cz = csvt_col(&t, lf->cols[2]);
  int cph = lf->phase ? csvt_col(&t, "phase") : -1;   /* xltools' stats logs add prefill rows, tagged here */
  if (cx < 0 || cy < 0) xl_die("%s: a %s needs '%s' and '%s' columns", path, lf->what, lf->cols[0], lf->cols[1]);
  xl_atomic a;
  FILE *f = open_data(&a, data_dir, fig->name);
  fprintf(f, "%s\n", lf->header);
  double x0 = NAN;
  size_t k = 0;
  for (size_t i = 0; i < t.nrows; i++) {
    double x, y, z;
    if (cph >= 0 && strcmp(csvt_get(&t, i, cph), lf->phase)) continue;
    if (csvt_num(&t, i, cx, &x) || csvt_num(&t, i, cy, &y)) continue;
    if (isnan(x0)) x0 = lf->from_zero ? x : 0;
    fprintf(f, lf->xfmt, x - x0);
    if (csvt_num(&t, i, cz, &z)) fprintf(f, " %.6g -\n", y);
    else fprintf(f, " %.6g %.6g\n", y, z);
    k++;
  }
  csvt_free(&t);
  if (!k) {
    xl_atomic_abort(&a);
    snprintf(fig->skipped, sizeof fig->skipped, "%s has no numeric rows", path);
    return;
  }
  close_data(&a);
  /* the title as a `set` command the script loads: no text of the run goes through a shell */
  const char *cmd[] = {"set title"}, *text[] = {fig->title};
  write_settings(fig, data_dir, cmd, text, 1);
}

/* ---- gnuplot ---- */

/* An absolute form of path (malloc'd). gnuplot reads a file name that starts with '<' as a
 * command to run and an output name that starts with '|' as a pipe, so every path it gets
 * starts with '/' (a run directory named "<cmd" stays a directory). */
static char *absolute(const char *path) {
  char buf[PATH_MAX];
  if (path[0] == '/') return xl_strdup(path);
  if (realpath(path, buf)) return xl_strdup(buf);
  if (!getcwd(buf, sizeof buf)) xl_die("cannot find the current directory: %s", strerror(errno));
  return xl_path_join(buf, path);
}

static char *find_plots_dir(void) {
  const char *env = getenv("XL_PLOTS_DIR");
  char *dir = env && *env ? xl_strdup(env) : xl_find_resource("plots", "max_by_param.gp");
  char *abs = absolute(dir);
  free(dir);
  return abs;
}

/* Runs gnuplot on one figure and format. gnuplot writes the atomic writer's target (a
 * temp name renamed on success, or the path itself when it is a device or FIFO), so a
 * failed render never leaves a half-drawn figure. gnuplot's messages go to log_fd.
 * Returns 0 ok. */
static int render(const char *gnuplot, const char *script, const char *data, const char *settings, const char *out,
                  const char *term, int log_fd) {
  xl_atomic a;
  if (xl_kind_check(out, !strcmp(term, "svg") ? XK_SVG : XK_PNG, NULL) ||
      xl_atomic_open_flags(&a, out, XL_ATOMIC_NO_STREAM)) { xl_warn("%s: %s", out, strerror(errno)); return -1; }
  char *argv[] = {(char *)gnuplot, "-c", (char *)script, (char *)data, (char *)xl_atomic_target(&a), (char *)term,
                  (char *)settings, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, log_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, gnuplot, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc) {
    xl_warn("cannot run %s: %s", gnuplot, strerror(rc));
    xl_atomic_abort(&a);
    return -1;
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) { st = -1; break; }
  struct stat sb;
  /* gnuplot can exit 0 without drawing; an empty temp file is a failure too */
  int good = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
             (!a.tmp || (stat(a.tmp, &sb) == 0 && sb.st_size > 0));
  if (!good) {
    xl_atomic_abort(&a);
    if (st != -1 && WIFEXITED(st)) xl_warn("gnuplot failed on %s (exit %d)", out, WEXITSTATUS(st));
    else xl_warn("gnuplot failed on %s", out);
    return -1;
  }
  if (xl_atomic_commit(&a)) { xl_warn("%s: %s", out, strerror(errno)); return -1; }
  return 0;
}

/* ---- report ---- */

static void report_results(FILE *f, const runtab *r) {
  size_t n = r->t.nrows, nok = 0;
  for (size_t i = 0; i < n; i++) nok += row_ok(r, i);
  fprintf(f, "## Trials\n\n%zu trial row(s) in `%s`: %zu ok, %zu failed.", n,
          r->merged ? "merged.csv" : "summary.csv", nok, n - nok);
  if (r->quality) fprintf(f, " Quality measure: `%s`.", r->quality);
  fprintf(f, "\n\n");
  if (r->ngroups && r->decode >= 0) {
    fprintf(f, "| context | ok trials | best decode tok/s | setting | best prefill tok/s | setting |\n|---|---|---|---|---|---|\n");
    for (size_t g = 0; g < r->ngroups; g++) {
      long bd = -1, bp = -1;
      size_t cnt = 0;
      double bdv = 0, bpv = 0, x;
      for (size_t i = 0; i < n; i++) {
        if (r->group[i] != (int)g) continue;
        cnt++;
        if (!csvt_num(&r->t, i, r->decode, &x) && (bd < 0 || x > bdv)) { bd = (long)i; bdv = x; }
        if (!csvt_num(&r->t, i, r->prefill, &x) && (bp < 0 || x > bpv)) { bp = (long)i; bpv = x; }
      }
      fprintf(f, "| %s | %zu | ", r->labels[g], cnt);
      if (bd >= 0) { fprintf(f, "%.4g | `", bdv); rp_md_cell(f, csvt_get(&r->t, (size_t)bd, r->slug)); fputs("` | ", f); }
      else fputs("- | - | ", f);
      if (bp >= 0) { fprintf(f, "%.4g | `", bpv); rp_md_cell(f, csvt_get(&r->t, (size_t)bp, r->slug)); fputs("` |\n", f); }
      else fputs("- | - |\n", f);
    }
    fputc('\n', f);
  }
  if (nok < n) {
    int ce = csvt_col(&r->t, "error");
    fprintf(f, "Failed trials:\n\n");
    for (size_t i = 0; i < n; i++) {
      if (row_ok(r, i)) continue;
      fputs("- `", f);
      rp_md_cell(f, csvt_get(&r->t, i, r->slug));
      fputs("`: ", f);
      const char *e = csvt_get(&r->t, i, ce);
      rp_md_cell(f, *e ? e : "(no error recorded)");
      fputc('\n', f);
    }
    fputc('\n', f);
  }
}

/* The path of the figures directory as seen from the run directory. */
static char *relative_to(const char *run_dir, const char *dir) {
  char a[PATH_MAX], b[PATH_MAX];
  if (!realpath(run_dir, a) || !realpath(dir, b)) return xl_strdup(dir);
  size_t n = strlen(a);
  if (!strcmp(a, b)) return xl_strdup(".");
  if (!strncmp(a, b, n) && b[n] == '/') return xl_strdup(b + n + 1);
  return xl_strdup(b);
}

static void report_figures(FILE *f, const figure *figs, size_t nfig, const char *rel) {
  fprintf(f, "## Figures\n\n");
  for (size_t k = 0; k < nfig; k++) {
    const figure *g = &figs[k];
    if (g->skipped[0] || g->failed) continue;
    fprintf(f, "### %s\n\n", g->title);
    if (g->made_png) fprintf(f, "![%s](%s/%s.png)\n\n", g->title, rel, g->name);
    else if (g->made_svg) fprintf(f, "![%s](%s/%s.svg)\n\n", g->title, rel, g->name);
    if (g->made_png && g->made_svg) fprintf(f, "Vector version: [%s.svg](%s/%s.svg)\n\n", g->name, rel, g->name);
  }
  int any = 0;
  for (size_t k = 0; k < nfig; k++) {
    const figure *g = &figs[k];
    if (!g->skipped[0] && !g->failed) continue;
    if (!any) fprintf(f, "## Figures not drawn\n\n");
    any = 1;
    fprintf(f, "- %s (`%s`): ", g->title, g->name);
    rp_md_cell(f, g->skipped[0] ? g->skipped : "gnuplot failed to render it (see data/gnuplot.log)");
    fputc('\n', f);
  }
  if (any) fputc('\n', f);
}

typedef struct {
  const char *run_dir, *stats_log, *mem_log, *out_dir;
  int want_png, want_svg;
} plot_opts;

static void parse_args(int argc, char **argv, plot_opts *o) {
  const char *format = "both";
  memset(o, 0, sizeof *o);
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); xl_finish_stdout(); exit(0); }
    else if ((v = xl_flag_value(argc, argv, &i, "--format"))) format = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--stats-log"))) o->stats_log = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--mem-log"))) o->mem_log = v;
    else if ((v = xl_flag_value(argc, argv, &i, "-o")) || (v = xl_flag_value(argc, argv, &i, "--output"))) o->out_dir = v;
    else if (argv[i][0] == '-' && argv[i][1]) xl_usage_error("unknown option '%s'", argv[i]);
    else if (!o->run_dir) o->run_dir = argv[i];
    else xl_usage_error("unexpected argument '%s'", argv[i]);
  }
  if (!o->run_dir) xl_usage_error("missing RUN_DIR");
  o->want_png = !strcmp(format, "png") || !strcmp(format, "both");
  o->want_svg = !strcmp(format, "svg") || !strcmp(format, "both");
  if (!o->want_png && !o->want_svg) xl_usage_error("--format must be png, svg or both, not '%s'", format);
}

/* The log a figure draws: the one given (it must exist), else RUN_DIR/name when there is
 * one, else NULL. *own gets what to free. */
static const char *find_log(const char *given, const char *run_dir, const char *name, char **own) {
  *own = NULL;
  if (given) {
    if (!xl_exists(given)) xl_die("%s: %s", given, strerror(ENOENT));
    return given;
  }
  *own = xl_path_join(run_dir, name);
  return xl_exists(*own) ? *own : NULL;
}

/* Runs gnuplot for every figure that has data, in each format asked for; gnuplot's
 * messages go to log_path. Counts into made, failed and skipped. */
static void render_all(figure *figs, size_t nfig, const plot_opts *o, const char *fig_dir, const char *data_dir,
                       const char *log_path, size_t counts[3]) {
  char *plots_dir = find_plots_dir();
  const char *gnuplot = getenv("XL_GNUPLOT");
  if (!gnuplot || !*gnuplot) gnuplot = "gnuplot";
  if (xl_kind_check(log_path, XK_TEXT, NULL)) xl_die("%s: %s", log_path, strerror(errno));
  int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) xl_die("%s: %s", log_path, strerror(errno));
  for (size_t k = 0; k < nfig; k++) {
    figure *g = &figs[k];
    if (g->skipped[0]) {
      xl_warn("skipped %s: %s", g->name, g->skipped);
      counts[2]++;
      continue;
    }
    char sname[128], dname[128], oname[128], gname[128];
    snprintf(sname, sizeof sname, "%s.gp", g->script);
    snprintf(dname, sizeof dname, "%s.dat", g->name);
    snprintf(gname, sizeof gname, "%s.set.gp", g->name);
    char *script = xl_path_join(plots_dir, sname), *data = xl_path_join(data_dir, dname);
    char *settings = g->has_settings ? xl_path_join(data_dir, gname) : NULL;
    if (!xl_exists(script)) xl_die("%s: no such plot script (set XL_PLOTS_DIR to the plots/ directory)", script);
    for (int fmt = 0; fmt < 2; fmt++) {
      if ((fmt == 0 && !o->want_png) || (fmt == 1 && !o->want_svg)) continue;
      snprintf(oname, sizeof oname, "%s.%s", g->name, fmt ? "svg" : "png");
      char *out = xl_path_join(fig_dir, oname);
      if (render(gnuplot, script, data, settings, out, fmt ? "svg" : "png", log_fd)) g->failed = 1;
      else if (fmt) g->made_svg = 1;
      else g->made_png = 1;
      free(out);
    }
    counts[g->failed ? 1 : 0]++;
    free(settings);
    free(script);
    free(data);
  }
  close(log_fd);
  free(plots_dir);
}

/* Writes RUN_DIR/report.md; returns its path (malloc'd). */
static char *write_report(const char *run_dir, const runtab *r, const figure *figs, size_t nfig, const char *fig_dir,
                          int identical) {
  char *rel = relative_to(run_dir, fig_dir);
  char *report = xl_path_join(run_dir, "report.md");
  xl_atomic a;
  if (xl_kind_check(report, XK_TEXT, NULL) || xl_atomic_open(&a, report)) xl_die("%s: %s", report, strerror(errno));
  const char *base = strrchr(run_dir, '/');
  base = base && base[1] ? base + 1 : run_dir;
  fprintf(a.f, "# Run report: %s\n\n", base);
  char now[32];
  xl_rfc3339(now, sizeof now, xl_wall());
  fprintf(a.f, "Generated by xl-plot on %s from `%s`.\n\n", now, r->merged ? "merged.csv" : "summary.csv");
  rp_provenance(a.f, run_dir);
  report_results(a.f, r);
  rp_noise(a.f, run_dir, r->merged ? "merged.csv" : "summary.csv");
  rp_profiles(a.f, run_dir);
  rp_front(a.f, run_dir);
  rp_quality(a.f, run_dir, identical);
  report_figures(a.f, figs, nfig, rel);
  if (xl_atomic_commit(&a)) xl_die("%s: %s", report, strerror(errno));
  free(rel);
  return report;
}

/* How many distinct values column key takes among the successful rows (0: no column). */
static size_t distinct_values(const runtab *r, const char *key) {
  int c = csvt_col(&r->t, key);
  if (c < 0) return 0;
  const char *seen[8];
  size_t n = 0;
  for (size_t i = 0; i < r->t.nrows && n < 8; i++) {
    const char *v = csvt_get(&r->t, i, c);
    if (r->group[i] < 0 || !*v) continue;
    size_t u = 0;
    while (u < n && strcmp(seen[u], v)) u++;
    if (u == n) seen[n++] = v;
  }
  return n;
}

int main(int argc, char **argv) {
  xl_blas_setup_unused(argc, argv);   /* no BLAS here: under ulimit -v, no OpenBLAS threads either */
  xl_version_if_asked(argc, argv, "xl-plot");
  xl_set_progname(argv[0]);
  plot_opts o;
  parse_args(argc, argv, &o);
  char *own_stats, *own_mem;
  const char *stats_log = find_log(o.stats_log, o.run_dir, "stats.csv", &own_stats);
  const char *mem_log = find_log(o.mem_log, o.run_dir, "mem.csv", &own_mem);
  char *given_dir = o.out_dir ? xl_strdup(o.out_dir) : xl_path_join(o.run_dir, "plots");
  char *fig_dir = absolute(given_dir);   /* every path gnuplot sees starts with '/' */
  free(given_dir);
  char *data_dir = xl_path_join(fig_dir, "data");
  if (xl_mkdirs(data_dir)) xl_die("%s: %s", data_dir, strerror(errno));

  runtab r;
  char *tab_paths[2];
  load_runtab(&r, o.run_dir, tab_paths);
  /* one bar chart per searched knob, of the speed it can change (chunk size: prefill);
   * the three classic ones always (skipped when absent), the others when they vary */
  static const struct { const char *key, *name, *title, *xlabel; int always; } bars[] = {
      {"chunk_size", "prefill_by_chunk", "Best prefill throughput by chunk size", "chunk size (tokens per prefill chunk)", 1},
      {"heads_per_band", "decode_by_heads", "Best decode throughput by heads per band", "heads per band", 1},
      {"workers", "decode_by_workers", "Best decode throughput by worker threads", "worker threads", 1},
      {"matmul", "decode_by_matmul", "Best decode throughput by matmul precision", "matrix product precision", 0},
      {"device", "decode_by_device", "Best decode throughput by device", "device", 0},
      {"sampling", "decode_by_sampling", "Best decode throughput by sampling", "sampling", 0},
  };
  figure figs[16];
  size_t nfig = 0;
  memset(figs, 0, sizeof figs);
  for (size_t b = 0; b < sizeof bars / sizeof *bars; b++) {
    if (!bars[b].always && distinct_values(&r, bars[b].key) < 2) continue;
    figure *fg = &figs[nfig++];
    snprintf(fg->name, sizeof fg->name, "%s", bars[b].name);
    snprintf(fg->title, sizeof fg->title, "%s", bars[b].title);
    fg->script = "max_by_param";
    int k = sw_knob_find(bars[b].key);
    const char *measure = k >= 0 && !(sw_knob(k)->affects & XS_AFFECTS_DECODE) ? "prefill_tok_s" : "decode_tok_s";
    data_max_by(&r, fg, bars[b].key, measure, bars[b].xlabel, data_dir);
  }
  static const struct { const char *name, *script, *title; } rest[] = {
      {"prefill_vs_decode", "prefill_decode", "Prefill vs decode throughput per trial"},
      {"speed_quality", "speed_quality", "Decode speed vs quality with the Pareto front"},
      {"decode_steps", "decode_steps", "Decode throughput per step"},
      {"memory", "memory", "Memory timeline"},
  };
  size_t first_rest = nfig;
  for (size_t q = 0; q < 4; q++) {
    figure *fg = &figs[nfig++];
    snprintf(fg->name, sizeof fg->name, "%s", rest[q].name);
    snprintf(fg->title, sizeof fg->title, "%s", rest[q].title);
    fg->script = rest[q].script;
  }
  int identical = 0;
  data_prefill_decode(&r, &figs[first_rest], data_dir);
  data_speed_quality(&r, &figs[first_rest + 1], o.run_dir, data_dir, &identical);
  data_log(&figs[first_rest + 2], &steps_log, stats_log, data_dir);
  data_log(&figs[first_rest + 3], &memory_log, mem_log, data_dir);

  char *log_path = xl_path_join(data_dir, "gnuplot.log");
  size_t counts[3] = {0, 0, 0};   /* made, failed, skipped */
  render_all(figs, nfig, &o, fig_dir, data_dir, log_path, counts);
  char *report = write_report(o.run_dir, &r, figs, nfig, fig_dir, identical);

  cJSON *sum = cJSON_CreateObject();
  cJSON_AddStringToObject(sum, "report", report);
  cJSON_AddNumberToObject(sum, "figures", (double)counts[0]);
  cJSON_AddNumberToObject(sum, "skipped", (double)counts[2]);
  cJSON_AddNumberToObject(sum, "failed", (double)counts[1]);
  char *line = cJSON_PrintUnformatted(sum);
  printf("%s\n", line);
  free(line);
  cJSON_Delete(sum);
  if (counts[1]) xl_warn("%zu figure(s) failed to render; see %s", counts[1], log_path);

  free(report); free(log_path); free(fig_dir); free(data_dir);
  free(r.group);
  csvt_free(&r.t);
  free(tab_paths[0]); free(tab_paths[1]);
  free(own_stats); free(own_mem);
  xl_finish_stdout();
  return counts[1] ? XL_EXIT_ERROR : 0;
}
