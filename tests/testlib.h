/* testlib: TAP-style assertions for the C tests (counted by tests/run.sh), and the
 * location of the golden files. A test binary exits non-zero if any check failed. */
#ifndef XL_TESTLIB_H
#define XL_TESTLIB_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tl_failed = 0, tl_passed = 0;

#define CHECK(cond, ...) do { \
    if (cond) { tl_passed++; printf("ok - "); printf(__VA_ARGS__); printf("\n"); } \
    else { tl_failed++; printf("not ok - "); printf(__VA_ARGS__); printf("  [%s:%d: %s]\n", __FILE__, __LINE__, #cond); } \
    fflush(stdout); \
  } while (0)

static inline const char *tl_golden_dir(void) {
  const char *d = getenv("XL_TESTDATA");
  return d ? d : "tests/golden";
}
/* Path under the golden dir; returns a static buffer valid until the next call. */
static inline const char *tl_golden(const char *rel) {
  static char buf[4096];
  snprintf(buf, sizeof buf, "%s/%s", tl_golden_dir(), rel);
  return buf;
}
static inline int tl_done(void) {
  printf("# %d passed, %d failed\n", tl_passed, tl_failed);
  return tl_failed ? 1 : 0;
}
#endif
