/* report: Markdown pieces of a run's report.md that come from the run directory's files.
 * See report.c. */
#ifndef XL_SWEEP_REPORT_H
#define XL_SWEEP_REPORT_H
#include <cJSON.h>
#include <stdio.h>

/* s as a table cell: '|' escaped, line breaks as spaces. */
void rp_md_cell(FILE *f, const char *s);
/* A JSON value as one line of report text (a command line as code, a {"path":...} object
 * as its path and the rest in parentheses, anything else as compact JSON). */
void rp_md_json_value(FILE *f, const cJSON *v);
/* A JSON file of the run; a bad one is left out of the report with a warning (NULL). */
cJSON *rp_read_json(const char *path);
/* "## Provenance": run_meta.json's fields, the ones a reader looks for first. */
void rp_provenance(FILE *f, const char *run_dir);
/* "## Recommended profiles": recommended.json's profiles, one row per context length. */
void rp_profiles(FILE *f, const char *run_dir);
/* "## Noise": how the speeds were measured (repeats, interleaving, shared measurements),
 * the machine's load while they ran, and the rule that tells a difference from noise. */
void rp_noise(FILE *f, const char *run_dir, const char *table);
/* "## Pareto front": merged.csv's front rows per context with their 95% intervals and, for
 * each, which differences from the recommended setting are significant. */
void rp_front(FILE *f, const char *run_dir);
/* "## Quality against the reference": quality.csv's paired comparisons; identical: every
 * setting gave the same output (said in so many words). */
void rp_quality(FILE *f, const char *run_dir, int identical);

#endif
