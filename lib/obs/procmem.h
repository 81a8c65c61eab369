/* procmem: this process's memory as the kernel counts it, read on demand from /proc:
 * the resident set now, its peak, and the system's MemTotal/MemAvailable. The one place
 * that reads them: telemetry's sampler and watchdog, the run tools' records
 * (peak_rss_mb) and the benchmarks all call these.
 * Not for: other processes (tmproc.h reads theirs for xl-top) or deciding what to do about
 * memory (telemetry's watchdog). */
#ifndef XL_PROCMEM_H
#define XL_PROCMEM_H
#include <stddef.h>

/* Resident set size in bytes (/proc/self/statm; includes resident pages of mmapped
 * files such as the model); 0 if /proc is unreadable. */
size_t tm_rss_bytes(void);
/* Peak resident set size in MB (2^20 bytes), VmHWM of /proc/self/status; 0 if unreadable.
 * Exact: the kernel counts it in kB. */
double tm_peak_rss_mb(void);
/* MemTotal and MemAvailable of /proc/meminfo in bytes; 0 ok, -1 unreadable (both 0). */
int tm_mem_info(size_t *total, size_t *avail);

#endif
