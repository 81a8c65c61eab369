/* fuzz_common: helpers shared by the libFuzzer harnesses in tests/fuzz/ (see docs/fuzzing.md).
 * Every harness is deterministic, frees everything it allocates (LeakSanitizer runs after
 * each input) and writes only inside its own private temporary directory, made on first
 * use under $TMPDIR (or /tmp) and removed at exit. A broken invariant is reported with
 * FZ_CHECK, which aborts, so libFuzzer records the input as a crash. */
#ifndef XL_FUZZ_COMMON_H
#define XL_FUZZ_COMMON_H
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FZ_CHECK(cond, ...)                                                   \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "fuzz invariant broken at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                           \
      fputc('\n', stderr);                                                    \
      abort();                                                                \
    }                                                                         \
  } while (0)

/* Results are folded into this so the compiler keeps the reads that check them. */
static volatile unsigned fz_sink;

static char fz_dir_path[512];

/* Removes the files of one directory level, then the directory (the harnesses make no
 * deeper trees than one subdirectory). */
static inline void fz_rmtree(const char *dir, int depth) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      struct stat st;
      if (depth < 2 && !lstat(p, &st) && S_ISDIR(st.st_mode)) fz_rmtree(p, depth + 1);
      else unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

static inline void fz_cleanup(void) {
  if (fz_dir_path[0]) fz_rmtree(fz_dir_path, 0);
}

/* The harness's private temporary directory. */
static inline const char *fz_tmpdir(void) {
  if (!fz_dir_path[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(fz_dir_path, sizeof fz_dir_path, "%s/xl-fuzz-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(fz_dir_path)) {
      perror("fuzz: mkdtemp");
      abort();
    }
    atexit(fz_cleanup);
  }
  return fz_dir_path;
}

/* DIR/NAME inside the private directory (static buffer, valid until the next call). */
static inline const char *fz_path(const char *name) {
  static char p[1024];
  snprintf(p, sizeof p, "%s/%s", fz_tmpdir(), name);
  return p;
}

/* Writes data to NAME in the private directory (replacing it) and returns its path. */
static inline const char *fz_write(const char *name, const void *data, size_t size) {
  const char *p = fz_path(name);
  FILE *f = fopen(p, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
    perror(p);
    abort();
  }
  return p;
}

/* A malloc'd NUL-terminated copy of the input (the text parsers take C strings). */
static inline char *fz_cstr(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  if (size) memcpy(s, data, size);
  s[size] = 0;
  return s;
}

/* A stream that discards what is written (for the writers that take a FILE *). */
static inline FILE *fz_null(void) {
  static FILE *f;
  if (!f) f = fopen("/dev/null", "w");
  if (!f) abort();
  return f;
}

#endif
