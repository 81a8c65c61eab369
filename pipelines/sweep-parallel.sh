#!/usr/bin/env bash
# sweep-parallel.sh: a grid or random xl-sweep fanned out with GNU parallel, on this
# machine or over ssh, into one run directory.
#   1. `xl-sweep plan ...` writes RUN_DIR/run_meta.json, the prompt ids and
#      RUN_DIR/plan.jsonl (one trial spec per line);
#   2. GNU parallel runs `xl-sweep trial SPEC` once per line (--joblog RUN_DIR/joblog;
#      --sshlogin for other machines, default ":" = here), appending each record to
#      RUN_DIR/records.jsonl;
#   3. `xl-sweep collect RUN_DIR RUN_DIR/records.jsonl` folds them into trials.jsonl,
#      summary.csv, best.json (dedupe by slug: a rerun that succeeds replaces a failure).
# Rerun with --resume-failed to run only the jobs that failed or never ran (the plan is
# kept). Each trial runs the tools beside the xl-sweep that runs it (--xl-sweep PATH), never
# a program a spec names (a spec's bin and tool_prefix are ignored: docs/security.md), so
# remote hosts need that xl-sweep and the specs' model and prompt paths; a missing ids file
# is rebuilt there from the prompt file.
#
# Usage: pipelines/sweep-parallel.sh [-j N] [--sshlogin S] [--resume-failed]
#            [--xl-sweep PATH] RUN_DIR [-- xl-sweep plan options...]
# Example: pipelines/sweep-parallel.sh -j 1 runs/par -- --chunk-size 16,64 --workers 1,2 \
#            --context 256 --new 16 --repeats 2
# Measuring several trials at once on one machine makes them compete for the cores: use
# -j 1 per host for speeds you can trust (more hosts, not more jobs, for throughput).
# Exit: 0 all trials ok, 1 some failed (recorded; rerun with --resume-failed), 2 usage.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
xlsweep="$here/../bin/xl-sweep"
jobs=1 sshlogin=":" resume=0 run=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    -j) jobs=${2:?-j needs a value}; shift 2 ;;
    --sshlogin|-S) sshlogin=${2:?--sshlogin needs a value}; shift 2 ;;
    --resume-failed) resume=1; shift ;;
    --xl-sweep) xlsweep=${2:?--xl-sweep needs a value}; shift 2 ;;
    --) shift; break ;;
    -*) echo "sweep-parallel.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$run" ] || { echo "sweep-parallel.sh: one RUN_DIR only" >&2; exit 2; }; run=$1; shift ;;
  esac
done
[ -n "$run" ] || { echo "sweep-parallel.sh: which RUN_DIR? (see --help)" >&2; exit 2; }
command -v parallel >/dev/null || { echo "sweep-parallel.sh: GNU parallel is not installed (apt-get install parallel)" >&2; exit 1; }

if [ "$resume" = 1 ] && [ -s "$run/plan.jsonl" ]; then
  [ $# -eq 0 ] || echo "sweep-parallel.sh: --resume-failed keeps the existing plan; ignoring: $*" >&2
else
  "$xlsweep" plan -o "$run" "$@" > /dev/null
fi
n=$(wc -l < "$run/plan.jsonl")
echo "sweep-parallel.sh: $n trials in $run/plan.jsonl, -j $jobs on ${sshlogin}" >&2

rflag=()
[ "$resume" = 1 ] && rflag=(--resume-failed)
set +e
# Each job prints one record line; parallel keeps a job's output together (--group).
parallel --will-cite --group -j "$jobs" --joblog "$run/joblog" "${rflag[@]}" --sshlogin "$sshlogin" \
  "$xlsweep" trial {} :::: "$run/plan.jsonl" >> "$run/records.jsonl"
failed=$?
set -e
"$xlsweep" collect "$run" "$run/records.jsonl" > /dev/null
if [ "$failed" -ne 0 ]; then
  echo "sweep-parallel.sh: $failed trial(s) failed (recorded in $run/trials.jsonl); rerun with --resume-failed" >&2
  exit 1
fi
echo "sweep-parallel.sh: done: $run/summary.csv, $run/best.json" >&2
