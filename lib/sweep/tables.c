/* tables: strict reading of the pipeline's CSV tables (see tables.h). The cells are read by
 * csvt; a second pass of the same parser (libcsv, same options) counts each record's
 * cells and notes the line it starts on. */
#include "sweep/tables.h"
#include "base/util.h"
#include <csv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  size_t line;          /* the physical line being fed */
  size_t start;         /* the line the current record's first cell ends on */
  size_t cells;         /* cells of the current record so far */
  size_t header;        /* cells of the header; 0 until it has been read */
  size_t bad_line, bad_cells;
} count_state;

static void on_cell(void *data, size_t len, void *user) {
  count_state *c = user;
  (void)data, (void)len;
  if (!c->cells++) c->start = c->line;
}

static void on_record(int term, void *user) {
  count_state *c = user;
  (void)term;
  if (!c->header) c->header = c->cells;
  else if (c->cells != c->header && !c->bad_line) c->bad_line = c->start, c->bad_cells = c->cells;
  c->cells = 0;
}

int sw_table_check(const char *name, const char *data, size_t len, char *err, size_t errlen) {
  struct csv_parser p;
  if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL)) return xl_errf(err, errlen, "%s: cannot start the CSV parser", name);
  if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) data += 3, len -= 3;   /* as csvt: a byte order mark */
  count_state c = {.line = 1};
  int rc = 0;
  /* fed a line at a time, so a record's cells know the line they are on */
  for (size_t at = 0; at < len && !rc;) {
    const char *nl = memchr(data + at, '\n', len - at);
    size_t n = nl ? (size_t)(nl - (data + at)) + 1 : len - at;
    if (csv_parse(&p, data + at, n, on_cell, on_record, &c) != n)
      rc = xl_errf(err, errlen, "%s: line %zu: CSV syntax error: %s", name, c.line, csv_strerror(csv_error(&p)));
    at += n;
    c.line++;
  }
  if (!rc && csv_fini(&p, on_cell, on_record, &c))
    rc = xl_errf(err, errlen, "%s: CSV syntax error at the end: %s", name, csv_strerror(csv_error(&p)));
  csv_free(&p);
  if (!rc && c.bad_line)
    rc = xl_errf(err, errlen, "%s: line %zu has %zu cell%s, the header has %zu (a row must have one cell per column)",
                 name, c.bad_line, c.bad_cells, c.bad_cells == 1 ? "" : "s", c.header);
  return rc;
}

int sw_table_read(csvt *t, const char *path, char *err, size_t errlen) {
  size_t len;
  char *buf = xl_read_file(path, &len);
  if (!buf) {
    memset(t, 0, sizeof *t);
    return xl_errf(err, errlen, "%s: %s", path, strerror(errno));
  }
  int rc = csvt_parse(t, path, buf, len, err, errlen);
  if (!rc && sw_table_check(path, buf, len, err, errlen)) {
    csvt_free(t);
    memset(t, 0, sizeof *t);
    rc = -1;
  }
  free(buf);
  return rc;
}
