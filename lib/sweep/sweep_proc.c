/* sweep_proc: fork/exec with pipes, poll with a deadline, kill the process group on a
 * timeout or an interrupt (see sweep_proc.h). */
#define _GNU_SOURCE   /* pipe2, strsignal */
#include "sweep/sweep_proc.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

volatile sig_atomic_t sw_proc_stop = 0;

static void keep_tail(sw_proc *p, size_t *len, const char *buf, size_t n) {
  size_t cap = sizeof p->err - 1;
  if (n >= cap) {
    memcpy(p->err, buf + n - cap, cap);
    *len = cap;
  } else {
    if (*len + n > cap) {   /* drop the oldest bytes */
      size_t drop = *len + n - cap;
      memmove(p->err, p->err + drop, *len - drop);
      *len -= drop;
    }
    memcpy(p->err + *len, buf, n);
    *len += n;
  }
  p->err[*len] = 0;
}

/* The child's side of the fork: its own process group, SIGTERM when xl-sweep dies (even
 * by kill -9: a tool run never outlives the sweep; the check of getppid closes the race of
 * a parent that died before the request), stdin from /dev/null, stdout and stderr into the
 * pipes, default signal dispositions, then exec. An exec failure goes back through the
 * close-on-exec pipe px as its errno. */
static _Noreturn void child(char *const *argv, const int po[2], const int pe[2], const int px[2], pid_t parent) {
  setpgid(0, 0);
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) || getppid() != parent) _exit(127);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, 0);
  dup2(po[1], 1);
  dup2(pe[1], 2);
  close(po[0]), close(po[1]), close(pe[0]), close(pe[1]), close(px[0]);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  execvp(argv[0], argv);
  int e = errno;
  ssize_t w = write(px[1], &e, sizeof e);
  (void)w;
  _exit(127);
}

/* Reads the child's stdout (fds[0], all of it) and stderr (fds[1], its tail) until both
 * close (fd set to -1), the time limit passes (timed_out) or sw_proc_stop is set
 * (interrupted). */
static void drain(sw_proc *p, struct pollfd fds[2], double t0, double timeout_s) {
  size_t cap = 4096, errlen = 0;
  p->out = xl_malloc(cap);
  int open_fds = 2;
  char buf[4096];
  while (open_fds) {
    int wait_ms = 200;
    if (timeout_s > 0) {
      double left = timeout_s - (xl_now() - t0);
      if (left <= 0) { p->timed_out = 1; break; }
      if (left * 1000 < wait_ms) wait_ms = (int)(left * 1000) + 1;
    }
    if (sw_proc_stop) { p->interrupted = 1; break; }
    int r = poll(fds, 2, wait_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < 2; k++) {
      if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[k].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(fds[k].fd);
        fds[k].fd = -1;
        open_fds--;
        continue;
      }
      if (k == 0) {
        if (p->outlen + (size_t)n + 1 > cap) {
          while (p->outlen + (size_t)n + 1 > cap) cap *= 2;
          p->out = xl_realloc(p->out, cap);
        }
        memcpy(p->out + p->outlen, buf, (size_t)n);
        p->outlen += (size_t)n;
      } else {
        keep_tail(p, &errlen, buf, (size_t)n);
      }
    }
  }
}

int sw_proc_run(char *const *argv, double timeout_s, sw_proc *p) {
  memset(p, 0, sizeof *p);
  p->exit_code = -1;
  int po[2], pe[2], px[2];
  if (pipe(po)) return p->spawn_errno = errno, -1;
  if (pipe(pe)) {
    p->spawn_errno = errno;
    close(po[0]), close(po[1]);
    return -1;
  }
  /* A close-on-exec pipe tells the parent whether exec worked (and its errno if not). */
  if (pipe2(px, O_CLOEXEC)) {
    p->spawn_errno = errno;
    close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
    return -1;
  }
  double t0 = xl_now();
  fflush(NULL);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    p->spawn_errno = errno;
    close(po[0]), close(po[1]), close(pe[0]), close(pe[1]), close(px[0]), close(px[1]);
    return -1;
  }
  if (pid == 0) child(argv, po, pe, px, parent);
  setpgid(pid, pid);   /* both sides, so the group exists before either goes on */
  close(po[1]), close(pe[1]), close(px[1]);
  int e = 0;
  if (read(px[0], &e, sizeof e) == (ssize_t)sizeof e) p->spawn_errno = e;
  close(px[0]);

  struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
  drain(p, fds, t0, timeout_s);
  if (p->timed_out || p->interrupted) kill(-pid, SIGKILL);
  for (int k = 0; k < 2; k++)
    if (fds[k].fd >= 0) close(fds[k].fd);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  /* Grandchildren that kept the pipes open were handled above; the group goes too. */
  if (p->timed_out || p->interrupted) kill(-pid, SIGKILL);
  p->out[p->outlen] = 0;
  if (WIFEXITED(st)) p->exit_code = WEXITSTATUS(st);
  else if (WIFSIGNALED(st)) p->signal = WTERMSIG(st);
  p->seconds = xl_now() - t0;
  return p->spawn_errno ? -1 : 0;
}

void sw_proc_free(sw_proc *p) {
  free(p->out);
  p->out = NULL;
}

/* The last non-empty line of s, trimmed, into buf. */
static void last_line(const char *s, char *buf, size_t n) {
  size_t len = strlen(s);
  while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ')) len--;
  size_t start = len;
  while (start && s[start - 1] != '\n') start--;
  snprintf(buf, n, "%.*s", (int)(len - start), s + start);
}

void sw_proc_describe(const sw_proc *p, const char *what, char *buf, size_t n) {
  char line[512];
  last_line(p->err, line, sizeof line);
  if (p->spawn_errno)
    snprintf(buf, n, "%s: cannot run: %s", what, strerror(p->spawn_errno));
  else if (p->interrupted)
    snprintf(buf, n, "%s: interrupted", what);
  else if (p->timed_out)
    snprintf(buf, n, "%s: timed out after %.3g s (killed)", what, p->seconds);
  else if (p->signal)
    snprintf(buf, n, "%s: killed by signal %d (%s)%s%s", what, p->signal, strsignal(p->signal),
             *line ? ": " : "", line);
  else if (p->exit_code == 3)
    snprintf(buf, n, "%s: stopped by the memory watchdog (exit 3)%s%s", what, *line ? ": " : "", line);
  else if (p->exit_code != 0)
    snprintf(buf, n, "%s: exit %d%s%s", what, p->exit_code, *line ? ": " : "", line);
  else
    buf[0] = 0;
}
