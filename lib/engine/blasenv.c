/* blasenv: OpenBLAS core check and re-exec. See blasenv.h.
 * Cores are ranked by the widest vector ISA their kernels use; a running core is replaced
 * only when it is one of OpenBLAS's known x86 fallbacks ranked below what the CPU offers,
 * so an unknown (newer) core name is never "downgraded". */
#define _GNU_SOURCE
#include "engine/blasenv.h"
#include "base/util.h"
#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define XL_X86 1
#endif

extern char *openblas_get_corename(void);
extern int openblas_get_num_threads(void);

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

/* OpenBLAS maps one work buffer per thread: its workers at load, before main, and the main
 * thread at its first call. When the mapping fails (an address-space limit, `ulimit -v`), it
 * retries for ever: a worker spins at 100% CPU, the main thread spins in its first BLAS call
 * (where no signal ends it) and exit() waits on the spinning workers. So before any BLAS
 * call: when a buffer no longer fits, say so and leave at once (_exit: no exit handlers,
 * which would join the spinning workers); when it fits, make the main thread take its
 * buffer now, so a model mapped later cannot leave it without one. */
#define XL_BLAS_BUFFER (((size_t)128 << 20) + ((size_t)64 << 10))   /* Debian's BUFFER_SIZE + a page or so */
static void check_address_space(const char *argv0) {
  const char *name = argv0 && strrchr(argv0, '/') ? strrchr(argv0, '/') + 1 : argv0 ? argv0 : "xltools";
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) || rl.rlim_cur == RLIM_INFINITY) return;
  void *p = mmap(NULL, XL_BLAS_BUFFER, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    char msg[512];
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) { if (fscanf(f, "%lu", &pages) != 1) pages = 0; fclose(f); }
    size_t mapped = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
    int n = snprintf(msg, sizeof msg,
                     "%s: the address-space limit (ulimit -v %llu kB) leaves no room for OpenBLAS's work "
                     "buffers (%zu MB per thread, %d thread(s); %zu MB are mapped already): raise it to "
                     "at least %zu kB plus the model's size, or set OPENBLAS_NUM_THREADS=1\n",
                     name, (unsigned long long)(rl.rlim_cur >> 10), XL_BLAS_BUFFER >> 20,
                     openblas_get_num_threads(), mapped >> 20, (mapped + XL_BLAS_BUFFER) >> 10);
    if (n > 0) { ssize_t w = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1); (void)w; }
    _exit(XL_EXIT_ERROR);
  }
  munmap(p, XL_BLAS_BUFFER);
  void *(*mem_alloc)(int) = (void *(*)(int))dlsym(RTLD_DEFAULT, "blas_memory_alloc");
  void (*mem_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "blas_memory_free");
  if (mem_alloc && mem_free) {   /* the pool keeps the mapping for the next call */
    void *b = mem_alloc(0);
    if (b) mem_free(b);
  }
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
