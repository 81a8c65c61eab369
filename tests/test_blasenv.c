/* test_blasenv: the OpenBLAS core choice (pure decision table) and the re-exec itself:
 * this binary re-runs itself with `--report` under different environments and reads back
 * which core the child ended up with. */
#include "engine/blasenv.h"
#include "testlib.h"
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

/* Child mode: set up like a tool does, then report. */
static int report(int argc, char **argv) {
  xl_blas_setup(argc, argv);
  const char *ct = getenv("OPENBLAS_CORETYPE"), *mk = getenv("XL_BLAS_REEXEC");
  xl_cpu_feats f;
  xl_cpu_features(&f);   /* the child's own view: under valgrind the parent's cpuid is emulated */
  printf("core=%s source=%s coretype=%s marker=%s avx512=%d avx2=%d\n", xl_blas_core(), xl_blas_core_source(), ct ? ct : "-",
         mk ? mk : "-", f.avx512, f.avx2);
  return 0;
}

/* Runs this binary with --report after applying "NAME=VALUE" (set) or "NAME" (unset) edits;
 * returns the child's stdout line in out. */
static int run_child(const char *const *edits, char *out, size_t n) {
  /* the real path (under valgrind /proc/self/exe is valgrind itself; readlink is virtualised) */
  char exe[4096];
  ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (el <= 0) return -1;
  exe[el] = 0;
  int fd[2];
  if (pipe(fd)) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    for (; *edits; edits++) {
      char name[128];
      const char *eq = strchr(*edits, '=');
      snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - *edits) : (int)strlen(*edits), *edits);
      if (eq) setenv(name, eq + 1, 1); else unsetenv(name);
    }
    char *av[] = {"test_blasenv", "--report", NULL};
    execv(exe, av);
    _exit(127);
  }
  close(fd[1]);
  ssize_t got = 0, r;
  while (got < (ssize_t)n - 1 && (r = read(fd[0], out + got, n - 1 - (size_t)got)) > 0) got += r;
  out[got > 0 ? got : 0] = 0;
  char *nl = strchr(out, '\n');
  if (nl) *nl = 0;
  close(fd[0]);
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int no_cooperlake(const char *name) { return strcmp(name, "COOPERLAKE") != 0; }

/* A core the decision table would replace on this CPU (f: the CPU's own features, so the
 * test holds on AVX2-only machines as well as on AVX-512 and AVX512-BF16 ones). */
static int is_fallback(const char *core, const xl_cpu_feats *f) { return xl_blas_pick_core(core, f, NULL) != NULL; }

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--report")) return report(argc, argv);

  /* the decision table */
  /* named fields: a feature added to the struct must not shift the others */
  xl_cpu_feats skx = {.avx = 1, .avx2 = 1, .fma = 1, .f16c = 1, .avx512 = 1},
               hsw = {.avx = 1, .avx2 = 1, .fma = 1, .f16c = 1},
               cpl = {.avx = 1, .avx2 = 1, .fma = 1, .f16c = 1, .avx512 = 1, .avx512bf16 = 1}, old = {0};
  const char *p;
  CHECK((p = xl_blas_pick_core("Prescott", &skx, NULL)) && !strcmp(p, "SKYLAKEX"), "Prescott on AVX-512 -> SKYLAKEX");
  CHECK(xl_blas_pick_core("SkylakeX", &skx, NULL) == NULL, "SkylakeX on AVX-512 stays");
  CHECK((p = xl_blas_pick_core("Haswell", &skx, NULL)) && !strcmp(p, "SKYLAKEX"), "Haswell on AVX-512 -> SKYLAKEX");
  CHECK((p = xl_blas_pick_core("Core2", &hsw, NULL)) && !strcmp(p, "HASWELL"), "Core2 on AVX2+FMA -> HASWELL");
  CHECK(xl_blas_pick_core("Haswell", &hsw, NULL) == NULL, "Haswell on AVX2 stays");
  CHECK((p = xl_blas_pick_core("Prescott", &cpl, NULL)) && !strcmp(p, "COOPERLAKE"), "Prescott on AVX512-BF16 -> COOPERLAKE");
  CHECK((p = xl_blas_pick_core("Prescott", &cpl, no_cooperlake)) && !strcmp(p, "SKYLAKEX"),
        "library without Cooperlake -> SKYLAKEX");
  CHECK(xl_blas_pick_core("Cooperlake", &skx, NULL) == NULL, "a better core is never downgraded");
  CHECK(xl_blas_pick_core("NeoverseN1", &skx, NULL) == NULL, "an unknown core name is left alone");
  CHECK(xl_blas_pick_core("Prescott", &old, NULL) == NULL, "no AVX: nothing better to pick");

  xl_cpu_feats f;
  xl_cpu_features(&f);
  printf("# cpu: avx %d avx2 %d fma %d avx512 %d avx512bf16 %d; OpenBLAS core in this process: %s\n", f.avx, f.avx2, f.fma,
         f.avx512, f.avx512bf16, xl_blas_core());
  CHECK(strcmp(xl_blas_core(), "UNKNOWN") != 0 && strlen(xl_blas_core()) > 2, "corename reported (%s)", xl_blas_core());

  char out[512];
  /* 1. clean environment: after setup the core is not a fallback for this CPU */
  const char *clean[] = {"OPENBLAS_CORETYPE", "XL_BLAS_REEXEC", "XL_BLAS_ASSUME_CORE", NULL};
  int rc = run_child(clean, out, sizeof out);
  char core[64] = "";
  sscanf(out, "core=%63s", core);
  CHECK(rc == 0 && *core, "child reports a core: %s", out);
  xl_cpu_feats cf = f;
  cf.avx512 = strstr(out, "avx512=1") != NULL;
  cf.avx2 = cf.fma = cf.avx = strstr(out, "avx2=1") != NULL;
  CHECK(xl_blas_pick_core(core, &cf, NULL) == NULL || !strcmp(core, "COOPERLAKE"),
        "after setup the core (%s) is the best this CPU allows", core);
  CHECK(strstr(out, "marker=-") != NULL, "the re-exec marker is not passed on");

  /* 2. a user's OPENBLAS_CORETYPE is respected */
  const char *user[] = {"OPENBLAS_CORETYPE=PRESCOTT", "XL_BLAS_REEXEC", "XL_BLAS_ASSUME_CORE", NULL};
  rc = run_child(user, out, sizeof out);
  CHECK(rc == 0 && strstr(out, "core=PRESCOTT") && strstr(out, "source=user") && strstr(out, "coretype=PRESCOTT"),
        "OPENBLAS_CORETYPE=PRESCOTT set by the user is kept: %s", out);

  /* 3. the re-exec path: pretend the loaded core is Prescott */
  const char *forced[] = {"OPENBLAS_CORETYPE", "XL_BLAS_REEXEC", "XL_BLAS_ASSUME_CORE=Prescott", NULL};
  rc = run_child(forced, out, sizeof out);
  int c512 = strstr(out, "avx512=1") != NULL, c2 = strstr(out, "avx2=1") != NULL;
  if (c2 || c512) {
    CHECK(rc == 0 && strstr(out, "source=reexec") && strstr(out, "marker=-"), "a fallback core triggers one re-exec: %s", out);
    sscanf(out, "core=%63s", core);
    const char *want = xl_blas_pick_core("Prescott", &f, NULL);
    char coretype[64] = "";
    const char *ct = strstr(out, "coretype=");
    if (ct) sscanf(ct, "coretype=%63s", coretype);
    CHECK(!is_fallback(core, &f) && want && !strcasecmp(coretype, want) && !strcasecmp(core, want),
          "the re-executed child runs with the core this CPU allows (%s): %s", want ? want : "?", out);
  } else {
    CHECK(rc == 0 && strstr(out, "source=auto"), "no better core on this CPU: no re-exec: %s", out);
  }

  /* 4. loop guard: with the marker present nothing is re-executed */
  const char *guard[] = {"OPENBLAS_CORETYPE", "XL_BLAS_REEXEC=1", "XL_BLAS_ASSUME_CORE=Prescott", NULL};
  rc = run_child(guard, out, sizeof out);
  CHECK(rc == 0 && strstr(out, "source=reexec") && strstr(out, "coretype=-"), "the marker stops a second re-exec: %s", out);
  return tl_done();
}
