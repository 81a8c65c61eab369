/* csvtable: a CSV file held in memory as a table of string cells, with columns
 * found by header name (readers never rely on column positions), and CSV output
 * with minimal RFC 4180 quoting written atomically (temp + rename).
 * Parsing is done by libcsv. Cells are always non-NULL; an absent value is "".
 * Not for: streaming huge files (everything is kept in memory) or typed columns;
 * numbers are parsed on demand with csvt_num.
 * Ownership: a csvt owns its header and cells; csvt_free releases them. */
#ifndef XL_CSVTABLE_H
#define XL_CSVTABLE_H
#include <stddef.h>
#include <stdio.h>

typedef struct {
  size_t ncols;
  size_t nrows;
  size_t cap;      /* rows allocated */
  char **header;   /* [ncols], owned */
  char **cells;    /* [nrows * ncols], row-major, owned, never NULL */
} csvt;

/* Reads a CSV file whose first row is the header. Short rows are padded with "";
 * a row longer than the header, an empty header name, a duplicate header name or a
 * quoting error is an error. Returns 0, or -1 with a message (naming the file and
 * line where it helps) in err. A file with only a header gives nrows = 0; an empty
 * file is an error. */
int csvt_read(csvt *t, const char *path, char *err, size_t errlen);
/* The same from a memory buffer; name is used in messages. */
int csvt_parse(csvt *t, const char *name, const char *data, size_t len, char *err, size_t errlen);

/* An empty table with the given header (names are copied). */
void csvt_init(csvt *t, size_t ncols, const char *const *names);
/* Appends a row; vals[ncols] (NULL entries become ""). Copies the strings. */
void csvt_add_row(csvt *t, const char *const *vals);
/* Appends a column named name with every cell "" and returns its index. */
size_t csvt_add_col(csvt *t, const char *name);
void csvt_free(csvt *t);

/* Index of the column called name, or -1. */
int csvt_col(const csvt *t, const char *name);
/* The cell, or "" when col < 0 (so a missing column reads as missing values). */
const char *csvt_get(const csvt *t, size_t row, int col);
/* Replaces a cell (copies val). */
void csvt_set(csvt *t, size_t row, size_t col, const char *val);
/* Parses a cell as a finite number: 0 and *out on success, -1 if empty or not a
 * number ("null", "NaN", "abc" are all missing). */
int csvt_num(const csvt *t, size_t row, int col, double *out);
/* Writes the table (header + rows) to a stream; 0 ok, -1 on a write error. */
int csvt_write_stream(const csvt *t, FILE *f);
/* Writes the table atomically to path; 0 ok, -1 with errno set. */
int csvt_write(const csvt *t, const char *path);
/* Writes only the rows whose keep[row] is non-zero, atomically. */
int csvt_write_rows(const csvt *t, const char *path, const unsigned char *keep);

#endif
