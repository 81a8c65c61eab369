/* fuzz_records: NDJSON record files (io/records.h: rec_ndjson_parse, the reader behind
 * rec_ndjson_read) on arbitrary bytes. Accepted input is an array of objects, which are
 * then written the ways the tools write them: NDJSON lines (which must read back to
 * records that are written the same way) and CSV through a column list made of the first
 * record's keys (which must read back, by csvt_parse, to one row per record with each
 * string member's text), with the rec_str / rec_num lookups on every member. Output goes
 * to memory or /dev/null. */
#include "fuzz_common.h"
#include "base/util.h"
#include "io/csvtable.h"
#include "io/records.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  fz_null();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512];
  cJSON *arr = rec_ndjson_parse((const char *)data, size, "in.jsonl", err, sizeof err);
  if (!arr) {
    FZ_CHECK(err[0], "refused without a message");
    return 0;
  }
  FZ_CHECK(cJSON_IsArray(arr), "not an array");
  /* NDJSON out, and back in */
  char *buf = NULL;
  size_t blen = 0;
  FILE *mem = open_memstream(&buf, &blen);
  const cJSON *r;
  cJSON_ArrayForEach(r, arr) {
    FZ_CHECK(cJSON_IsObject(r), "a record that is not an object");
    FZ_CHECK(rec_ndjson_write(mem, r) == 0, "write failed");
  }
  fclose(mem);
  cJSON *back = rec_ndjson_parse(buf, blen, "written", err, sizeof err);
  FZ_CHECK(back != NULL, "written NDJSON does not parse back: %s", err);
  char *buf2 = NULL;
  size_t blen2 = 0;
  mem = open_memstream(&buf2, &blen2);
  cJSON_ArrayForEach(r, back) rec_ndjson_write(mem, r);
  fclose(mem);
  /* compared as text: cJSON_Compare is exponential in the nesting depth and blind to
   * duplicate keys */
  FZ_CHECK(cJSON_GetArraySize(back) == cJSON_GetArraySize(arr) && blen2 == blen && !memcmp(buf, buf2, blen),
           "written NDJSON reads back as other records:\n%s\n%s", buf, buf2);
  cJSON_Delete(back);
  free(buf);
  free(buf2);
  /* CSV out through the first record's keys (a few missing ones too) */
  enum { MAXC = 32 };
  const char *cols[MAXC];
  size_t nc = 0;
  const cJSON *first = cJSON_GetArrayItem(arr, 0), *m;
  cJSON_ArrayForEach(m, first) {
    if (nc < MAXC - 2) cols[nc++] = m->string;
    double d;
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(first, m->string);   /* the first of duplicate keys */
    const char *s = rec_str(first, m->string);
    FZ_CHECK(!s == !cJSON_IsString(g), "rec_str");
    FZ_CHECK((rec_num(first, m->string, &d) == 0) == !!cJSON_IsNumber(g), "rec_num");
  }
  FZ_CHECK(rec_csv_write_all(fz_null(), arr, cols, nc) == 0, "csv write failed");
  /* with unique non-empty column names, the CSV reads back (csvt_parse) to a row per
   * record, and a string member to its own text */
  size_t k = 0;
  for (size_t i = 0; i < nc; i++) {
    /* (a first name starting with U+FEFF would be read as a byte order mark; the tools'
     * column names are constants, so such names are left out here) */
    int dup = !cols[i][0] || !strncmp(cols[i], "\xEF\xBB\xBF", 3);
    /* names are written in their U+FFFD form: two that differ only in ill-formed bytes collide */
    char *li = xl_utf8_lossy(cols[i]);
    for (size_t j = 0; j < k && !dup; j++) {
      char *lj = xl_utf8_lossy(cols[j]);
      dup = !strcmp(lj, li);
      free(lj);
    }
    free(li);
    if (!dup) cols[k++] = cols[i];
  }
  nc = k;
  if ((nc == 0 || (size & 1)) && !cJSON_GetObjectItemCaseSensitive(first, "no such column")) cols[nc++] = "no such column";
  if (nc == 0) goto done;
  buf = NULL;
  blen = 0;
  mem = open_memstream(&buf, &blen);
  FZ_CHECK(rec_csv_write_all(mem, arr, cols, nc) == 0, "csv write failed");
  fclose(mem);
  csvt t;
  FZ_CHECK(csvt_parse(&t, "written.csv", buf, blen, err, sizeof err) == 0, "written CSV does not read back: %s\n%s", err, buf);
  FZ_CHECK(t.ncols == nc && t.nrows == (size_t)cJSON_GetArraySize(arr), "written CSV reads back as %zu rows of %zu, not %d of %zu:\n%s",
           t.nrows, t.ncols, cJSON_GetArraySize(arr), nc, buf);
  size_t row = 0;
  cJSON_ArrayForEach(r, arr) {
    for (size_t c = 0; c < nc; c++) {
      const char *s = rec_str(r, cols[c]);
      if (!s) continue;
      /* ill-formed UTF-8 is written (and so read back) with U+FFFD in its place */
      char *want = xl_utf8_lossy(s);
      FZ_CHECK(!strcmp(csvt_get(&t, row, (int)c), want), "cell %zu,%zu reads back as '%s', not '%s'", row, c,
               csvt_get(&t, row, (int)c), want);
      free(want);
    }
    row++;
  }
  csvt_free(&t);
  free(buf);
done:;
  char num[64];
  cJSON_ArrayForEach(r, arr) cJSON_ArrayForEach(m, r) if (cJSON_IsNumber(m)) rec_format_number(num, sizeof num, m->valuedouble);
  cJSON_Delete(arr);
  return 0;
}
