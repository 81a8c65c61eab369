/* records: the record files the tools pass around, seen as cJSON objects.
 * Reads NDJSON files (one JSON object per line) into a cJSON array, with errors that
 * name file:line; writes NDJSON lines; and writes CSV (RFC 4180 quoting) from cJSON
 * objects through an explicit column list, so NDJSON and CSV share one field schema.
 * Every writer here replaces ill-formed UTF-8 in strings (a judge's reply, a CSV cell, a
 * prompt) with U+FFFD: no JSON or CSV output carries bytes that strict readers refuse.
 * Not for: the meaning of any field (each tool knows its own), or reading CSV.
 *
 * Ownership: every cJSON returned here belongs to the caller (cJSON_Delete).
 * Nothing here keeps state; all functions are thread-safe on distinct streams. */
#ifndef XL_RECORDS_H
#define XL_RECORDS_H
#include <stddef.h>
#include <stdio.h>
#include <cJSON.h>

/* ---- NDJSON ---- */

/* Reads an NDJSON file into a cJSON array of its objects, in file order.
 * Blank lines (only spaces/tabs/CR) are skipped; a final line without '\n' counts.
 * Returns NULL on error with a message in err (always NUL-terminated), e.g.
 *   "runs/a/outputs.jsonl: No such file or directory"
 *   "runs/a/outputs.jsonl:7: not valid JSON (near column 12)"
 *   "runs/a/outputs.jsonl:9: not a JSON object"
 * An empty file gives an empty array. */
cJSON *rec_ndjson_read(const char *path, char *err, size_t errlen);

/* Reads a whole JSON file (one value, e.g. run_meta.json). NULL on error with a message
 * in err: "PATH: No such file or directory" or "PATH: not valid JSON". */
cJSON *rec_json_read(const char *path, char *err, size_t errlen);

/* The same over a buffer already in memory; name is used in messages only. */
cJSON *rec_ndjson_parse(const char *buf, size_t len, const char *name, char *err, size_t errlen);

/* Writes obj as one compact JSON line ending in '\n'. 0 ok, -1 on error. */
int rec_ndjson_write(FILE *f, const cJSON *obj);

/* Writes j as pretty-printed JSON and a newline to path, atomically. 0 ok; -1 errno. */
int rec_json_save(const char *path, const cJSON *j);
/* Writes rows (a cJSON array of objects) as a whole NDJSON file, atomically (util.h
 * xl_atomic: a reader never sees half a file). 0 ok, -1 with errno. */
int rec_ndjson_save(const char *path, const cJSON *rows);
/* The same, with the key that names the file's kind given (the first record's first key
 * by default: a rewrite that may drop that record names it itself). */
int rec_ndjson_save_kind(const char *path, const cJSON *rows, const char *key);

/* ---- CSV ----
 * Quoting follows RFC 4180: a field that holds a comma, a double quote, CR or LF, or
 * that starts or ends with a space or tab, is written inside double quotes with each
 * inner quote doubled; any other field is written as is. Rows end in "\n". */

/* Writes one field (no separator). NULL writes an empty field. 0 ok, -1 write error. */
int rec_csv_field(FILE *f, const char *s);

/* Writes the header row: the column names, comma-separated. 0 ok, -1 write error. */
int rec_csv_header(FILE *f, const char *const *cols, size_t ncols);

/* Writes one row: for each column, the member of obj with that name, formatted as
 *   missing or null -> empty field
 *   string          -> its text (quoted when needed)
 *   true / false    -> "true" / "false"
 *   number          -> integer digits when the value is integral and |v| < 2^53,
 *                      otherwise the shortest %g form that reads back to the same double
 *   array / object  -> its compact JSON text (quoted when needed)
 * 0 ok, -1 write error. */
int rec_csv_row(FILE *f, const cJSON *obj, const char *const *cols, size_t ncols);

/* Formats a number as rec_csv_row does into buf (>= 32 bytes). */
void rec_format_number(char *buf, size_t n, double v);

/* Writes rows (a cJSON array of objects) as a complete CSV file: header + one row each.
 * 0 ok, -1 write error. */
int rec_csv_write_all(FILE *f, const cJSON *rows, const char *const *cols, size_t ncols);
/* The same as a whole file, atomically. 0 ok, -1 with errno. */
int rec_csv_save(const char *path, const cJSON *rows, const char *const *cols, size_t ncols);
/* rows as NDJSON to jsonl and as CSV to csv, both replaced or neither: each is written to
 * its temporary file, and only when both are complete (a full disk fails the second as
 * readily as the first) are they renamed. 0 ok; -1 with errno and *bad = the path that
 * failed. */
int rec_save_pair(const char *jsonl, const char *csv, const cJSON *rows, const char *const *cols, size_t ncols,
                  const char **bad);

/* ---- small lookups ---- */

/* obj[key] as a string, or NULL when missing or not a string. */
const char *rec_str(const cJSON *obj, const char *key);
/* obj[key] as a number into *out: 0 ok, -1 when missing or not a number. */
int rec_num(const cJSON *obj, const char *key, double *out);

#endif
