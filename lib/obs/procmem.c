/* procmem: /proc readers for this process's memory. See procmem.h. */
#include "obs/procmem.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

size_t tm_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, res = 0;
  int n = fscanf(f, "%lu %lu", &size, &res);
  fclose(f);
  long ps = sysconf(_SC_PAGESIZE);
  return n == 2 ? (size_t)res * (size_t)(ps > 0 ? ps : 4096) : 0;
}

/* Values of one or two "Key:   123 kB" lines of a /proc file, in bytes. 0 when every key
 * was found. */
static int proc_kb(const char *path, const char *key1, size_t *v1, const char *key2, size_t *v2) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  int found = 0, want = key2 ? 2 : 1;
  size_t k1 = strlen(key1), k2 = key2 ? strlen(key2) : 0;
  while (found < want && fgets(line, sizeof line, f)) {
    unsigned long kb;
    if (!strncmp(line, key1, k1) && line[k1] == ':' && sscanf(line + k1 + 1, "%lu", &kb) == 1) {
      *v1 = (size_t)kb * 1024; found++;
    } else if (key2 && !strncmp(line, key2, k2) && line[k2] == ':' &&
               sscanf(line + k2 + 1, "%lu", &kb) == 1) {
      *v2 = (size_t)kb * 1024; found++;
    }
  }
  fclose(f);
  return found == want ? 0 : -1;
}

double tm_peak_rss_mb(void) {
  size_t v = 0;
  return proc_kb("/proc/self/status", "VmHWM", &v, NULL, NULL) ? 0 : v / 1048576.0;
}

int tm_mem_info(size_t *total, size_t *avail) {
  *total = *avail = 0;
  return proc_kb("/proc/meminfo", "MemTotal", total, "MemAvailable", avail);
}
