/* version: what every tool prints for --version: the project version, the git commit the
 * binary was built from (the Makefile passes `git describe --always --dirty` as XL_COMMIT),
 * the compiler and flags, whether the CUDA device is built in, and the BLAS library and
 * the core it runs. One function, called on the first line of each tool's main.
 * Not for: run provenance in records (sweep/ writes its own run_meta.json). */
#ifndef XL_VERSION_H
#define XL_VERSION_H
#include <stdio.h>

#define XL_VERSION "0.1.0"

/* The commit the binary was built from ("unknown" outside a git checkout). */
const char *xl_version_commit(void);
/* Writes the version block: first line "TOOL (xltools) VERSION" (help2man reads it). */
void xl_version_print(FILE *f, const char *tool);
/* When some argument before "--" is --version: prints the block on stdout, exits 0. */
void xl_version_if_asked(int argc, char **argv, const char *tool);

#endif
