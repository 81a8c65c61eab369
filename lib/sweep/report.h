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

#endif
