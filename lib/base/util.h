/* util: the small helpers every tool shares: diagnostics and exit codes, checked number
 * parsing, whole-file reads, atomic (temp + rename) writes, clocks.
 * Not for: anything model- or format-specific. */
#ifndef XL_UTIL_H
#define XL_UTIL_H
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

/* Exit statuses shared by every tool (see README). */
enum {
  XL_EXIT_OK = 0,
  XL_EXIT_ERROR = 1,      /* runtime or data error */
  XL_EXIT_USAGE = 2,      /* bad command line */
  XL_EXIT_MEMORY = 3,     /* stopped by the memory watchdog's hard limit */
  XL_EXIT_SIGINT = 130,
  XL_EXIT_SIGTERM = 143,
};

/* The name printed before every diagnostic ("xl-decode: ..."). */
void xl_set_progname(const char *argv0);
const char *xl_progname(void);

/* Diagnostics on stderr, prefixed with the program name. */
void xl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void xl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error: message, a pointer at --help, exit 2. */
_Noreturn void xl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Formats a message into err (if err and n) and returns -1: the one-liner behind every
 * "return an error with a message" path in lib/. */
int xl_errf(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Checked number parsing: the whole string must be a number within [lo, hi].
 * Return 0 on success, -1 (and leave *out alone) otherwise. */
int xl_parse_long(const char *s, long lo, long hi, long *out);
int xl_parse_double(const char *s, double lo, double hi, double *out);
/* Whether s is spelled as a plain decimal number (digits, at most a leading '-', a '.', an
 * exponent): no blanks, '+', hex, inf or nan. Flag values must be (the parsers above also
 * read CSV cells and records, where strtod's wider syntax is kept). */
int xl_plain_number(const char *s);
/* The same for a flag value: a failure is a usage error naming the flag. */
long xl_flag_long(const char *flag, const char *s, long lo, long hi);
double xl_flag_double(const char *flag, const char *s, double lo, double hi);

/* Option with a value: if argv[*i] is `name` (then the value is the next argument, and *i
 * advances past it) or `name=value`, returns the value; otherwise NULL. A missing value is
 * a usage error. */
const char *xl_flag_value(int argc, char **argv, int *i, const char *name);

/* Reads a whole file into a malloc'd, NUL-terminated buffer (caller frees).
 * Returns NULL with errno set on failure. *len (if given) gets the byte count. */
char *xl_read_file(const char *path, size_t *len);
/* Reads all of a stream the same way. */
char *xl_read_stream(FILE *f, size_t *len);

/* Atomic output: write to "<path>.tmp.<pid>", then rename over path on commit.
 * A crash or xl_atomic_abort never leaves a half-written path behind. A path that exists
 * and is not a regular file (/dev/null, /dev/stdout, a FIFO) is written in place instead:
 * renaming over it would replace the device with a file. A FIFO nobody opens for reading
 * within 5 s fails (ENXIO) instead of blocking the tool for ever. This is the one place that knows these
 * rules; every tool and library output goes through it. */
typedef struct {
  FILE *f;      /* NULL with XL_ATOMIC_NO_STREAM */
  char *path;   /* owned */
  char *tmp;    /* owned; NULL when writing in place */
  int flags;
} xl_atomic;
enum {
  /* Commit without fsync: for files rewritten every second or so (status, metrics),
   * where losing the last rewrite in a crash is fine and a sync per rewrite is not. */
  XL_ATOMIC_NO_FSYNC = 1,
  /* Open no stream: another program writes xl_atomic_target() (e.g. gnuplot's output);
   * commit then only renames. */
  XL_ATOMIC_NO_STREAM = 2,
};
int xl_atomic_open(xl_atomic *a, const char *path);     /* 0 ok, -1 errno */
int xl_atomic_open_flags(xl_atomic *a, const char *path, int flags);
/* Where the data goes: the temp name, or path itself when writing in place. */
const char *xl_atomic_target(const xl_atomic *a);
int xl_atomic_commit(xl_atomic *a);                      /* flush, fsync, rename; 0 ok */
/* The first half of commit: flush, fsync, close; the rename is left to xl_atomic_commit
 * (or xl_atomic_abort). For files that must be replaced together or not at all: get every
 * one ready, then commit them. 0 ok; -1 errno (then abort). */
int xl_atomic_ready(xl_atomic *a);
void xl_atomic_abort(xl_atomic *a);                      /* remove the temp file */
/* Writes a whole buffer atomically; 0 ok, -1 errno. */
int xl_write_file_atomic(const char *path, const void *data, size_t len);
int xl_write_file_atomic_flags(const char *path, const void *data, size_t len, int flags);

/* Opens path for writing as a stream, truncated (fopen "w"), for outputs written as they go
 * (logs): a FIFO nobody opens for reading within 5 s fails with ENXIO, as in xl_atomic_open,
 * instead of blocking the tool for ever. NULL with errno on failure. */
FILE *xl_fopen_write(const char *path);

/* Closes a stream checking for write errors; returns 0 or -1. */
int xl_fclose_checked(FILE *f);
/* At exit of a tool: flush stdout and make a write error (full disk, closed pipe) fatal. */
void xl_finish_stdout(void);

/* Seconds on a monotonic clock, and wall-clock Unix seconds. */
double xl_now(void);
double xl_wall(void);
/* RFC 3339 UTC time, e.g. "2026-11-21T23:38:06Z"; buf of >= 32 bytes. */
void xl_rfc3339(char *buf, size_t n, double unix_seconds);

/* Joins a directory and a name into a malloc'd path. */
char *xl_path_join(const char *dir, const char *name);
/* A directory shipped with the project (e.g. "models/xlstm-tiny-pydocs", "plots"), found
 * by a file inside it (probe): next to the executable's parent (bin/ -> ../REL, and
 * build-asan/bin/ -> ../../REL), in an installed layout (PREFIX/bin/ ->
 * PREFIX/share/xltools/REL, as `make install` lays it out), else in the checkout the
 * binary was built from, else REL relative to the current directory. Returns a malloc'd
 * path. */
char *xl_find_resource(const char *rel, const char *probe);
/* The real path of `path` when it lies inside directory `dir` (both resolved, symlinks
 * followed: a link inside that points out does not count), malloc'd; else NULL (errno
 * ENOENT when path does not exist, EACCES when it lies outside). The rule behind "files a
 * record points to must lie inside the run directory" (docs/security.md). */
char *xl_path_inside(const char *dir, const char *path);

/* UTF-8: whether s[0..n) is well-formed (no overlong forms, surrogates or code points past
 * U+10FFFF), and a malloc'd copy of the NUL-terminated s with each ill-formed byte replaced
 * by U+FFFD. No output of the tools carries ill-formed UTF-8 (JSON readers refuse it). */
int xl_utf8_valid(const char *s, size_t n);
char *xl_utf8_lossy(const char *s);

/* mkdir -p; 0 ok, -1 errno. */
int xl_mkdirs(const char *path);
/* 1 if path exists (any type). */
int xl_exists(const char *path);

/* malloc/calloc/realloc that die with a message instead of returning NULL. */
void *xl_malloc(size_t n);
void *xl_calloc(size_t n, size_t size);
void *xl_realloc(void *p, size_t n);
char *xl_strdup(const char *s);

/* FNV-1a 64-bit, for fingerprints (not cryptographic). */
uint64_t xl_fnv1a(uint64_t h, const void *data, size_t n);
#define XL_FNV_INIT 0xcbf29ce484222325ULL

#endif
