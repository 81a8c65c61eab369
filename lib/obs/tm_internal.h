/* tm_internal: declarations shared by the telemetry files (telemetry.c, memwatch.c,
 * tmprofile.c) and their test; not part of the public API in telemetry.h. */
#ifndef XL_TM_INTERNAL_H
#define XL_TM_INTERNAL_H
#include <stddef.h>
#include <stdio.h>

/* memwatch.c: registered model regions. mapped = sum of lengths; resident via mincore (call from one
 * thread at a time: uses a cached vector, freed by tm_regions_free_cache). */
size_t tm_regions_mapped(void);
size_t tm_regions_resident(void);
void tm_regions_free_cache(void);
/* The part of the regions in this process's resident set (/proc/self/smaps Rss of the
 * mappings that hold them; mincore would count the page cache instead). */
size_t tm_regions_rss(void);
/* madvise(MADV_DONTNEED) every region (page-aligned inward) + malloc_trim(0).
 * Returns the number of regions released. */
int tm_regions_release(void);

/* tmprofile.c: the --profile-log writer. */
int tm_prof_open(const char *path);   /* 0 ok, -1 errno */
int tm_prof_close(void);              /* flush + close; 0 ok, -1 on a write error */

/* Appends s to buf as a JSON string literal (with quotes), NULL -> null. Returns the new
 * length; never writes past cap (truncates). */
size_t tm_json_str(char *buf, size_t len, size_t cap, const char *s);
#endif
