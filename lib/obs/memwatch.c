/* memwatch: the table of registered model mappings (how much is mapped, how much of it is
 * resident by mincore, and dropping it with madvise under memory pressure).
 * Not for: reading RSS (procmem.c) or deciding when to act (telemetry.c's watchdog). */
#define _GNU_SOURCE
#include "obs/telemetry.h"
#include "obs/tm_internal.h"
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t page_size(void) {
  static size_t ps;
  if (!ps) {
    long v = sysconf(_SC_PAGESIZE);
    ps = v > 0 ? (size_t)v : 4096;
  }
  return ps;
}

#define MAX_REGIONS 64
static struct region { char name[32]; const void *ptr; size_t len; } regions[MAX_REGIONS];
static int nregions;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *mc_vec;   /* mincore scratch, grown as needed */
static size_t mc_cap;

void tm_register_region(const char *name, const void *ptr, size_t len) {
  if (!ptr || !len) return;
  pthread_mutex_lock(&reg_mu);
  if (nregions < MAX_REGIONS) {
    struct region *r = &regions[nregions++];
    snprintf(r->name, sizeof r->name, "%s", name ? name : "");
    r->ptr = ptr;
    r->len = len;
  }
  pthread_mutex_unlock(&reg_mu);
}

void tm_unregister_region(const void *ptr) {
  pthread_mutex_lock(&reg_mu);
  for (int i = 0; i < nregions; i++)
    if (regions[i].ptr == ptr) {
      regions[i] = regions[--nregions];
      break;
    }
  pthread_mutex_unlock(&reg_mu);
}

size_t tm_regions_mapped(void) {
  size_t s = 0;
  pthread_mutex_lock(&reg_mu);
  for (int i = 0; i < nregions; i++) s += regions[i].len;
  pthread_mutex_unlock(&reg_mu);
  return s;
}

size_t tm_regions_resident(void) {
  size_t ps = page_size(), total = 0;
  pthread_mutex_lock(&reg_mu);
  for (int i = 0; i < nregions; i++) {
    /* mincore wants a page-aligned start; the page holding the first byte is mapped. */
    uintptr_t start = (uintptr_t)regions[i].ptr & ~(uintptr_t)(ps - 1);
    uintptr_t end = (uintptr_t)regions[i].ptr + regions[i].len;
    size_t npages = (end - start + ps - 1) / ps;
    if (npages > mc_cap) {
      unsigned char *nv = realloc(mc_vec, npages);
      if (!nv) continue;
      mc_vec = nv;
      mc_cap = npages;
    }
    if (mincore((void *)start, end - start, mc_vec)) continue;   /* unmapped: count nothing */
    size_t res = 0;
    for (size_t p = 0; p < npages; p++) res += mc_vec[p] & 1;
    size_t bytes = res * ps;
    total += bytes < regions[i].len ? bytes : regions[i].len;
  }
  pthread_mutex_unlock(&reg_mu);
  return total;
}

size_t tm_regions_rss(void) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return 0;
  char line[512];
  size_t total = 0;
  int in = 0;   /* the current mapping overlaps a region */
  pthread_mutex_lock(&reg_mu);
  while (fgets(line, sizeof line, f)) {
    unsigned long a, b, kb;
    if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = 0;
      for (int i = 0; i < nregions && !in; i++) {
        uintptr_t ra = (uintptr_t)regions[i].ptr, rb = ra + regions[i].len;
        in = a < rb && ra < b;
      }
    } else if (in && !strncmp(line, "Rss:", 4) && sscanf(line + 4, "%lu", &kb) == 1) {
      total += (size_t)kb * 1024;
    }
  }
  pthread_mutex_unlock(&reg_mu);
  fclose(f);
  return total;
}

void tm_regions_free_cache(void) {
  pthread_mutex_lock(&reg_mu);
  free(mc_vec);
  mc_vec = NULL;
  mc_cap = 0;
  pthread_mutex_unlock(&reg_mu);
}

int tm_regions_release(void) {
  size_t ps = page_size();
  int n = 0;
  pthread_mutex_lock(&reg_mu);
  for (int i = 0; i < nregions; i++) {
    /* Inward alignment: never drop a page that is partly someone else's memory. */
    uintptr_t start = ((uintptr_t)regions[i].ptr + ps - 1) & ~(uintptr_t)(ps - 1);
    uintptr_t end = ((uintptr_t)regions[i].ptr + regions[i].len) & ~(uintptr_t)(ps - 1);
    if (end > start && madvise((void *)start, end - start, MADV_DONTNEED) == 0) n++;
  }
  pthread_mutex_unlock(&reg_mu);
  malloc_trim(0);
  return n;
}
