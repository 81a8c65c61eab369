/* filekind: what kind of file a path holds, so that no tool overwrites a file of another
 * kind (a --profile-log aimed at recommended.json, a state file aimed at a model's
 * weights, a CSV over a run's trials.jsonl). Every writer states the kind it writes (a
 * format and, optionally, a signature: the JSON key, CSV first column or safetensors
 * "format" its files carry) and asks xl_kind_check before it replaces a file; the shared
 * writers (records, csvtable, safetensors, telemetry logs) do so themselves.
 * Sniffing reads at most the first MiB. Not for: validating a file's content (the readers
 * do that). */
#ifndef XL_FILEKIND_H
#define XL_FILEKIND_H
#include <stddef.h>

typedef enum {
  XK_TEXT,         /* free text: any file that is not one of the structured kinds below */
  XK_JSON,         /* one JSON object (sig: a key it has at top level) */
  XK_NDJSON,       /* JSON objects one per line (sig: a key of the first line's object) */
  XK_CSV,          /* a CSV table with a header row (sig: the header's first column) */
  XK_SAFETENSORS,  /* a safetensors file (sig: __metadata__.format, e.g. "xl-state-1") */
  XK_PNG,
  XK_SVG,
  XK_DATA,         /* xl-plot's gnuplot data files: text whose first line starts with '#' */
} xk_format;

/* "a JSON file", "a CSV table", ... for messages. */
const char *xk_name(xk_format f);

/* What path holds, as text for messages ("a JSON file with keys params, metrics",
 * "a CSV table (header: slug,trial,...)", "binary data", "nothing"), into buf. */
const char *xk_describe(const char *path, char *buf, size_t n);

/* Whether a writer of format fmt (and signature sig, NULL = any) may replace path: yes when
 * it does not exist, is empty, is not a regular file (a device or FIFO is written in
 * place), or is of the same kind. Otherwise -1, after a warning on stderr
 * ("PATH: refusing to overwrite it: it is a JSON file with keys tool, version, ..., not a
 * CSV table starting with 'slug'"), with errno = EEXIST. */
int xl_kind_check(const char *path, xk_format fmt, const char *sig);
/* The same without the warning: the message goes into err. */
int xl_kind_check_msg(const char *path, xk_format fmt, const char *sig, char *err, size_t errlen);

#endif
