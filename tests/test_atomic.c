/* test_atomic: the one atomic writer (util.h xl_atomic_*): a regular file is replaced
 * whole through a temp name that never outlives the call, an abort keeps the old file,
 * and a FIFO or device is written in place, never renamed over (the case the tools hit
 * with -o /dev/null or a pipe from mkfifo). */
#include "testlib.h"
#include "base/util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files in dir other than . and .. (a leftover temp name shows up here). */
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static int has_text(const char *path, const char *want) {
  char *got = xl_read_file(path, NULL);
  int ok = got && !strcmp(got, want);
  free(got);
  return ok;
}

/* Reads a FIFO to its end on a thread of its own (opening it blocks until the writer
 * opens the other end). */
typedef struct { const char *path; char buf[256]; size_t n; } fifo_reader;

static void *read_fifo(void *arg) {
  fifo_reader *r = arg;
  int fd = open(r->path, O_RDONLY);
  if (fd < 0) return NULL;
  ssize_t k;
  while (r->n + 1 < sizeof r->buf && (k = read(fd, r->buf + r->n, sizeof r->buf - 1 - r->n)) > 0) r->n += (size_t)k;
  r->buf[r->n] = 0;
  close(fd);
  return NULL;
}

/* Writes text into the FIFO at path with one of the writer's entry points (how = 0: a
 * whole buffer; 1: the same without fsync; 2: a stream) and returns what a reader got. */
static int fifo_round(const char *path, int how, const char *text, char *got, size_t cap) {
  fifo_reader r = {.path = path};
  pthread_t th;
  if (pthread_create(&th, NULL, read_fifo, &r)) return -1;
  int rc;
  if (how < 2) {
    rc = xl_write_file_atomic_flags(path, text, strlen(text), how ? XL_ATOMIC_NO_FSYNC : 0);
  } else {
    xl_atomic a;
    rc = xl_atomic_open(&a, path);
    if (!rc) {
      rc = a.tmp != NULL;   /* in place: no temp name for a FIFO */
      fputs(text, a.f);
      if (xl_atomic_commit(&a)) rc = -1;
    }
  }
  pthread_join(th, NULL);
  snprintf(got, cap, "%s", r.buf);
  return rc;
}

int main(void) {
  char dir[] = "/tmp/xl-test-atomic-XXXXXX";
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
  char *file = xl_path_join(dir, "out.txt");

  /* a regular file: written whole, replaced whole, no temp left behind */
  CHECK(xl_write_file_atomic(file, "first\n", 6) == 0 && has_text(file, "first\n"), "new file written");
  CHECK(xl_write_file_atomic_flags(file, "second\n", 7, XL_ATOMIC_NO_FSYNC) == 0 && has_text(file, "second\n"),
        "replaced without fsync");
  CHECK(count_entries(dir) == 1, "no temp file left (%d entries)", count_entries(dir));

  xl_atomic a;
  CHECK(xl_atomic_open(&a, file) == 0 && a.tmp && !strcmp(xl_atomic_target(&a), a.tmp), "a stream goes to a temp name");
  fputs("torn", a.f);
  xl_atomic_abort(&a);
  CHECK(has_text(file, "second\n") && count_entries(dir) == 1, "abort keeps the old file and removes the temp");

  /* a file another program writes: the target is the temp name until commit */
  CHECK(xl_atomic_open_flags(&a, file, XL_ATOMIC_NO_STREAM) == 0 && !a.f, "no stream opened");
  const char *target = xl_atomic_target(&a);
  CHECK(strcmp(target, file) != 0, "target %s is not the path", target);
  CHECK(xl_write_file_atomic(target, "third\n", 6) == 0, "another writer fills the target");
  CHECK(has_text(file, "second\n"), "the path is untouched before commit");
  CHECK(xl_atomic_commit(&a) == 0 && has_text(file, "third\n") && count_entries(dir) == 1, "commit renames it into place");

  char *missing = xl_path_join(dir, "no/such/dir.txt");
  errno = 0;
  CHECK(xl_write_file_atomic(missing, "x", 1) == -1 && errno == ENOENT, "a missing directory is an error with errno");
  free(missing);

  /* a FIFO: written in place (a rename would replace the pipe with a file) */
  char *fifo = xl_path_join(dir, "pipe");
  CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
  static const char *how[] = {"whole buffer", "whole buffer, no fsync", "stream"};
  for (int k = 0; k < 3; k++) {
    char got[256] = "";
    char text[64];
    snprintf(text, sizeof text, "through the pipe %d", k);
    int rc = fifo_round(fifo, k, text, got, sizeof got);
    struct stat st;
    CHECK(rc == 0 && !strcmp(got, text), "FIFO (%s): the reader got the text (rc %d, got '%s')", how[k], rc, got);
    CHECK(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "FIFO (%s): still a FIFO", how[k]);
  }
  CHECK(count_entries(dir) == 2, "no temp file next to the FIFO (%d entries)", count_entries(dir));

  /* a device: written in place, stays a device */
  CHECK(xl_atomic_open_flags(&a, "/dev/null", XL_ATOMIC_NO_STREAM) == 0 && !a.tmp &&
        !strcmp(xl_atomic_target(&a), "/dev/null"), "/dev/null is its own target");
  CHECK(xl_atomic_commit(&a) == 0, "commit in place renames nothing");
  struct stat st;
  CHECK(xl_write_file_atomic("/dev/null", "gone", 4) == 0 && stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode),
        "/dev/null written and still a character device");

  unlink(fifo);
  unlink(file);
  rmdir(dir);
  free(fifo);
  free(file);
  return tl_done();
}
