/* report: the parts of a run's report.md written from the run's own files, in Markdown:
 * the provenance (run_meta.json) and the recommended profiles (recommended.json, one column
 * per run setting of cli/settings.h); and Markdown-safe cells for the tools' own tables.
 * Not for: figures or the results table (xl-plot). */
#include "sweep/report.h"
#include "cli/settings.h"
#include "io/csvtable.h"
#include "io/records.h"
#include "sweep/pareto.h"
#include <math.h>
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

void rp_md_cell(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '|') fputs("\\|", f);
    else if (*s == '\n' || *s == '\r') fputc(' ', f);
    else fputc(*s, f);
  }
}

/* A JSON value as one line of report text. */
void rp_md_json_value(FILE *f, const cJSON *v) {
  if (cJSON_IsString(v)) { rp_md_cell(f, v->valuestring); return; }
  if (cJSON_IsNumber(v)) { fprintf(f, "%.10g", v->valuedouble); return; }
  if (cJSON_IsBool(v)) { fputs(cJSON_IsTrue(v) ? "true" : "false", f); return; }
  if (cJSON_IsNull(v)) { fputs("(null)", f); return; }
  if (cJSON_IsArray(v)) {
    int all_str = 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) all_str &= cJSON_IsString(e);
    if (all_str) {  /* a command line: show it as code */
      fputc('`', f);
      int first = 1;
      cJSON_ArrayForEach(e, v) {
        if (!first) fputc(' ', f);
        first = 0;
        rp_md_cell(f, e->valuestring);
      }
      fputc('`', f);
      return;
    }
  }
  const cJSON *path = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "path") : NULL;
  if (cJSON_IsString(path)) {
    rp_md_cell(f, path->valuestring);
    const cJSON *e;
    int first = 1;
    cJSON_ArrayForEach(e, v) {
      if (e == path) continue;
      fputs(first ? " (" : ", ", f);
      first = 0;
      rp_md_cell(f, e->string);
      fputs(": ", f);
      rp_md_json_value(f, e);
    }
    if (!first) fputc(')', f);
    return;
  }
  char *txt = cJSON_PrintUnformatted(v);
  fputc('`', f);
  rp_md_cell(f, txt ? txt : "?");
  fputc('`', f);
  free(txt);
}

/* A JSON file of the run for the report; a bad one is left out with a warning. */
cJSON *rp_read_json(const char *path) {
  char err[1024];
  cJSON *j = rec_json_read(path, err, sizeof err);
  if (!j) xl_warn("%s; left out of the report", err);
  return j;
}

void rp_provenance(FILE *f, const char *run_dir) {
  char *p = xl_path_join(run_dir, "run_meta.json");
  fprintf(f, "## Provenance\n\n");
  cJSON *meta = xl_exists(p) ? rp_read_json(p) : NULL;
  if (!cJSON_IsObject(meta)) {
    fprintf(f, "_No usable run_meta.json in the run directory: commit, host, CPU and command are unknown._\n\n");
  } else {
    /* The fields a reader looks for first, then whatever else the run recorded. */
    static const char *first[] = {"commit", "version", "tool", "host", "cpu", "threads", "time", "model",
                                  "prompt_file", "search", "repeats", "seed", "command"};
    size_t nfirst = sizeof first / sizeof *first;
    fprintf(f, "| field | value |\n|---|---|\n");
    for (size_t k = 0; k < nfirst; k++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, first[k]);
      if (!v) continue;
      fprintf(f, "| %s | ", first[k]);
      rp_md_json_value(f, v);
      fprintf(f, " |\n");
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, meta) {
      int seen = 0;
      for (size_t k = 0; k < nfirst && !seen; k++) seen = !strcmp(e->string, first[k]);
      if (seen) continue;
      fputs("| ", f);
      rp_md_cell(f, e->string);
      fputs(" | ", f);
      rp_md_json_value(f, e);
      fputs(" |\n", f);
    }
    fputc('\n', f);
  }
  cJSON_Delete(meta);
  free(p);
}

void rp_profiles(FILE *f, const char *run_dir) {
  char *p = xl_path_join(run_dir, "recommended.json");
  fprintf(f, "## Recommended profiles\n\n");
  cJSON *rec = xl_exists(p) ? rp_read_json(p) : NULL;
  const cJSON *profiles = cJSON_GetObjectItemCaseSensitive(rec, "profiles");
  if (!cJSON_IsArray(profiles)) {
    fprintf(f, "_No recommended.json in the run directory (run `xl-merge %s` to choose profiles)._\n\n", run_dir);
  } else {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(rec, "quality");
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(rec, "tolerance");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(rec, "speed");
    fprintf(f, "Per context length, the fastest setting (by `%s`) on the Pareto front whose quality",
            cJSON_IsString(sp) ? sp->valuestring : "decode_tok_s");
    if (cJSON_IsString(q)) fprintf(f, " (`%s`) is not below the best measured by more than %g beyond the noise", q->valuestring, cJSON_IsNumber(tol) ? tol->valuedouble : 0);
    else fprintf(f, " (none measured) allows");
    fprintf(f, "; of settings whose speeds tie within the noise, the simpler. *significant* says whether it is faster "
               "than every other candidate beyond the noise. Use one with `--profile FILE`.\n\n");
    fputs("| context | profile", f);
    for (int k = 0; k < XS_COUNT; k++) fprintf(f, " | %s", xl_settings[k].key);
    fputs(" | decode tok/s | prefill tok/s | quality | significant | why |\n|---|---", f);
    for (int k = 0; k < XS_COUNT + 5; k++) fputs("|---", f);
    fputs("|\n", f);
    const cJSON *pr;
    cJSON_ArrayForEach(pr, profiles) {
      const cJSON *params = cJSON_GetObjectItemCaseSensitive(pr, "params");
      const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(pr, "metrics");
      const cJSON *file = cJSON_GetObjectItemCaseSensitive(pr, "file");
      fputs("| ", f);
      rp_md_json_value(f, cJSON_GetObjectItemCaseSensitive(pr, "context"));
      fputs(" | ", f);
      if (cJSON_IsString(file)) { fputc('[', f); rp_md_cell(f, file->valuestring); fputs("](", f); rp_md_cell(f, file->valuestring); fputc(')', f); }
      for (int k = 0; k < XS_COUNT; k++) {   /* every run setting, in the settings table's order */
        fputs(" | ", f);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, xl_settings[k].key);
        if (v) rp_md_json_value(f, v); else fputc('-', f);
      }
      const char *mk[3] = {"decode_tok_s", "prefill_tok_s", cJSON_IsString(q) ? q->valuestring : ""};
      for (int k = 0; k < 3; k++) {
        fputs(" | ", f);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(metrics, mk[k]);
        if (cJSON_IsNumber(v)) fprintf(f, "%.4g", v->valuedouble); else fputc('-', f);
      }
      const cJSON *sig = cJSON_GetObjectItemCaseSensitive(pr, "significant");
      const cJSON *next = cJSON_GetObjectItemCaseSensitive(pr, "vs_next");
      fprintf(f, " | %s", !cJSON_IsBool(sig) ? "-" : cJSON_IsTrue(sig) ? "yes" : next ? "no (a tie)" : "the only candidate");
      fputs(" | ", f);
      const cJSON *why = cJSON_GetObjectItemCaseSensitive(pr, "reason");
      rp_md_cell(f, cJSON_IsString(why) ? why->valuestring : "");
      fputs(" |\n", f);
    }
    fputc('\n', f);
  }
  cJSON_Delete(rec);
  free(p);
}


/* A CSV of the run for the report; NULL (and nothing said) when absent, a warning when bad. */
static int read_csv(const char *run_dir, const char *name, csvt *t) {
  char *p = xl_path_join(run_dir, name), err[1024];
  int ok = xl_exists(p) && !csvt_read(t, p, err, sizeof err);
  if (xl_exists(p) && !ok) xl_warn("%s; left out of the report", err);
  free(p);
  return ok;
}

void rp_noise(FILE *f, const char *run_dir, const char *table) {
  fprintf(f, "## Noise\n\n");
  char *mp = xl_path_join(run_dir, "run_meta.json");
  cJSON *meta = xl_exists(mp) ? rp_read_json(mp) : NULL;
  free(mp);
  const cJSON *nz = cJSON_GetObjectItemCaseSensitive(meta, "noise");
  double rep = NAN, inter = NAN;
  const cJSON *x;
  if ((x = cJSON_GetObjectItemCaseSensitive(nz, "repeats")) && cJSON_IsNumber(x)) rep = x->valuedouble;
  else if ((x = cJSON_GetObjectItemCaseSensitive(meta, "repeats")) && cJSON_IsNumber(x)) rep = x->valuedouble;
  if ((x = cJSON_GetObjectItemCaseSensitive(nz, "interleave")) && cJSON_IsNumber(x)) inter = x->valuedouble;
  if (isfinite(rep)) fprintf(f, "Each trial timed %.0f run(s) after its warm-up; ", rep);
  if (isfinite(inter)) fprintf(f, "the runs of up to %.0f trials at a time were interleaved in a shuffled order per round; ", inter);
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(nz, "reuse")))
    fprintf(f, "a speed a trial's knobs cannot change (decode speed for the backend and chunk size) was measured once and shared (`decode_from`); ");
  fprintf(f, "each speed is the mean with its 95%% interval (Student's t).\n\n");
  cJSON_Delete(meta);
  csvt t;
  char name[64];
  snprintf(name, sizeof name, "%s", table);
  if (read_csv(run_dir, name, &t)) {
    int cl = csvt_col(&t, "load_1m"), cm = csvt_col(&t, "load_1m_max");
    double lo = INFINITY, hi = -INFINITY, v;
    size_t n = 0;
    for (size_t i = 0; i < t.nrows; i++) {
      if (!csvt_num(&t, i, cl, &v)) { if (v < lo) lo = v; if (v > hi) hi = v; n++; }
      if (!csvt_num(&t, i, cm, &v) && v > hi) hi = v;
    }
    if (n) fprintf(f, "Machine load (1-minute load average, /proc/loadavg) while the trials ran: %.2f to %.2f.\n\n", lo, hi);
    csvt_free(&t);
  }
  fprintf(f, "A setting is better than another on a measurement only where their 95%% intervals do not overlap "
             "(quality: where the 95%% interval of the paired differences over the samples excludes 0); "
             "otherwise the two tie and the simpler setting (fewer knobs away from the defaults) stands for both. "
             "No setting is ranked by a measurement its knobs cannot change: the backend and chunk size change "
             "prefill speed only; heads per band and workers change speed, not the output; the matmul precision, "
             "the device and the sampling can change the output.\n\n");
  char *rp = xl_path_join(run_dir, "recommended.json");
  cJSON *rec = xl_exists(rp) ? rp_read_json(rp) : NULL;
  free(rp);
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "spread_unknown")))
    fprintf(f, "**Some speeds have no measured spread** (a single timed run): their differences cannot be told from "
               "noise, so those settings tie.\n\n");
  cJSON_Delete(rec);
}

/* "mean ± half" with the precision a report wants; "-" when missing. */
static void pm(FILE *f, const csvt *t, size_t i, const char *col, int with_ci) {
  double v;
  if (csvt_num(t, i, csvt_col(t, col), &v)) { fputc('-', f); return; }
  fprintf(f, "%.4g", v);
  if (!with_ci) return;
  double c = pareto_ci95(t, i, col);
  if (isfinite(c)) fprintf(f, " ± %.3g", c);
}

/* Row i's settings that can change the output ("matmul=bf16"), for grouping rows by output. */
static void output_setting(const csvt *t, size_t i, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  for (int kb = 0; kb < XS_COUNT; kb++) {
    if (!(xl_settings[kb].affects & XS_AFFECTS_OUTPUT)) continue;
    int w = snprintf(buf + k, k < n ? n - k : 0, "%s=%s;", xl_settings[kb].key, csvt_get(t, i, csvt_col(t, xl_settings[kb].key)));
    if (w > 0) k += (size_t)w;
  }
  snprintf(buf + (k < n ? k : n - 1), k < n ? n - k : 1, "%s", csvt_get(t, i, csvt_col(t, "sampling")));
}

void rp_front(FILE *f, const char *run_dir) {
  csvt t;
  if (!read_csv(run_dir, "merged.csv", &t)) return;
  int cfront = csvt_col(&t, "front");
  if (cfront < 0) { csvt_free(&t); return; }
  fprintf(f, "## Pareto front\n\nPer context length, the settings no other beats on one objective without losing on "
             "another, beyond the noise (`pareto.csv`). Each is compared with the recommended setting: *better* or "
             "*worse* only where the difference is significant (95%%), *tie* otherwise. Settings that tie with a "
             "front setting on every objective are listed as its equivalents in `merged.csv` (`tied_with`); an "
             "output setting (matmul, device, sampling) with no setting on the front is shown by its fastest "
             "setting, with what keeps it off.\n\n");
  const char *q = pareto_quality_column(&t);
  char qci[96];
  snprintf(qci, sizeof qci, "%s_ci95", q ? q : "");
  int n_pg = 0;
  pareto_group *gs = xl_malloc((t.nrows ? t.nrows : 1) * sizeof *gs);
  int *grp = xl_malloc((t.nrows ? t.nrows : 1) * sizeof *grp);
  size_t ng = pareto_group_table(&t, NULL, grp, gs);
  size_t *order = xl_malloc((ng ? ng : 1) * sizeof *order);
  pareto_group_order(gs, ng, order);
  fprintf(f, "| context | setting | prefill tok/s | decode tok/s | %s | vs recommended | ties with it |\n|---|---|---|---|---|---|---|\n",
          q ? q : "quality");
  /* the front rows, then the fastest row of each output setting (matmul, device, sampling)
   * that has none on the front, with what keeps it off */
  unsigned char *show = xl_calloc(t.nrows ? t.nrows : 1, 1);
  for (size_t i = 0; i < t.nrows; i++) show[i] = !strcmp(csvt_get(&t, i, cfront), "1");
  for (size_t i = 0; i < t.nrows; i++) {
    char li[256], lj[256];
    double di, dj;
    if (show[i] || grp[i] < 0 || csvt_num(&t, i, csvt_col(&t, "decode_tok_s"), &di)) continue;
    output_setting(&t, i, li, sizeof li);
    int covered = 0, best = 1;
    for (size_t j = 0; j < t.nrows && (!covered || best); j++) {
      if (j == i || grp[j] != grp[i]) continue;
      output_setting(&t, j, lj, sizeof lj);
      if (strcmp(li, lj)) continue;
      if (!strcmp(csvt_get(&t, j, cfront), "1")) covered = 1;
      if (!csvt_num(&t, j, csvt_col(&t, "decode_tok_s"), &dj) && (dj > di || (dj == di && j < i))) best = 0;
    }
    if (!covered && best) show[i] = 2;
  }
  for (size_t oi = 0; oi < ng; oi++)
    for (int pass = 1; pass <= 2; pass++)
    for (size_t i = 0; i < t.nrows; i++) {
      if (grp[i] != (int)order[oi] || show[i] != pass) continue;
      n_pg++;
      if (isnan(gs[order[oi]].ctx)) fputs("| ? | `", f);
      else fprintf(f, "| %.0f | `", gs[order[oi]].ctx);
      rp_md_cell(f, csvt_get(&t, i, csvt_col(&t, "slug")));
      fputs("` | ", f);
      pm(f, &t, i, "prefill_tok_s", 1);
      fputs(" | ", f);
      pm(f, &t, i, "decode_tok_s", 1);
      fputs(" | ", f);
      if (q) {
        double v, c;
        if (!csvt_num(&t, i, csvt_col(&t, q), &v)) {
          fprintf(f, "%.4g", v);
          if (!csvt_num(&t, i, csvt_col(&t, qci), &c)) fprintf(f, " ± %.3g", c);
        } else fputc('-', f);
      } else fputc('-', f);
      fputs(" | ", f);
      const char *vs = csvt_get(&t, i, csvt_col(&t, "vs_recommended"));
      if (!strcmp(vs, "recommended")) fputs("**recommended**", f);
      else
        for (const char *p = vs; *p; p++) fputs(*p == ',' ? "; " : *p == ':' ? " " : (char[2]){*p, 0}, f);
      if (pass == 2) {
        const char *by = csvt_get(&t, i, csvt_col(&t, "dominated_by")), *tw = csvt_get(&t, i, csvt_col(&t, "tied_with"));
        fputs(*by ? " (off the front: dominated by `" : *tw ? " (off the front: ties with `" : " (off the front", f);
        rp_md_cell(f, *by ? by : tw);
        fputs(*by || *tw ? "`)" : ")", f);
      }
      fputs(" | ", f);
      size_t nt = 0;
      for (size_t j = 0; j < t.nrows; j++)
        if (!strcmp(csvt_get(&t, j, csvt_col(&t, "tied_with")), csvt_get(&t, i, csvt_col(&t, "slug")))) nt++;
      fprintf(f, "%zu |\n", nt);
    }
  if (!n_pg) fputs("| - | (no front: no successful trial has every objective) | | | | | |\n", f);
  fputc('\n', f);
  free(show);
  free(gs); free(grp); free(order);
  csvt_free(&t);
}

void rp_quality(FILE *f, const char *run_dir, int identical) {
  csvt t;
  int have = read_csv(run_dir, "quality.csv", &t);
  fprintf(f, "## Quality against the reference\n\n");
  if (!have) {
    fprintf(f, "_No quality.csv (xl-merge writes it when the outputs were rated)._\n\n");
    if (identical) fprintf(f, "**Every setting gave the same output**: quality cannot tell the settings apart.\n\n");
    return;
  }
  fprintf(f, "Each output setting's continuations, sample by sample, against the reference (the default precision, "
             "device and sampling: fp32 greedy on the CPU) at the same context and prompt window: the mean difference "
             "of the critic's log-probability per token with its 95%% interval, the verdict, and how much of the "
             "reference's greedy tokens it reproduces from the start.\n\n");
  fputs("| context | setting | samples | quality | difference [95% interval] | verdict | greedy agreement | identical outputs |\n"
        "|---|---|---|---|---|---|---|---|\n", f);
  int all_same = 1;
  for (size_t i = 0; i < t.nrows; i++) {
    const char *g = csvt_get(&t, i, csvt_col(&t, "all_identical"));
    all_same &= !strcmp(g, "yes");
    fputs("| ", f);
    rp_md_cell(f, csvt_get(&t, i, csvt_col(&t, "context")));
    fputs(" | ", f);
    rp_md_cell(f, csvt_get(&t, i, csvt_col(&t, "setting")));
    fprintf(f, " | %s | ", csvt_get(&t, i, csvt_col(&t, "samples")));
    pm(f, &t, i, "quality", 0);
    fputs(" | ", f);
    double d, lo, hi;
    if (!csvt_num(&t, i, csvt_col(&t, "diff"), &d)) {
      fprintf(f, "%+.4g", d);
      if (!csvt_num(&t, i, csvt_col(&t, "diff_lo"), &lo) && !csvt_num(&t, i, csvt_col(&t, "diff_hi"), &hi))
        fprintf(f, " [%+.4g, %+.4g]", lo, hi);
    } else fputc('-', f);
    const char *v = csvt_get(&t, i, csvt_col(&t, "verdict"));
    fprintf(f, " | %s%s%s | ", !strcmp(v, "worse") || !strcmp(v, "better") ? "**" : "", v,
            !strcmp(v, "worse") || !strcmp(v, "better") ? "** (significant)" : "");
    double a;
    if (!csvt_num(&t, i, csvt_col(&t, "greedy_agree"), &a)) fprintf(f, "%.0f%%", 100 * a);
    else fputc('-', f);
    fprintf(f, " | %s of %s |\n", csvt_get(&t, i, csvt_col(&t, "identical_outputs")), csvt_get(&t, i, csvt_col(&t, "samples")));
  }
  fputc('\n', f);
  if ((identical || all_same) && t.nrows)
    fprintf(f, "**Every setting gave the same output** at every context: quality cannot tell the settings apart, and the "
               "speed-quality figure shows one quality value.\n\n");
  csvt_free(&t);
}
