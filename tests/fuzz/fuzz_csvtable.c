/* fuzz_csvtable: CSV tables (io/csvtable.h: csvt_parse, the reader behind csvt_read) on
 * arbitrary bytes. An accepted table has unique non-empty column names (csvt_col finds
 * each at its index) and ncols cells per row; every cell is read as text and as a number;
 * the table is extended the ways xl-merge does (a column, a row, a changed cell); and it
 * is written out (csvt_write_stream, to memory) and read back to the same table. */
#include "fuzz_common.h"
#include "io/csvtable.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  return 0;
}

static void same_table(const csvt *a, const csvt *b, const char *text) {
  FZ_CHECK(a->ncols == b->ncols && a->nrows == b->nrows, "written table reads back as %zux%zu, not %zux%zu:\n%s", b->nrows,
           b->ncols, a->nrows, a->ncols, text);
  for (size_t c = 0; c < a->ncols; c++) FZ_CHECK(!strcmp(a->header[c], b->header[c]), "header %zu differs", c);
  for (size_t i = 0; i < a->nrows * a->ncols; i++)
    FZ_CHECK(!strcmp(a->cells[i], b->cells[i]), "cell %zu reads back as '%s', not '%s'", i, b->cells[i], a->cells[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  csvt t;
  char err[512];
  if (csvt_parse(&t, "in.csv", (const char *)data, size, err, sizeof err)) {
    FZ_CHECK(err[0], "refused without a message");
    FZ_CHECK(t.cells == NULL && t.header == NULL, "a refused table keeps memory");
    return 0;
  }
  FZ_CHECK(t.ncols >= 1, "no columns");
  for (size_t c = 0; c < t.ncols; c++) {
    FZ_CHECK(t.header[c][0], "empty column name");
    FZ_CHECK(csvt_col(&t, t.header[c]) == (int)c, "column '%s' is not found at %zu", t.header[c], c);
  }
  unsigned h = 0;
  for (size_t r = 0; r < t.nrows; r++)
    for (size_t c = 0; c < t.ncols; c++) {
      double d;
      const char *v = csvt_get(&t, r, (int)c);
      FZ_CHECK(v != NULL, "NULL cell");
      h += (unsigned)strlen(v);
      if (!csvt_num(&t, r, (int)c, &d)) h += d > 0;
    }
  FZ_CHECK(*csvt_get(&t, 0, -1) == 0 && *csvt_get(&t, t.nrows, 0) == 0, "out-of-range cells are not empty");
  fz_sink += h;

  /* written and read back */
  char *buf = NULL;
  size_t blen = 0;
  FILE *mem = open_memstream(&buf, &blen);
  FZ_CHECK(csvt_write_stream(&t, mem) == 0, "write failed");
  fclose(mem);
  csvt u;
  FZ_CHECK(csvt_parse(&u, "written.csv", buf, blen, err, sizeof err) == 0, "the written table does not read back: %s\n%s", err,
           buf);
  same_table(&t, &u, buf);
  csvt_free(&u);
  free(buf);

  /* extended as the tools extend tables */
  size_t nc = csvt_add_col(&t, "fuzz_added");
  FZ_CHECK(nc == t.ncols - 1 && csvt_col(&t, "fuzz_added") >= 0, "added column");
  const char **row = calloc(t.ncols, sizeof *row);
  row[0] = "x,\"y\"\n";
  csvt_add_row(&t, row);
  free(row);
  csvt_set(&t, t.nrows - 1, nc, " edge ");
  FZ_CHECK(csvt_write_stream(&t, fz_null()) == 0, "write failed");
  csvt_free(&t);
  return 0;
}
