/* test_records: NDJSON reading (order, blank lines, errors naming file:line) and CSV
 * writing (RFC 4180 quoting, number formatting, missing/null fields) from records.c. */
#include "testlib.h"
#include "io/records.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>

/* Writes the CSV of rows into a string (caller frees). */
static char *csv_of(const cJSON *rows, const char *const *cols, size_t n) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  int rc = rec_csv_write_all(f, rows, cols, n);
  fclose(f);
  if (rc) { free(buf); return NULL; }
  return buf;
}

int main(void) {
  char err[256];
  /* order kept, blank lines skipped, CRLF and a missing final newline accepted */
  const char *good = "{\"a\":1}\n\n  \r\n{\"a\":2,\"s\":\"x\"}\r\n{\"a\":3}";
  cJSON *rows = rec_ndjson_parse(good, strlen(good), "mem", err, sizeof err);
  CHECK(rows && cJSON_GetArraySize(rows) == 3, "three objects read");
  double v = 0;
  CHECK(rows && rec_num(cJSON_GetArrayItem(rows, 2), "a", &v) == 0 && v == 3, "third object a=3");
  CHECK(rows && rec_str(cJSON_GetArrayItem(rows, 1), "s") && !strcmp(rec_str(cJSON_GetArrayItem(rows, 1), "s"), "x"),
        "string field read");
  CHECK(rows && !rec_str(cJSON_GetArrayItem(rows, 0), "s") && rec_num(cJSON_GetArrayItem(rows, 0), "s", &v) == -1,
        "missing fields give NULL / -1");
  cJSON_Delete(rows);

  const char *bad = "{\"a\":1}\n{\"a\":2}\n\n{\"a\": tru}\n";
  rows = rec_ndjson_parse(bad, strlen(bad), "f.jsonl", err, sizeof err);
  CHECK(!rows && strstr(err, "f.jsonl:4: not valid JSON"), "bad JSON names file:line (%s)", err);
  const char *notobj = "{\"a\":1}\n[1,2]\n";
  rows = rec_ndjson_parse(notobj, strlen(notobj), "g.jsonl", err, sizeof err);
  CHECK(!rows && strstr(err, "g.jsonl:2: not a JSON object"), "array line rejected (%s)", err);
  const char *two = "{\"a\":1} {\"a\":2}\n";
  rows = rec_ndjson_parse(two, strlen(two), "h.jsonl", err, sizeof err);
  CHECK(!rows && strstr(err, "h.jsonl:1: trailing"), "two objects on a line rejected (%s)", err);
  rows = rec_ndjson_read("/nonexistent/dir/x.jsonl", err, sizeof err);
  CHECK(!rows && strstr(err, "/nonexistent/dir/x.jsonl: No such file"), "missing file named (%s)", err);
  rows = rec_ndjson_parse("", 0, "e", err, sizeof err);
  CHECK(rows && cJSON_GetArraySize(rows) == 0, "empty input gives an empty array");
  cJSON_Delete(rows);

  /* CSV: quoting and formatting */
  const char *in =
      "{\"s\":\"plain\",\"i\":7,\"d\":0.1,\"q\":\"say \\\"hi\\\", ok\",\"nl\":\"a\\nb\",\"b\":true,\"n\":null,"
      "\"big\":12345678901,\"neg\":-2.5,\"arr\":[1,\"x\"],\"sp\":\" lead\"}\n";
  rows = rec_ndjson_parse(in, strlen(in), "c", err, sizeof err);
  const char *cols[] = {"s", "i", "d", "q", "nl", "b", "n", "missing", "big", "neg", "arr", "sp"};
  char *csv = csv_of(rows, cols, 12);
  const char *want =
      "s,i,d,q,nl,b,n,missing,big,neg,arr,sp\n"
      "plain,7,0.1,\"say \"\"hi\"\", ok\",\"a\nb\",true,,,12345678901,-2.5,\"[1,\"\"x\"\"]\",\" lead\"\n";
  CHECK(csv && !strcmp(csv, want), "CSV row quoted and formatted");
  if (!csv || strcmp(csv, want)) printf("# got:\n%s", csv ? csv : "(null)\n");
  free(csv);
  cJSON_Delete(rows);

  char num[64];
  rec_format_number(num, sizeof num, 1.0 / 3.0);
  CHECK(strtod(num, NULL) == 1.0 / 3.0 && strlen(num) <= 19, "1/3 round-trips (%s)", num);
  rec_format_number(num, sizeof num, 0.5);
  CHECK(!strcmp(num, "0.5"), "0.5 short (%s)", num);
  rec_format_number(num, sizeof num, -0.0);
  CHECK(!strcmp(num, "-0") || !strcmp(num, "0"), "-0 integral (%s)", num);

  /* NDJSON write then read back */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "t", "line\nbreak, \"quoted\"");
  cJSON_AddNumberToObject(o, "x", 2);
  CHECK(rec_ndjson_write(f, o) == 0 && rec_ndjson_write(f, o) == 0, "two lines written");
  fclose(f);
  CHECK(len > 0 && memchr(buf, '\n', len) == buf + len / 2 - 1, "one object per line");
  rows = rec_ndjson_parse(buf, len, "w", err, sizeof err);
  CHECK(rows && cJSON_GetArraySize(rows) == 2 &&
        !strcmp(rec_str(cJSON_GetArrayItem(rows, 1), "t"), "line\nbreak, \"quoted\""), "written lines read back");
  cJSON_Delete(rows);
  cJSON_Delete(o);
  free(buf);
  return tl_done();
}
