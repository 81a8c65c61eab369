/* blasenv: makes sure OpenBLAS runs its best kernels for this CPU. Some OpenBLAS builds
 * (Debian's 0.3.21 on CPUs or hypervisors it does not recognise) fall back to a generic
 * core such as "Prescott", which is 5-10x slower at SGEMM than the AVX-512 "SkylakeX" core.
 * OpenBLAS picks its core once, when the library is loaded, from OPENBLAS_CORETYPE or from
 * cpuid, so the fix is to set OPENBLAS_CORETYPE and re-execute the program.
 * Every tool calls xl_blas_setup(argc, argv) first thing in main.
 * Not for: thread counts (forward.c sets those per session). */
#ifndef XL_BLASENV_H
#define XL_BLASENV_H
#include <stddef.h>

/* If the user did not set OPENBLAS_CORETYPE and the loaded core is a weaker fallback than
 * what cpuid (and the OS's saved register state) allows, sets OPENBLAS_CORETYPE and
 * re-executes /proc/self/exe with the same argv. Guarded against loops by the
 * XL_BLAS_REEXEC environment marker; never re-executes under valgrind. Returns normally
 * when nothing needs doing (or the re-exec failed, with a warning). */
void xl_blas_setup(int argc, char **argv);

/* Under an address-space limit (ulimit -v), maps now every OpenBLAS work buffer a CPU
 * session of `workers` threads can hold at once (OpenBLAS's own threads, one each, and a
 * caller per worker of our pool, which calls SGEMM with one OpenBLAS thread), and starts
 * OpenBLAS's threads, so that none of them has to map one later: OpenBLAS retries a failing
 * mapping for ever (a spin that no signal ends) and raises SIGINT on itself when it cannot
 * start a thread. When they do not fit: -1 with a message saying so (the tool exits 1).
 * Without a limit: nothing to do, 0. */
int xl_blas_reserve(int workers, char *err, size_t errlen);

/* xl_blas_setup for a tool that never calls BLAS (xl-top, xl-init, the pipeline tools;
 * OpenBLAS is linked into every tool): under an address-space limit it re-executes the
 * program once with OPENBLAS_NUM_THREADS=1, so OpenBLAS starts no threads whose buffers
 * could fail to map (a spin) or that could fail to start (OpenBLAS then raises SIGINT on
 * itself); the re-executed process removes the variable again, so the programs it starts
 * do not inherit it. Without a limit, or when the user set OPENBLAS_NUM_THREADS: nothing. */
void xl_blas_setup_unused(int argc, char **argv);

/* The core OpenBLAS runs ("SkylakeX", "Haswell", "Prescott", ...). */
const char *xl_blas_core(void);
/* How the core was chosen: "auto" (OpenBLAS's own detection), "user" (OPENBLAS_CORETYPE
 * was set before we ran) or "reexec" (xl_blas_setup set it and restarted the program). */
const char *xl_blas_core_source(void);

/* The pure decision, for tests: the OPENBLAS_CORETYPE value that should replace the
 * running core `current` on a CPU with these features, or NULL when `current` is as good.
 * avx512 means F+BW+DQ+VL with the OS saving ZMM state; has_core(name) says whether the
 * library knows a core (may be NULL: assume it does). */
typedef struct { int avx, avx2, fma, f16c, avx512, avx512bf16; } xl_cpu_feats;
const char *xl_blas_pick_core(const char *current, const xl_cpu_feats *f, int (*has_core)(const char *name));
/* This CPU's features (cpuid + xgetbv). */
void xl_cpu_features(xl_cpu_feats *f);

#endif
