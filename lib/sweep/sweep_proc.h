/* sweep_proc: runs one child process for xl-sweep with a time limit, capturing its
 * stdout and the tail of its stderr, so a crash, a non-zero exit or a hang in a trial is
 * something to record, never something that takes the sweep down. The child gets its
 * own process group; a timeout or an interrupt kills the whole group, and the child gets
 * SIGTERM when its parent dies, even by kill -9 (PR_SET_PDEATHSIG), so none outlives it.
 * Not for: what the child is or what its output means (sweep_trial.h). */
#ifndef XL_SWEEP_PROC_H
#define XL_SWEEP_PROC_H
#include <signal.h>
#include <stddef.h>

typedef struct {
  int exit_code;        /* exit status when it exited normally, else -1 */
  int signal;           /* the signal that ended it, else 0 */
  int timed_out;        /* 1: killed at the time limit */
  int interrupted;      /* 1: killed because *sw_proc_stop became set */
  int spawn_errno;      /* non-zero: it could not be started (exec failed: exit 127) */
  char *out;            /* stdout, NUL-terminated, malloc'd (sw_proc_free) */
  size_t outlen;
  char err[2048];       /* the last bytes of stderr, NUL-terminated */
  double seconds;       /* wall time */
} sw_proc;

/* Set by a signal handler to make sw_proc_run kill the child and return. */
extern volatile sig_atomic_t sw_proc_stop;

/* Runs argv (argv[0] looked up in PATH when it has no '/'), stdin from /dev/null, for at
 * most timeout_s seconds (<= 0: no limit). Returns 0 when the child ran (look at the
 * fields), -1 when it could not be started (spawn_errno). */
int sw_proc_run(char *const *argv, double timeout_s, sw_proc *p);
void sw_proc_free(sw_proc *p);

/* One line describing how a run went wrong ("killed by signal 11 (Segmentation fault)",
 * "timed out after 5 s", "exit 1: xl-decode: ..."), or "" when it exited 0. */
void sw_proc_describe(const sw_proc *p, const char *what, char *buf, size_t n);

#endif
