/* csvtable: CSV read into a string table (via libcsv) and quoted CSV write. See csvtable.h. */
#include "io/csvtable.h"
#include "io/records.h"
#include "base/filekind.h"
#include "base/util.h"
#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Parser state handed to the libcsv callbacks. */
typedef struct {
  csvt *t;
  char **row;       /* fields of the row being read, owned until the row ends */
  size_t nrow, caprow;
  size_t line;      /* 1-based record number, for messages */
  int header_done;
  char *err;        /* first error message, owned */
} parse_state;

static void set_err(parse_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(parse_state *s, const char *fmt, ...) {
  if (s->err) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  s->err = xl_strdup(buf);
}

static void on_field(void *data, size_t len, void *user) {
  parse_state *s = user;
  if (s->nrow == s->caprow) {
    s->caprow = s->caprow ? 2 * s->caprow : 16;
    s->row = xl_realloc(s->row, s->caprow * sizeof *s->row);
  }
  char *v = xl_malloc(len + 1);
  if (len) memcpy(v, data, len);
  v[len] = 0;
  if (!xl_utf8_valid(v, strlen(v))) {   /* text is valid UTF-8 from here on (U+FFFD for what is not) */
    char *t = xl_utf8_lossy(v);
    free(v);
    v = t;
  }
  s->row[s->nrow++] = v;
}

static void drop_row(parse_state *s) {
  for (size_t i = 0; i < s->nrow; i++) free(s->row[i]);
  s->nrow = 0;
}

static void on_row(int term, void *user) {
  parse_state *s = user;
  csvt *t = s->t;
  s->line++;
  if (s->err) { drop_row(s); return; }
  if (!s->header_done) {
    for (size_t i = 0; i < s->nrow; i++) {
      if (!s->row[i][0]) { set_err(s, "header column %zu has no name", i + 1); break; }
      for (size_t j = 0; j < i; j++)
        if (!strcmp(s->row[i], s->row[j])) { set_err(s, "duplicate column '%s' in header", s->row[i]); break; }
    }
    if (s->err) { drop_row(s); return; }
    t->ncols = s->nrow;
    t->header = xl_malloc(s->nrow * sizeof *t->header);
    memcpy(t->header, s->row, s->nrow * sizeof *s->row);
    s->nrow = 0;
    s->header_done = 1;
    return;
  }
  if (s->nrow > t->ncols) {
    set_err(s, "line %zu has %zu fields, the header has %zu", s->line, s->nrow, t->ncols);
    drop_row(s);
    return;
  }
  if (t->nrows == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    t->cells = xl_realloc(t->cells, t->cap * t->ncols * sizeof *t->cells + 1);
  }
  char **dst = t->cells + t->nrows * t->ncols;
  for (size_t i = 0; i < t->ncols; i++) dst[i] = i < s->nrow ? s->row[i] : xl_strdup("");
  s->nrow = 0;
  t->nrows++;
}

int csvt_parse(csvt *t, const char *name, const char *data, size_t len, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  struct csv_parser p;
  if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL)) {
    snprintf(err, errlen, "%s: cannot start the CSV parser", name);
    return -1;
  }
  /* Skip a UTF-8 byte order mark so the first column name is not polluted. */
  if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) { data += 3; len -= 3; }
  parse_state s = {.t = t};
  int rc = 0;
  if (csv_parse(&p, data, len, on_field, on_row, &s) != len) {
    set_err(&s, "CSV syntax error near record %zu: %s", s.line + 1, csv_strerror(csv_error(&p)));
  } else if (csv_fini(&p, on_field, on_row, &s)) {
    set_err(&s, "CSV syntax error at end of file: %s", csv_strerror(csv_error(&p)));
  }
  csv_free(&p);
  drop_row(&s);
  free(s.row);
  if (!s.err && !s.header_done) set_err(&s, "empty file (no header row)");
  if (s.err) {
    snprintf(err, errlen, "%s: %s", name, s.err);
    free(s.err);
    csvt_free(t);
    rc = -1;
  }
  return rc;
}

int csvt_read(csvt *t, const char *path, char *err, size_t errlen) {
  size_t len;
  char *buf = xl_read_file(path, &len);
  if (!buf) {
    memset(t, 0, sizeof *t);
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  int rc = csvt_parse(t, path, buf, len, err, errlen);
  free(buf);
  return rc;
}

void csvt_init(csvt *t, size_t ncols, const char *const *names) {
  memset(t, 0, sizeof *t);
  t->ncols = ncols;
  t->header = xl_malloc((ncols ? ncols : 1) * sizeof *t->header);
  for (size_t i = 0; i < ncols; i++) t->header[i] = xl_strdup(names[i]);
}

void csvt_add_row(csvt *t, const char *const *vals) {
  if (t->nrows == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    t->cells = xl_realloc(t->cells, t->cap * t->ncols * sizeof *t->cells + 1);
  }
  char **dst = t->cells + t->nrows * t->ncols;
  for (size_t i = 0; i < t->ncols; i++) dst[i] = xl_strdup(vals[i] ? vals[i] : "");
  t->nrows++;
}

size_t csvt_add_col(csvt *t, const char *name) {
  size_t nc = t->ncols + 1;
  char **cells = xl_malloc((t->nrows ? t->nrows : 1) * nc * sizeof *cells);
  for (size_t r = 0; r < t->nrows; r++) {
    memcpy(cells + r * nc, t->cells + r * t->ncols, t->ncols * sizeof *cells);
    cells[r * nc + t->ncols] = xl_strdup("");
  }
  free(t->cells);
  t->cells = cells;
  t->cap = t->nrows;
  t->header = xl_realloc(t->header, nc * sizeof *t->header);
  t->header[t->ncols] = xl_strdup(name);
  t->ncols = nc;
  return nc - 1;
}

void csvt_free(csvt *t) {
  if (t->cells)
    for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
  if (t->header)
    for (size_t i = 0; i < t->ncols; i++) free(t->header[i]);
  free(t->cells);
  free(t->header);
  memset(t, 0, sizeof *t);
}

int csvt_col(const csvt *t, const char *name) {
  for (size_t i = 0; i < t->ncols; i++)
    if (!strcmp(t->header[i], name)) return (int)i;
  return -1;
}

const char *csvt_get(const csvt *t, size_t row, int col) {
  if (col < 0 || (size_t)col >= t->ncols || row >= t->nrows) return "";
  return t->cells[row * t->ncols + (size_t)col];
}

void csvt_set(csvt *t, size_t row, size_t col, const char *val) {
  char **c = &t->cells[row * t->ncols + col];
  char *v = xl_strdup(val ? val : "");
  free(*c);
  *c = v;
}

int csvt_num(const csvt *t, size_t row, int col, double *out) {
  double v;
  if (xl_parse_double(csvt_get(t, row, col), -1e308, 1e308, &v)) return -1;
  *out = v;
  return 0;
}

/* Fields are quoted by records.c's rule (RFC 4180), so a table read and written back
 * matches the CSV the tools write from records; write errors are caught by ferror. */
static int write_rows(const csvt *t, FILE *f, const unsigned char *keep) {
  for (size_t c = 0; c < t->ncols; c++) {
    if (c) fputc(',', f);
    rec_csv_field(f, t->header[c]);
  }
  fputc('\n', f);
  for (size_t r = 0; r < t->nrows; r++) {
    if (keep && !keep[r]) continue;
    /* a row of one empty cell is written "" : an empty line would be read as no row */
    if (t->ncols == 1 && (!t->cells[r] || !t->cells[r][0])) { fputs("\"\"\n", f); continue; }
    for (size_t c = 0; c < t->ncols; c++) {
      if (c) fputc(',', f);
      rec_csv_field(f, t->cells[r * t->ncols + c]);
    }
    fputc('\n', f);
  }
  return ferror(f) ? -1 : 0;
}

int csvt_write_stream(const csvt *t, FILE *f) { return write_rows(t, f, NULL); }

int csvt_write_rows(const csvt *t, const char *path, const unsigned char *keep) {
  xl_atomic a;
  if (xl_kind_check(path, XK_CSV, t->ncols ? t->header[0] : NULL) || xl_atomic_open(&a, path)) return -1;
  if (write_rows(t, a.f, keep)) {
    int e = errno ? errno : EIO;
    xl_atomic_abort(&a);
    errno = e;
    return -1;
  }
  return xl_atomic_commit(&a);
}

int csvt_write(const csvt *t, const char *path) { return csvt_write_rows(t, path, NULL); }
