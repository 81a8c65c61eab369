/* tmprofile: per-phase time accounting for --profile-log. The model code adds seconds to
 * (block, phase) cells during a step; tm_prof_step_end writes one JSON line with the last
 * and mean time of every cell seen. Storage is static (no allocation in the hot loop);
 * when profiling is off every call returns at once.
 * Not for: the per-token stats log (telemetry.c). */
#include "obs/telemetry.h"
#include "obs/tm_internal.h"
#include "base/util.h"
#include <stdio.h>
#include <string.h>

#define NCELL (TM_PROF_MAX_BLOCKS + 1)   /* row 0 = model level, row b+1 = block b */

static const char *const phase_names[TM_NPHASE] = {
  "embed", "norm", "proj", "cell", "headnorm", "outproj", "ffn", "lmhead", "sample",
};

static FILE *pf;
static int enabled;
static int max_row;                          /* highest row touched so far */
static double cur[NCELL][TM_NPHASE];         /* seconds in the current step */
static double sum[NCELL][TM_NPHASE];         /* seconds over all steps */
static long cnt[NCELL][TM_NPHASE];           /* steps in which the cell occurred */
static double last[NCELL][TM_NPHASE];        /* seconds in the last step it occurred */
static unsigned char hit[NCELL][TM_NPHASE];  /* touched in the current step */
static double last_flush;

int tm_profiling(void) { return enabled; }

int tm_prof_open(const char *path) {
  pf = xl_fopen_write(path);
  if (!pf) return -1;
  memset(cur, 0, sizeof cur);
  memset(sum, 0, sizeof sum);
  memset(cnt, 0, sizeof cnt);
  memset(last, 0, sizeof last);
  memset(hit, 0, sizeof hit);
  max_row = 0;
  enabled = 1;
  last_flush = xl_now();
  return 0;
}

int tm_prof_close(void) {
  enabled = 0;
  if (!pf) return 0;
  int rc = xl_fclose_checked(pf);
  pf = NULL;
  return rc;
}

void tm_prof_add(int block, enum tm_phase ph, double seconds) {
  if (!enabled || (unsigned)ph >= TM_NPHASE) return;
  int row = (block < 0 || block >= TM_PROF_MAX_BLOCKS) ? 0 : block + 1;
  cur[row][ph] += seconds;
  hit[row][ph] = 1;
  if (row > max_row) max_row = row;
}

/* One row's cells as a JSON object of {"phase":{"last_ms":..,"mean_ms":..}}. */
static void write_row(int row) {
  int first = 1;
  fputc('{', pf);
  for (int p = 0; p < TM_NPHASE; p++) {
    if (!cnt[row][p]) continue;
    fprintf(pf, "%s\"%s\":{\"last_ms\":%.6f,\"mean_ms\":%.6f}", first ? "" : ",", phase_names[p],
            last[row][p] * 1e3, sum[row][p] / (double)cnt[row][p] * 1e3);
    first = 0;
  }
  fputc('}', pf);
}

void tm_prof_step_end(long step) {
  if (!enabled) return;
  double total = 0;
  for (int r = 0; r <= max_row; r++)
    for (int p = 0; p < TM_NPHASE; p++) {
      if (!hit[r][p]) continue;
      total += cur[r][p];
      last[r][p] = cur[r][p];
      sum[r][p] += cur[r][p];
      cnt[r][p]++;
      cur[r][p] = 0;
      hit[r][p] = 0;
    }
  fprintf(pf, "{\"step\":%ld,\"total_ms\":%.6f,\"phases\":", step, total * 1e3);
  write_row(0);
  fputs(",\"blocks\":[", pf);
  for (int r = 1; r <= max_row; r++) {
    if (r > 1) fputc(',', pf);
    write_row(r);
  }
  fputs("]}\n", pf);
  double now = xl_now();
  if (now - last_flush >= 0.25) {   /* flush as it goes, not per step */
    fflush(pf);
    last_flush = now;
  }
}
