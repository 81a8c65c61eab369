/* report: the parts of a run's report.md written from the run's own files, in Markdown:
 * the provenance (run_meta.json) and the recommended profiles (recommended.json, one column
 * per run setting of cli/settings.h); and Markdown-safe cells for the tools' own tables.
 * Not for: figures or the results table (xl-plot). */
#include "sweep/report.h"
#include "cli/settings.h"
#include "io/records.h"
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
    if (cJSON_IsString(q)) fprintf(f, " (`%s`) is within %g of the best measured", q->valuestring, cJSON_IsNumber(tol) ? tol->valuedouble : 0);
    else fprintf(f, " (none measured) allows");
    fprintf(f, ". Use one with `--profile FILE`.\n\n");
    fputs("| context | profile", f);
    for (int k = 0; k < XS_COUNT; k++) fprintf(f, " | %s", xl_settings[k].key);
    fputs(" | decode tok/s | prefill tok/s | quality | why |\n|---|---", f);
    for (int k = 0; k < XS_COUNT + 4; k++) fputs("|---", f);
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

