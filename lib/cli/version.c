/* version: the --version block of every tool. See version.h. */
#include "cli/version.h"
#include "base/util.h"
#include "engine/blasenv.h"
#include "engine/engine.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#ifndef XL_COMMIT
#define XL_COMMIT "unknown"
#endif
#ifndef XL_BUILD_FLAGS
#define XL_BUILD_FLAGS ""
#endif

const char *xl_version_commit(void) { return XL_COMMIT[0] ? XL_COMMIT : "unknown"; }

void xl_version_print(FILE *f, const char *tool) {
  fprintf(f, "%s (xltools) %s\n", tool, XL_VERSION);
  fprintf(f, "commit: %s\n", xl_version_commit());
#if defined(__clang__)
  const char *cc = "clang " __clang_version__;
#elif defined(__GNUC__)
  const char *cc = "gcc " __VERSION__;
#else
  const char *cc = "cc";
#endif
#if defined(__SANITIZE_ADDRESS__)
  const char *san = ", AddressSanitizer";
#else
  const char *san = "";
#endif
  fprintf(f, "build: %s, flags '%s'%s\n", cc, XL_BUILD_FLAGS, san);
  fprintf(f, "cuda: %s\n", xl_built_with_cuda() ? "built in (--device cuda)" : "not built");
  const char *cfg = openblas_get_config();
  fprintf(f, "blas: %s; core %s (%s)\n", cfg ? cfg : "OpenBLAS", xl_blas_core(), xl_blas_core_source());
}

void xl_version_if_asked(int argc, char **argv, const char *tool) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) return;
    if (!strcmp(argv[i], "--version")) {
      xl_version_print(stdout, tool);
      xl_finish_stdout();
      exit(0);
    }
  }
}
