/* util: diagnostics, checked parsing, file helpers, clocks. See util.h. */
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *progname = "xltools";

void xl_set_progname(const char *argv0) {
  const char *s = strrchr(argv0, '/');
  progname = s ? s + 1 : argv0;
}
const char *xl_progname(void) { return progname; }

static void vmsg(const char *fmt, va_list ap) {
  fprintf(stderr, "%s: ", progname);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}
void xl_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(fmt, ap);
  va_end(ap);
}
void xl_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(fmt, ap);
  va_end(ap);
  exit(XL_EXIT_ERROR);
}
void xl_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(fmt, ap);
  va_end(ap);
  fprintf(stderr, "Try '%s --help' for more information.\n", progname);
  exit(XL_EXIT_USAGE);
}

int xl_errf(char *err, size_t n, const char *fmt, ...) {
  if (err && n) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
  }
  return -1;
}

int xl_parse_long(const char *s, long lo, long hi, long *out) {
  if (!s || !*s) return -1;
  errno = 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}
int xl_parse_double(const char *s, double lo, double hi, double *out) {
  if (!s || !*s) return -1;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || *end || end == s || !isfinite(v) || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}
int xl_plain_number(const char *s) {
  if (!s) return 0;
  const char *p = s + (*s == '-');
  if (!((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9'))) return 0;
  for (; *p; p++)
    if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
          ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E'))))
      return 0;
  return 1;
}
long xl_flag_long(const char *flag, const char *s, long lo, long hi) {
  long v;
  if (!xl_plain_number(s) || xl_parse_long(s, lo, hi, &v))
    xl_usage_error("%s: '%s' is not a whole number in [%ld, %ld]", flag, s ? s : "", lo, hi);
  return v;
}
double xl_flag_double(const char *flag, const char *s, double lo, double hi) {
  double v;
  if (!xl_plain_number(s) || xl_parse_double(s, lo, hi, &v))
    xl_usage_error("%s: '%s' is not a number in [%g, %g]", flag, s ? s : "", lo, hi);
  return v;
}

const char *xl_flag_value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') return argv[*i] + n + 1;
  if (strcmp(argv[*i], name)) return NULL;
  if (*i + 1 >= argc) xl_usage_error("%s needs a value", name);
  return argv[++*i];
}

char *xl_read_stream(FILE *f, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  if (!buf) return NULL;
  for (;;) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n < cap) {
      if (ferror(f)) { free(buf); errno = EIO; return NULL; }
      break;
    }
    cap *= 2;
    char *nb = realloc(buf, cap + 1);
    if (!nb) { free(buf); return NULL; }
    buf = nb;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}
char *xl_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *b = xl_read_stream(f, len);
  int e = errno;
  fclose(f);
  errno = e;
  return b;
}

/* A FIFO opened for writing: waits up to 5 s for a reader (the writer and its reader may
 * start together), then ENXIO rather than blocking for ever. A stream, or NULL with errno. */
static FILE *open_fifo_writer(const char *path) {
  int fd = -1;
  for (int tries = 0; tries < 500; tries++) {
    fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0 || errno != ENXIO) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (fd < 0) return NULL;
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  FILE *f = fdopen(fd, "wb");
  if (!f) { int e = errno; close(fd); errno = e; }
  return f;
}

FILE *xl_fopen_write(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode)) return open_fifo_writer(path);
  return fopen(path, "w");
}

int xl_atomic_open_flags(xl_atomic *a, const char *path, int flags) {
  memset(a, 0, sizeof *a);
  a->flags = flags;
  a->path = strdup(path);
  if (!a->path) { errno = ENOMEM; return -1; }
  struct stat st;
  if (stat(path, &st) != 0 || S_ISREG(st.st_mode)) {   /* a device or FIFO keeps tmp NULL */
    size_t n = strlen(path) + 32;
    a->tmp = malloc(n);
    if (!a->tmp) { free(a->path); a->path = NULL; errno = ENOMEM; return -1; }
    snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
  }
  if (flags & XL_ATOMIC_NO_STREAM) return 0;
  if (!a->tmp && S_ISFIFO(st.st_mode)) {   /* no reader within 5 s: ENXIO, rather than block for ever */
    a->f = open_fifo_writer(path);
  } else {
    a->f = fopen(xl_atomic_target(a), "wb");
  }
  if (!a->f) { int e = errno; free(a->path); free(a->tmp); a->path = a->tmp = NULL; errno = e; return -1; }
  return 0;
}
int xl_atomic_open(xl_atomic *a, const char *path) { return xl_atomic_open_flags(a, path, 0); }
const char *xl_atomic_target(const xl_atomic *a) { return a->tmp ? a->tmp : a->path; }
int xl_atomic_ready(xl_atomic *a) {
  if (!a->f) return 0;
  int rc = 0, e = 0;
  if (fflush(a->f) || ferror(a->f)) rc = -1;
  if (!rc && a->tmp && !(a->flags & XL_ATOMIC_NO_FSYNC) && fsync(fileno(a->f))) rc = -1;
  e = errno;
  if (fclose(a->f)) { if (!rc) e = errno; rc = -1; }
  a->f = NULL;
  if (rc) { if (!e) e = EIO; errno = e; }
  return rc;
}
int xl_atomic_commit(xl_atomic *a) {
  int rc = 0, e = 0;
  if (a->f) {
    if (fflush(a->f) || ferror(a->f)) rc = -1;
    if (!rc && a->tmp && !(a->flags & XL_ATOMIC_NO_FSYNC) && fsync(fileno(a->f))) rc = -1;
    e = errno;
    if (fclose(a->f)) { if (!rc) e = errno; rc = -1; }
    a->f = NULL;
  }
  if (!rc && a->tmp && rename(a->tmp, a->path)) { rc = -1; e = errno; }
  if (rc && a->tmp) unlink(a->tmp);
  free(a->path); free(a->tmp);
  a->path = a->tmp = NULL;
  errno = e;
  return rc;
}
void xl_atomic_abort(xl_atomic *a) {
  int e = errno;   /* callers report the error that made them abort */
  if (a->f) fclose(a->f);
  if (a->tmp) unlink(a->tmp);
  free(a->path); free(a->tmp);
  memset(a, 0, sizeof *a);
  errno = e;
}
int xl_write_file_atomic_flags(const char *path, const void *data, size_t len, int flags) {
  xl_atomic a;
  if (xl_atomic_open_flags(&a, path, flags & ~XL_ATOMIC_NO_STREAM)) return -1;
  if (len && fwrite(data, 1, len, a.f) != len) { xl_atomic_abort(&a); return -1; }
  return xl_atomic_commit(&a);
}
int xl_write_file_atomic(const char *path, const void *data, size_t len) {
  return xl_write_file_atomic_flags(path, data, len, 0);
}

int xl_fclose_checked(FILE *f) {
  int bad = ferror(f);
  if (fclose(f)) bad = 1;
  return bad ? -1 : 0;
}
void xl_finish_stdout(void) {
  if (fflush(stdout) || ferror(stdout)) xl_die("write error on standard output: %s", strerror(errno));
}

double xl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
double xl_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
void xl_rfc3339(char *buf, size_t n, double t) {
  time_t s = (time_t)t;
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *xl_path_join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = xl_malloc(a + b + 2);
  memcpy(p, dir, a);
  size_t k = a;
  if (a && dir[a - 1] != '/') p[k++] = '/';
  memcpy(p + k, name, b + 1);
  return p;
}
static int has_probe(const char *dir, const char *probe) {
  char *p = xl_path_join(dir, probe);
  int yes = xl_exists(p);
  free(p);
  return yes;
}

char *xl_find_resource(const char *rel, const char *probe) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    /* bin/ -> ../REL (a checkout or the bundle), build-asan/bin/ -> ../../REL, and an
     * installed PREFIX/bin/ -> PREFIX/share/xltools/REL (make install) */
    static const char *ups[] = {"..", "../..", "../share/xltools"};
    for (int i = 0; i < 3; i++) {
      char *base = xl_path_join(exe, ups[i]), *d = xl_path_join(base, rel);
      free(base);
      if (has_probe(d, probe)) {
        char *r = realpath(d, NULL);
        if (r) { free(d); return r; }
        return d;
      }
      free(d);
    }
  }
#ifdef XL_SOURCE_ROOT
  {
    char *d = xl_path_join(XL_SOURCE_ROOT, rel);
    if (has_probe(d, probe)) return d;
    free(d);
  }
#endif
  return xl_strdup(rel);
}

char *xl_path_inside(const char *dir, const char *path) {
  char *rd = realpath(dir, NULL);
  if (!rd) return NULL;
  char *rp = realpath(path, NULL);
  if (!rp) { int e = errno; free(rd); errno = e; return NULL; }
  size_t n = strlen(rd);
  int inside = !strncmp(rp, rd, n) && (rp[n] == '/' || (n == 1 && rd[0] == '/')) && rp[n] != 0;
  free(rd);
  if (!inside) { free(rp); errno = EACCES; return NULL; }
  return rp;
}

/* Length of the well-formed UTF-8 sequence at p (n bytes left), 0 if ill-formed. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
  if (!len || len > n) return 0;
  unsigned lo = 0x80, hi = 0xBF;   /* the second byte's range (RFC 3629 table) */
  if (c == 0xE0) lo = 0xA0;
  else if (c == 0xED) hi = 0x9F;
  else if (c == 0xF0) lo = 0x90;
  else if (c == 0xF4) hi = 0x8F;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < len; k++)
    if ((p[k] & 0xC0) != 0x80) return 0;
  return len;
}

int xl_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t k = utf8_seq(p + i, n - i);
    if (!k) return 0;
    i += k;
  }
  return 1;
}

char *xl_utf8_lossy(const char *s) {
  size_t n = strlen(s), o = 0;
  char *out = xl_malloc(3 * n + 1);
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t k = utf8_seq(p + i, n - i);
    if (k) { memcpy(out + o, s + i, k); o += k; i += k; }
    else { memcpy(out + o, "\xEF\xBF\xBD", 3); o += 3; i++; }
  }
  out[o] = 0;
  return out;
}

int xl_mkdirs(const char *path) {
  char *p = xl_strdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s == '/') {
      *s = 0;
      if (mkdir(p, 0777) && errno != EEXIST) { free(p); return -1; }
      *s = '/';
    }
  }
  int rc = mkdir(p, 0777);
  free(p);
  return (rc && errno != EEXIST) ? -1 : 0;
}
int xl_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

void *xl_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) xl_die("out of memory (%zu bytes)", n);
  return p;
}
void *xl_calloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) xl_die("out of memory (%zu x %zu bytes)", n, size);
  return p;
}
void *xl_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) xl_die("out of memory (%zu bytes)", n);
  return q;
}
char *xl_strdup(const char *s) {
  char *p = strdup(s);
  if (!p) xl_die("out of memory");
  return p;
}

uint64_t xl_fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
  return h;
}
