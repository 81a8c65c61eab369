/* test_pareto: Pareto selection and the recommended pick on crafted inputs (ties, a
 * single row, all dominated but one, several groups, missing values, min and max
 * objectives, tolerance), plus the CSV table that xl-merge builds on (quoting
 * round trip, header lookup, ragged rows). */
#include "io/csvtable.h"
#include "sweep/pareto.h"
#include "testlib.h"
#include "base/util.h"
#include <math.h>
#include <unistd.h>

static int count(const unsigned char *f, size_t n) {
  int c = 0;
  for (size_t i = 0; i < n; i++) c += f[i] != 0;
  return c;
}

static void test_dominates(void) {
  int mx[2] = {1, 1}, mn[2] = {1, 0};
  double a[2] = {2, 2}, b[2] = {1, 2}, c[2] = {2, 2};
  CHECK(pareto_dominates(a, b, 2, mx), "(2,2) dominates (1,2) when both maximized");
  CHECK(!pareto_dominates(b, a, 2, mx), "(1,2) does not dominate (2,2)");
  CHECK(!pareto_dominates(a, c, 2, mx) && !pareto_dominates(c, a, 2, mx), "equal rows do not dominate each other");
  /* Second objective minimized: (2,2) vs (1,2): still dominates on the first. */
  double d[2] = {2, 3};
  CHECK(pareto_dominates(a, d, 2, mn), "(2,2) dominates (2,3) when the 2nd is minimized");
  CHECK(pareto_dominates(d, a, 2, mx) && !pareto_dominates(d, a, 2, mn), "direction flips the answer");
  double e[2] = {NAN, 5};
  CHECK(!pareto_dominates(e, b, 2, mx) && !pareto_dominates(b, e, 2, mx), "NaN never dominates nor is dominated");
}

static void test_front_basic(void) {
  int mx[2] = {1, 1};
  unsigned char f[8];
  double one[2] = {3, 4};
  CHECK(pareto_front(one, 1, 2, mx, NULL, NULL, f) == 1 && f[0], "a single row is its own front");

  /* Row 2 beats everything else. */
  double all[5 * 2] = {1, 1, 2, 2, 9, 9, 3, 1, 1, 8};
  size_t n = pareto_front(all, 5, 2, mx, NULL, NULL, f);
  CHECK(n == 1 && f[2] && count(f, 5) == 1, "all dominated but one: only row 2 (got %zu)", n);

  /* Ties: rows 0 and 1 identical and non-dominated: both kept. Row 2 trades off. Row 3 dominated. */
  double ties[4 * 2] = {5, 5, 5, 5, 1, 9, 4, 5};
  n = pareto_front(ties, 4, 2, mx, NULL, NULL, f);
  CHECK(n == 3 && f[0] && f[1] && f[2] && !f[3], "identical rows both kept, (4,5) dominated by (5,5)");

  /* Equal on one objective, better on the other: dominated. */
  double eq1[2 * 2] = {5, 5, 5, 4};
  n = pareto_front(eq1, 2, 2, mx, NULL, NULL, f);
  CHECK(n == 1 && f[0] && !f[1], ">= on all and > on one dominates");
}

static void test_front_min_max_missing(void) {
  /* speed max, memory min */
  int dir[2] = {1, 0};
  double v[4 * 2] = {
      10, 500,  /* fast, heavy */
      8, 300,   /* slower, light */
      8, 400,   /* dominated by row 1 */
      12, NAN,  /* fastest but memory missing: not on the front, and does not knock row 0 out */
  };
  unsigned char f[4];
  size_t n = pareto_front(v, 4, 2, dir, NULL, NULL, f);
  CHECK(n == 2 && f[0] && f[1] && !f[2] && !f[3], "min/max mixed with a missing value (front %d%d%d%d)", f[0], f[1], f[2], f[3]);
  int allmax[2] = {1, 1};
  n = pareto_front(v, 4, 2, allmax, NULL, NULL, f);
  CHECK(n == 1 && f[0], "maximizing both: (10,500) alone");

  /* Ineligible (failed) rows are never on the front and do not dominate. */
  double w[3 * 2] = {100, 100, 5, 1, 1, 5};
  unsigned char ok[3] = {0, 1, 1};
  n = pareto_front(w, 3, 2, allmax, NULL, ok, f);
  CHECK(n == 2 && !f[0] && f[1] && f[2], "a failed row is excluded and dominates nobody");
}

static void test_front_groups(void) {
  int mx[2] = {1, 1};
  /* Context 0: rows 0,1,2; context 1: rows 3,4. Row 3 is bad overall but best in its group. */
  double v[5 * 2] = {10, 10, 5, 5, 11, 1, 2, 2, 1, 1};
  int g[5] = {0, 0, 0, 1, 1};
  unsigned char f[5];
  size_t n = pareto_front(v, 5, 2, mx, g, NULL, f);
  CHECK(n == 3 && f[0] && !f[1] && f[2] && f[3] && !f[4], "front computed per group");
  n = pareto_front(v, 5, 2, mx, NULL, NULL, f);
  CHECK(n == 2 && !f[3], "without groups the small-context row is dominated");
}

static void test_recommend(void) {
  /* One group. speed (decode tok/s), quality (avg_logprob). */
  double speed[5] = {30, 25, 20, 35, 40};
  double qual[5] = {-2.10, -2.02, -2.00, -2.30, NAN};
  unsigned char ok[5] = {1, 1, 1, 1, 1};
  unsigned char front[5] = {1, 1, 1, 1, 0};
  pareto_pick pk;
  long r = pareto_recommend(speed, qual, front, ok, NULL, 0, 5, 0.05, &pk);
  CHECK(r == 1 && pk.within && fabs(pk.best_quality + 2.0) < 1e-12 && pk.ncand == 2,
        "tolerance 0.05: fastest within (row 1), got %ld ncand %zu", r, pk.ncand);
  r = pareto_recommend(speed, qual, front, ok, NULL, 0, 5, 0.15, &pk);
  CHECK(r == 0 && pk.ncand == 3, "tolerance 0.15 admits row 0 (30 tok/s), got %ld", r);
  r = pareto_recommend(speed, qual, front, ok, NULL, 0, 5, 1.0, &pk);
  CHECK(r == 3, "wide tolerance: the fastest on the front (row 3), got %ld", r);
  r = pareto_recommend(speed, qual, front, ok, NULL, 0, 5, 0.0, &pk);
  CHECK(r == 2, "zero tolerance: the best quality row, got %ld", r);
  r = pareto_recommend(speed, NULL, front, ok, NULL, 0, 5, 0.05, &pk);
  CHECK(r == 3 && isnan(pk.best_quality), "no quality: fastest front row, got %ld", r);

  /* Best quality measured on a row that is not on the front (e.g. missing speed):
   * nothing on the front is within: fall back to the best-quality front row. */
  double s2[3] = {10, 9, NAN};
  double q2[3] = {-3.0, -2.5, -1.0};
  unsigned char f2[3] = {1, 1, 0}, ok2[3] = {1, 1, 1};
  r = pareto_recommend(s2, q2, f2, ok2, NULL, 0, 3, 0.05, &pk);
  CHECK(r == 1 && !pk.within && pk.best_quality == -1.0, "fallback to the best quality on the front, got %ld", r);
  /* A failed trial's quality does not set the bar. */
  ok2[2] = 0;
  r = pareto_recommend(s2, q2, f2, ok2, NULL, 0, 3, 0.05, &pk);
  CHECK(r == 1 && pk.within && pk.best_quality == -2.5, "failed rows do not count as measured quality");

  /* Groups: each context gets its own pick and its own best quality. */
  double s3[4] = {50, 40, 10, 8};
  double q3[4] = {-2.5, -2.0, -3.0, -2.96};
  unsigned char f3[4] = {1, 1, 1, 1};
  int g3[4] = {0, 0, 1, 1};
  long a = pareto_recommend(s3, q3, f3, NULL, g3, 0, 4, 0.05, NULL);
  long b = pareto_recommend(s3, q3, f3, NULL, g3, 1, 4, 0.05, &pk);
  CHECK(a == 1 && b == 2 && pk.best_quality == -2.96, "per-group picks (got %ld, %ld)", a, b);
  CHECK(pareto_recommend(s3, q3, f3, NULL, g3, 7, 4, 0.05, &pk) == -1 && pk.nfront == 0, "empty group: no pick");
  /* Speed ties: the higher quality wins. */
  double s4[2] = {10, 10}, q4[2] = {-2.01, -2.0};
  unsigned char f4[2] = {1, 1};
  CHECK(pareto_recommend(s4, q4, f4, NULL, NULL, 0, 2, 0.05, NULL) == 1, "speed tie broken by quality");
}

static void test_objectives(void) {
  pareto_obj o[PARETO_MAX_OBJ];
  char err[256];
  int n = pareto_parse_objectives("prefill_tok_s:max,decode_tok_s,peak_rss_mb:min", o, PARETO_MAX_OBJ, err, sizeof err);
  CHECK(n == 3 && !strcmp(o[1].name, "decode_tok_s") && o[1].maximize && !o[2].maximize && !strcmp(o[2].name, "peak_rss_mb"),
        "objective list parsed");
  CHECK(pareto_parse_objectives("a:up", o, PARETO_MAX_OBJ, err, sizeof err) == -1 && strstr(err, "max or min"), "bad direction rejected: %s", err);
  CHECK(pareto_parse_objectives("a,,b", o, PARETO_MAX_OBJ, err, sizeof err) == -1, "empty name rejected");
  CHECK(pareto_parse_objectives("a,a:min", o, PARETO_MAX_OBJ, err, sizeof err) == -1 && strstr(err, "twice"), "duplicate rejected");
  CHECK(pareto_parse_objectives("a,b,c", o, 2, err, sizeof err) == -1, "too many rejected");
}

static void test_csvtable(void) {
  char err[512];
  csvt t;
  const char *src = "\xEF\xBB\xBFslug,note,x\n"
                    "a,\"hello, \"\"world\"\"\",1.5\n"
                    "b,\"two\nlines\",\n"
                    "c\n";
  int rc = csvt_parse(&t, "mem.csv", src, strlen(src), err, sizeof err);
  CHECK(rc == 0 && t.nrows == 3 && t.ncols == 3, "parse quoted CSV (rc %d: %s)", rc, rc ? err : "");
  if (rc) return;
  int cs = csvt_col(&t, "slug"), cn = csvt_col(&t, "note"), cx = csvt_col(&t, "x");
  CHECK(cs == 0 && cn == 1 && cx == 2 && csvt_col(&t, "nope") == -1, "header lookup (BOM stripped)");
  CHECK(!strcmp(csvt_get(&t, 0, cn), "hello, \"world\"") && !strcmp(csvt_get(&t, 1, cn), "two\nlines"), "quoted cells decoded");
  double v = 0;
  CHECK(csvt_num(&t, 0, cx, &v) == 0 && v == 1.5 && csvt_num(&t, 1, cx, &v) == -1 && csvt_num(&t, 2, -1, &v) == -1,
        "numbers parsed; empty and missing columns are missing");
  CHECK(!strcmp(csvt_get(&t, 2, cn), ""), "short row padded");
  char path[] = "/tmp/test_pareto_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  CHECK(csvt_write(&t, path) == 0, "atomic write");
  csvt u;
  rc = csvt_read(&u, path, err, sizeof err);
  CHECK(rc == 0 && u.nrows == 3 && !strcmp(csvt_get(&u, 0, 1), "hello, \"world\"") && !strcmp(csvt_get(&u, 1, 1), "two\nlines"),
        "round trip keeps commas, quotes and newlines");
  if (!rc) csvt_free(&u);
  unlink(path);
  csvt_free(&t);

  const char *bad = "a,b\n1,2,3\n";
  CHECK(csvt_parse(&t, "bad.csv", bad, strlen(bad), err, sizeof err) == -1 && strstr(err, "bad.csv") && strstr(err, "line 2"),
        "too many fields named with file and line: %s", err);
  const char *dup = "a,a\n";
  CHECK(csvt_parse(&t, "dup.csv", dup, strlen(dup), err, sizeof err) == -1 && strstr(err, "duplicate"), "duplicate header rejected");
  CHECK(csvt_parse(&t, "empty.csv", "", 0, err, sizeof err) == -1 && strstr(err, "empty"), "empty file rejected");
  CHECK(csvt_read(&t, "/nonexistent/x.csv", err, sizeof err) == -1 && strstr(err, "/nonexistent/x.csv"), "unreadable file named");
  const char *q = "a,b\n\"unterminated,1\n";
  CHECK(csvt_parse(&t, "q.csv", q, strlen(q), err, sizeof err) == -1, "unterminated quote rejected");

  const char *names[2] = {"k", "v"};
  csvt_init(&t, 2, names);
  const char *row[2] = {" padded ", NULL};
  csvt_add_row(&t, row);
  size_t c = csvt_add_col(&t, "extra");
  csvt_set(&t, 0, c, "z");
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  csvt_write_stream(&t, m);
  fclose(m);
  CHECK(!strcmp(buf, "k,v,extra\n\" padded \",,z\n"), "built table written with edge spaces quoted: [%s]", buf);
  free(buf);
  csvt_free(&t);
}

/* Context groups: rows sharing a prompt length and file, missing lengths together,
 * ineligible rows left out, report order by length (missing last) then file. */
static void test_groups(void) {
  const char *src =
      "slug,prompt_tokens,prompt_file,status\n"
      "a,512,p.txt,ok\n"   /* group 0 */
      "b,64,p.txt,ok\n"    /* group 1 */
      "c,512,p.txt,ok\n"   /* group 0 */
      "d,,p.txt,ok\n"      /* group 2: no length */
      "e,64,q.txt,ok\n"    /* group 3: same length, other file */
      "f,x,p.txt,ok\n"     /* group 2: not a number counts as missing */
      "g,64,p.txt,failed\n";
  csvt t;
  char err[256];
  CHECK(csvt_parse(&t, "groups.csv", src, strlen(src), err, sizeof err) == 0, "group table parsed");
  int group[7];
  pareto_group gs[7];
  size_t ng = pareto_group_table(&t, NULL, group, gs);
  CHECK(ng == 4 && group[0] == 0 && group[1] == 1 && group[2] == 0 && group[3] == 2 && group[4] == 3 && group[5] == 2 &&
            group[6] == 1,
        "4 groups in first-seen order");
  CHECK(gs[0].ctx == 512 && !strcmp(gs[0].pfile, "p.txt") && gs[0].first == 0 && isnan(gs[2].ctx) && gs[2].first == 3 &&
            !strcmp(gs[3].pfile, "q.txt"),
        "group keys and first rows");
  size_t order[7];
  pareto_group_order(gs, ng, order);
  CHECK(order[0] == 1 && order[1] == 3 && order[2] == 0 && order[3] == 2, "report order: 64 p, 64 q, 512, missing");
  unsigned char ok[7] = {1, 0, 1, 1, 1, 1, 0};
  ng = pareto_group_table(&t, ok, group, gs);
  CHECK(ng == 3 && group[1] == -1 && group[6] == -1 && group[0] == 0 && group[3] == 1 && group[4] == 2,
        "ineligible rows get -1 and make no group");
  csvt_free(&t);

  /* the quality measure: the internal judge's when it has a value, else the external one's */
  static const struct { const char *csv, *want; } q[] = {
      {"slug,avg_logprob,overall\na,-1.5,7\n", "avg_logprob"},
      {"slug,avg_logprob,overall\na,,7\nb,x,\n", "overall"},
      {"slug,avg_logprob,overall\na,,\n", NULL},
      {"slug,decode_tok_s\na,3\n", NULL},
  };
  for (int k = 0; k < 4; k++) {
    CHECK(csvt_parse(&t, "q.csv", q[k].csv, strlen(q[k].csv), err, sizeof err) == 0, "quality table %d parsed", k);
    const char *got = pareto_quality_column(&t);
    CHECK((!got && !q[k].want) || (got && q[k].want && !strcmp(got, q[k].want)), "quality column %d: %s", k,
          got ? got : "(none)");
    csvt_free(&t);
  }
}

int main(void) {
  test_dominates();
  test_groups();
  test_front_basic();
  test_front_min_max_missing();
  test_front_groups();
  test_recommend();
  test_objectives();
  test_csvtable();
  return tl_done();
}
