/* sweep_driver: the local sweep loop of xl-sweep. It walks the search (grid, random, GA or
 * NSGA-II), turns each setting into one trial per context length, numbers the trials in
 * the order they are first asked for, skips every trial whose record the run directory
 * already holds (that is how --resume works, and how the GA re-uses a result), runs the
 * others (in chunks of --interleave trials drawn at random, each chunk's runs interleaved;
 * a measurement a trial's knobs cannot change is taken from the trial that made it) and
 * records them as they finish, and reports progress on stderr.
 * Also makes the trial specs of a plan (for running elsewhere).
 * Not for: parsing settings (sweep_config.h) or file formats (sweep_run.h). */
#ifndef XL_SWEEP_DRIVER_H
#define XL_SWEEP_DRIVER_H
#include "sweep/sweep_config.h"
#include "sweep/sweep_run.h"
#include "sweep/sweep_trial.h"

typedef struct {
  const sw_conf *conf;
  sw_rundir *run;
  const sw_hostinfo *host;
  const char *bin;            /* absolute */
  char **ids_files;           /* [conf->contexts.n], absolute */
  const char *prompt_file;    /* absolute */
  const char *model;          /* absolute or NULL */
  int progress;               /* 1: lines on stderr */
  /* results */
  long asked;                 /* distinct trials asked for (the last trial number) */
  long measured;              /* trials run by this process */
  long reused;                /* trials found in the run directory */
  long failed;                /* failed trials among all asked */
  double seconds;             /* time spent measuring */
  long evals;                 /* trials the search asked for so far, repeats included */
  long total;                 /* evaluations planned: trials (grid/random), population x
                                 generations x contexts (ga/pareto; NSGA-II may add refills) */
  long batches;               /* interleaved chunks run so far */
  char **seen;                /* keys asked for so far (owned) */
  size_t nseen, capseen;
} sw_driver;

/* Runs the whole search. Returns 0 when it finished, 1 when interrupted (sw_proc_stop),
 * -1 on a write error to the run directory (errno set). */
int sw_drive(sw_driver *d);
void sw_driver_free(sw_driver *d);

/* Fills a spec for a setting at context index ci with trial number `trial`
 * (strings copied; sw_spec_free). */
void sw_driver_spec(const sw_driver *d, const sw_setting *s, size_t ci, long trial, sw_spec *sp);

/* Sets what each of n specs (in trial order) measures itself and which trial the rest
 * comes from (decode_from, prefill_from): a trial recorded in d->run (when there is one),
 * else the first spec with the same measurement key (sw_measure_key). */
void sw_driver_roles(const sw_driver *d, sw_spec *sp, size_t n);

/* The settings of a non-adaptive plan (grid/random); malloc'd. */
size_t sw_driver_plan(const sw_conf *c, sw_setting **out);

#endif
