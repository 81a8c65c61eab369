/* blasenv: OpenBLAS core check and re-exec. See blasenv.h.
 * Cores are ranked by the widest vector ISA their kernels use; a running core is replaced
 * only when it is one of OpenBLAS's known x86 fallbacks ranked below what the CPU offers,
 * so an unknown (newer) core name is never "downgraded". */
#define _GNU_SOURCE
#include "engine/blasenv.h"
#include "base/util.h"
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define XL_X86 1
#endif

extern char *openblas_get_corename(void);
extern int openblas_get_num_threads(void);
extern void openblas_set_num_threads(int);

static const char *core_source = "auto";

/* Rank of an OpenBLAS core name (either spelling: "SkylakeX" or "SKYLAKEX"); -1 unknown. */
static int core_rank(const char *name) {
  static const struct { const char *name; int rank; } tab[] = {
      {"sapphirerapids", 4}, {"cooperlake", 4}, {"skylakex", 3},
      {"haswell", 2}, {"zen", 2}, {"excavator", 2},
      {"sandybridge", 1}, {"bulldozer", 1}, {"piledriver", 1}, {"steamroller", 1},
      {"prescott", 0}, {"core2", 0}, {"penryn", 0}, {"dunnington", 0}, {"nehalem", 0}, {"atom", 0},
      {"nano", 0}, {"banias", 0}, {"katmai", 0}, {"coppermine", 0}, {"northwood", 0}, {"athlon", 0},
      {"opteron", 0}, {"opteron_sse3", 0}, {"barcelona", 0}, {"bobcat", 0}, {"generic", 0}, {"unknown", 0},
  };
  if (!name) return -1;
  for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
    if (!strcasecmp(name, tab[i].name)) return tab[i].rank;
  return -1;
}

const char *xl_blas_pick_core(const char *current, const xl_cpu_feats *f, int (*has_core)(const char *name)) {
  int cur = core_rank(current);
  if (cur < 0) return NULL;   /* a core we do not know: leave it alone */
  const char *cand[4];
  int n = 0;
  if (f->avx512 && f->avx512bf16) cand[n++] = "COOPERLAKE";
  if (f->avx512) cand[n++] = "SKYLAKEX";
  if (f->avx2 && f->fma) cand[n++] = "HASWELL";
  if (f->avx) cand[n++] = "SANDYBRIDGE";
  for (int i = 0; i < n; i++) {
    if (has_core && !has_core(cand[i])) continue;
    return core_rank(cand[i]) > cur ? cand[i] : NULL;
  }
  return NULL;
}

void xl_cpu_features(xl_cpu_feats *f) {
  memset(f, 0, sizeof *f);
#ifdef XL_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
  if (!osxsave) return;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  int ymm_ok = (lo & 0x6) == 0x6, zmm_ok = (lo & 0xe6) == 0xe6;   /* XCR0: SSE+AVX, + opmask/ZMM state */
  f->avx = avx && ymm_ok;
  f->fma = fma && ymm_ok;
  f->f16c = f16c && ymm_ok;
  if (__get_cpuid_max(0, NULL) < 7) return;
  __cpuid_count(7, 0, a, b, c, d);
  f->avx2 = ((b >> 5) & 1) && ymm_ok;
  /* F (16), DQ (17), BW (30), VL (31) */
  f->avx512 = zmm_ok && ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
  __cpuid_count(7, 1, a, b, c, d);
  f->avx512bf16 = f->avx512 && ((a >> 5) & 1);
#endif
}

/* Whether the loaded OpenBLAS is a DYNAMIC_ARCH build with this core compiled in. */
static int lib_has_core(const char *name) {
  char sym[64];
  snprintf(sym, sizeof sym, "gotoblas_%s", name);
  return dlsym(RTLD_DEFAULT, sym) != NULL;
}

const char *xl_blas_core(void) {
  static char buf[64];
  const char *c = openblas_get_corename();
  size_t i = 0;
  for (; c && c[i] && i + 1 < sizeof buf; i++) buf[i] = (char)toupper((unsigned char)c[i]);
  buf[i] = 0;
  return i ? buf : "UNKNOWN";
}

const char *xl_blas_core_source(void) { return core_source; }

/* OpenBLAS maps one work buffer (128 MB) per thread: its workers when they start (at load,
 * before main, and when a thread count is raised), and every thread calling it (ours: the main
 * thread, and each pool worker calling SGEMM with one OpenBLAS thread) at its first call.
 * A freed buffer stays mapped in its pool for the next user. When a mapping fails (an
 * address-space limit, `ulimit -v`), OpenBLAS retries for ever: a spin at 100% CPU that no
 * signal ends, and exit() waits on a spinning worker; when it cannot start a thread it raises
 * SIGINT on itself. So under such a limit, before any BLAS call of a session:
 *  1. OpenBLAS's threads are stopped (they give their buffers back to the pool), with a
 *     deadline: one that cannot stop is spinning on its buffer, an error;
 *  2. with no thread of OpenBLAS running, every buffer the session can hold at once is
 *     taken, each new one only after a mapping of its size was seen to fit (so none spins),
 *     and given back: mapped, in the pool;
 *  3. the threads start again, where a failure to start one is caught (exit 1, not SIGINT).
 * Without a limit none of this is needed, and nothing is done. */
#define XL_BLAS_BUFFER (((size_t)128 << 20) + ((size_t)64 << 10))   /* Debian's BUFFER_SIZE + a page or so */
static int known_buffers;   /* buffers OpenBLAS's pool holds mapped: taking that many maps nothing */

static struct {
  void *(*alloc)(int);
  void (*free)(void *);
  int (*shutdown)(void), (*init)(void);
  int *nthreads, *avail;
} ob;
static int ob_found(void) {
  if (!ob.alloc) {
    ob.alloc = (void *(*)(int))dlsym(RTLD_DEFAULT, "blas_memory_alloc");
    ob.free = (void (*)(void *))dlsym(RTLD_DEFAULT, "blas_memory_free");
    ob.shutdown = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
    ob.init = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_init");
    ob.nthreads = (int *)dlsym(RTLD_DEFAULT, "blas_num_threads");
    ob.avail = (int *)dlsym(RTLD_DEFAULT, "blas_server_avail");
  }
  return ob.alloc && ob.free && ob.shutdown && ob.init && ob.nthreads && ob.avail;   /* else another OpenBLAS: left alone */
}

/* 1. Stops OpenBLAS's threads from a helper thread (a small stack: it fits where little
 * does) and waits for it at most 5 s: a thread still starting then is spinning on a buffer
 * it cannot map. 0 stopped, -1 not. */
static pthread_mutex_t sd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sd_cv = PTHREAD_COND_INITIALIZER;
static int sd_done;
static void *sd_main(void *arg) {
  (void)arg;
  ob.shutdown();
  pthread_mutex_lock(&sd_mu);
  sd_done = 1;
  pthread_cond_signal(&sd_cv);
  pthread_mutex_unlock(&sd_mu);
  return NULL;
}
static int stop_threads(void) {
  pthread_attr_t at;
  pthread_t t;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 1 << 20);
  sd_done = 0;
  int e = pthread_create(&t, &at, sd_main, NULL);
  if (e == EINVAL) e = pthread_create(&t, NULL, sd_main, NULL);   /* the thread-local data need more stack */
  pthread_attr_destroy(&at);
  if (e) return -1;   /* no room for even this thread: none for OpenBLAS's either */
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 5;
  pthread_mutex_lock(&sd_mu);
  while (!sd_done && pthread_cond_timedwait(&sd_cv, &sd_mu, &dl) == 0) {}
  int done = sd_done;
  pthread_mutex_unlock(&sd_mu);
  if (!done) return -1;
  pthread_join(t, NULL);
  return 0;
}

/* 3. A SIGINT OpenBLAS raises on itself (tgkill from this process) while its threads start
 * means a thread could not be created: an error, not an interrupt. Another SIGINT in that
 * window is kept for the handler that comes back after it. */
static volatile sig_atomic_t user_sigint;
static void on_blas_sigint(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  if (si && si->si_code == SI_TKILL && si->si_pid == getpid()) {
    static const char msg[] = "OpenBLAS could not start its threads (an address-space limit, ulimit -v, or the process "
                              "limit): raise the limit or use fewer --workers\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(XL_EXIT_ERROR);   /* OpenBLAS holds its locks here: nothing else may run */
  }
  user_sigint = 1;
}

/* Steps 1-3 for `workers` threads of ours; 0, or -1 with the reason in err. */
static int reserve(int workers, char *err, size_t errlen) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) || rl.rlim_cur == RLIM_INFINITY || !ob_found()) return 0;
  unsigned long long lim_kb = (unsigned long long)(rl.rlim_cur >> 10);
  int running = *ob.avail ? *ob.nthreads - 1 : 0;
  if (stop_threads())
    return xl_errf(err, errlen, "the address-space limit (ulimit -v %llu kB) leaves no room for the work buffers of "
                   "OpenBLAS's threads (%zu MB each): raise the limit, or set OPENBLAS_NUM_THREADS=1",
                   lim_kb, XL_BLAS_BUFFER >> 20);
  if (running > known_buffers) known_buffers = running;   /* each thread that stopped had its buffer */
  int threads = *ob.nthreads > workers ? *ob.nthreads : workers, need = (threads - 1) + workers;
  void **held = calloc((size_t)need, sizeof *held);
  if (!held) return xl_errf(err, errlen, "out of memory");
  int got = 0;
  for (; got < need; got++) {
    if (got >= known_buffers) {   /* a new mapping: only once one that size is seen to fit */
      void *p = mmap(NULL, XL_BLAS_BUFFER, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) break;
      munmap(p, XL_BLAS_BUFFER);
    }
    held[got] = ob.alloc(0);
  }
  for (int k = 0; k < got; k++) ob.free(held[k]);
  free(held);
  if (got > known_buffers) known_buffers = got;
  if (got < need) {
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) { if (fscanf(f, "%lu", &pages) != 1) pages = 0; fclose(f); }
    size_t mapped = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
    return xl_errf(err, errlen, "the address-space limit (ulimit -v %llu kB) leaves room for %d of the %d OpenBLAS "
                   "work buffers (%zu MB each) that %d worker%s (%zu MB are mapped already): raise the limit, "
                   "use fewer --workers, or set OPENBLAS_NUM_THREADS=1", lim_kb, got, need, XL_BLAS_BUFFER >> 20,
                   workers, workers == 1 ? " needs" : "s need", mapped >> 20);
  }
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_blas_sigint;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  user_sigint = 0;
  sigaction(SIGINT, &sa, &old);
  ob.init();
  if (workers > *ob.nthreads) openblas_set_num_threads(workers);   /* the threads past those start now too */
  sigaction(SIGINT, &old, NULL);
  if (user_sigint) raise(SIGINT);
  return 0;
}

int xl_blas_reserve(int workers, char *err, size_t errlen) { return reserve(workers, err, errlen); }

/* At start, before anything else: the main thread's buffer and the threads OpenBLAS
 * started when it was loaded. No room: say so and leave (exit 1). */
static void check_address_space(const char *argv0) {
  const char *name = argv0 && strrchr(argv0, '/') ? strrchr(argv0, '/') + 1 : argv0 ? argv0 : "xltools";
  char err[512];
  if (reserve(1, err, sizeof err) == 0) return;
  char msg[600];
  int n = snprintf(msg, sizeof msg, "%s: %s\n", name, err);
  if (n > 0) { ssize_t w = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1); (void)w; }
  _exit(XL_EXIT_ERROR);   /* a spinning OpenBLAS thread would hold up exit() */
}

void xl_blas_setup_unused(int argc, char **argv) {
  (void)argc;
  if (getenv("XL_BLAS_UNUSED_REEXEC")) {
    /* the re-executed process: OpenBLAS read the variable when it was loaded; the programs
     * this one starts (xl-save's and xl-sweep's runs) must not inherit it */
    unsetenv("OPENBLAS_NUM_THREADS");
    unsetenv("XL_BLAS_UNUSED_REEXEC");
    return;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) || rl.rlim_cur == RLIM_INFINITY || getenv("OPENBLAS_NUM_THREADS")) return;
  const char *ld = getenv("LD_PRELOAD");
  if (ld && strstr(ld, "vgpreload")) return;   /* valgrind: exec leaves the tool */
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = 0;
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  setenv("XL_BLAS_UNUSED_REEXEC", "1", 1);
  fflush(NULL);
  execv(exe, argv);   /* failed: go on as we are */
  unsetenv("OPENBLAS_NUM_THREADS");
  unsetenv("XL_BLAS_UNUSED_REEXEC");
}

void xl_blas_setup(int argc, char **argv) {
  (void)argc;
  check_address_space(argv ? argv[0] : NULL);
  const char *user = getenv("OPENBLAS_CORETYPE"), *marker = getenv("XL_BLAS_REEXEC");
  if (marker) {   /* we are the re-executed program: never loop, and do not pass the marker on */
    core_source = "reexec";
    unsetenv("XL_BLAS_REEXEC");
    return;
  }
  if (user && *user) { core_source = "user"; return; }
  const char *ld = getenv("LD_PRELOAD");
  if (ld && strstr(ld, "vgpreload")) return;   /* valgrind: cpuid is emulated and exec leaves the tool */
  /* XL_BLAS_ASSUME_CORE stands in for the loaded core: lets the tests drive the re-exec path
   * on a machine where OpenBLAS already detects its best core. */
  const char *current = getenv("XL_BLAS_ASSUME_CORE");
  if (!current || !*current) current = openblas_get_corename();
  xl_cpu_feats f;
  xl_cpu_features(&f);
  const char *want = xl_blas_pick_core(current, &f, lib_has_core);
  if (!want) return;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) { xl_warn("OpenBLAS runs the slow '%s' core and /proc/self/exe is unreadable; set OPENBLAS_CORETYPE=%s", current, want); return; }
  exe[n] = 0;
  setenv("OPENBLAS_CORETYPE", want, 1);
  setenv("XL_BLAS_REEXEC", "1", 1);
  unsetenv("XL_BLAS_ASSUME_CORE");
  fflush(NULL);
  execv(exe, argv);
  /* exec failed: carry on with the slow core rather than not at all */
  xl_warn("cannot re-execute %s with OPENBLAS_CORETYPE=%s; continuing with the '%s' core", exe, want, current);
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv("XL_BLAS_REEXEC");
}
