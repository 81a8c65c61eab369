#!/usr/bin/env bash
# make test-slurm: the Slurm fan-out of xl-sweep against a real Slurm (Debian's slurm-wlm +
# munge) on this machine, as root: starts munged, slurmctld and slurmd with the one-node
# cluster of tests/slurm/slurm.conf.in (state, logs and sockets in a temporary directory),
# runs a small sweep exactly as pipelines/sweep-slurm.sbatch's header and docs describe
#   xl-sweep plan -o runs/s ...; n=$(wc -l < runs/s/plan.jsonl)
#   jid=$(sbatch --parsable --array=0-$((n-1)) pipelines/sweep-slurm.sbatch runs/s)
#   sbatch --dependency=afterany:$jid --wrap "bin/xl-sweep collect runs/s runs/s/records/*.jsonl"
# (one of the trials is made to fail: its array task must be recorded as a failed trial),
# checks the collected run, and stops the daemons, also on failure or timeout.
# Prints TAP lines and "N passed, N failed, N skipped"; exit 0 when all passed.
# Environment: BIN (the built tools, default bin/), SLURM_TEST_TIMEOUT (seconds, default 300).
set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${BIN:-$root/bin}
limit=${SLURM_TEST_TIMEOUT:-300}
pass=0 fail=0 skip=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $*"; fail=$((fail + 1)); }
check() { local n=$1; shift; if "$@"; then ok "$n"; else not_ok "$n"; fi; }
summary() { echo "$pass passed, $fail failed, $skip skipped"; }

if [ "$(id -u)" != 0 ]; then
  echo "ok - Slurm test # SKIP needs root (it starts munged, slurmctld and slurmd)"; skip=1; summary; exit 0
fi
for p in munged mungekey slurmctld slurmd sbatch squeue scontrol sinfo; do
  if ! command -v "$p" > /dev/null && [ ! -x "/usr/sbin/$p" ]; then
    echo "not ok - $p is not installed (make deps installs slurm-wlm and munge)"; fail=1; summary; exit 1
  fi
done
export PATH="$PATH:/usr/sbin"
[ -x "$BIN/xl-sweep" ] || { echo "not ok - $BIN/xl-sweep is not built (make)"; fail=1; summary; exit 1; }

S=$(mktemp -d /tmp/xl-slurm.XXXXXX)
chmod 755 "$S"
W="$S/work"   # the submit directory: bin/ and pipelines/ of this tree, runs/ of its own
mkdir -p "$W/runs" "$S/ctld" "$S/slurmd"
ln -s "$(cd "$BIN" && pwd)" "$W/bin"
ln -s "$root/pipelines" "$W/pipelines"
export SLURM_CONF="$S/slurm.conf"

pids=()
cleanup() {
  set +e
  trap '' INT TERM   # nothing interrupts the shutdown
  scontrol shutdown > /dev/null 2>&1   # both daemons, cleanly
  for _ in $(seq 50); do
    alive=0
    for f in "$S/slurmctld.pid" "$S/slurmd.pid" "$S/munged.pid"; do
      [ -f "$f" ] && kill -0 "$(cat "$f")" 2> /dev/null && alive=1
    done
    [ $alive = 0 ] && break
    [ -f "$S/munged.pid" ] && kill "$(cat "$S/munged.pid")" 2> /dev/null
    sleep 0.1
  done
  for f in "$S/slurmctld.pid" "$S/slurmd.pid" "$S/munged.pid"; do
    [ -f "$f" ] && kill -KILL "$(cat "$f")" 2> /dev/null
  done
  if [ "$fail" != 0 ]; then   # what the daemons said, for the CI log
    for l in "$S/slurmctld.log" "$S/slurmd.log" "$S/munged.log"; do
      [ -f "$l" ] && { echo "# --- $(basename "$l") (last lines)"; tail -15 "$l" | sed 's/^/# /'; }
    done
  fi
  rm -rf "$S"
}
# The whole test is bounded: a watchdog sends TERM after $limit s (and so the trap stops the
# daemons). Its sleep writes nowhere: an open stdout would keep a caller's pipe waiting.
( sleep "$limit" & echo $! > "$S/watchdog.pid"; wait $! && kill -TERM $$ ) > /dev/null 2>&1 &
stop_watchdog() { [ -f "$S/watchdog.pid" ] && kill "$(cat "$S/watchdog.pid")" 2> /dev/null; }   # its wait fails: no TERM
trap 'stop_watchdog; cleanup' EXIT
trap 'echo "not ok - interrupted, or the test took more than $limit s"; fail=$((fail + 1)); summary; exit 1' INT TERM

wait_for() {   # wait_for SECONDS COMMAND...: until the command succeeds
  local t=$1; shift
  for _ in $(seq $((t * 5))); do "$@" > /dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# ---- munge: a key and a socket of our own
mungekey --create --keyfile "$S/munge.key" > /dev/null 2>&1 || dd if=/dev/urandom of="$S/munge.key" bs=1024 count=1 2> /dev/null
chmod 400 "$S/munge.key"
munged --force --key-file "$S/munge.key" --socket "$S/munge.socket" --pid-file "$S/munged.pid" \
  --log-file "$S/munged.log" --seed-file "$S/munged.seed" 2> "$S/munged.err"
check "munged started" wait_for 10 test -S "$S/munge.socket"

# ---- the cluster: this host, its CPUs and memory as slurmd sees them
host=$(hostname -s)
node=$(slurmd -C 2> /dev/null | head -1)
case "$node" in NodeName=*) ;; *) node="NodeName=$host CPUs=$(nproc)" ;; esac
sed -e "s|@STATE@|$S|g" -e "s|@HOST@|$host|g" -e "s|@CTLD_PORT@|$(free_port)|" -e "s|@SLURMD_PORT@|$(free_port)|" \
    -e "s|@NODE@|$node|" "$here/slurm.conf.in" > "$SLURM_CONF"
slurmctld -f "$SLURM_CONF" 2> "$S/slurmctld.err"
check "slurmctld started" wait_for 20 scontrol ping
slurmd -f "$SLURM_CONF" 2> "$S/slurmd.err"
idle() { sinfo -h -N -o '%T' | grep -qx idle; }
check "slurmd registered, the node is idle" wait_for 30 idle
if [ "$fail" != 0 ]; then summary; exit 1; fi

# ---- the documented recipe, from the submit directory
cd "$W"
bin/xl-sweep plan -o runs/s --backend chunkwise --chunk-size 16,32,64 --workers 1 --heads-per-band 1 \
  --context 64 --new 4 --repeats 1 --warmup 0 > /dev/null 2> "$S/plan.err"
n=$(wc -l < runs/s/plan.jsonl)
check "plan: 3 trials" test "$n" = 3
# trial 3 cannot run: its model does not exist (its array task fails)
jq -c 'if .trial == 3 then .model = "/nonexistent/model" else . end' runs/s/plan.jsonl > runs/s/plan.tmp && mv runs/s/plan.tmp runs/s/plan.jsonl
jid=$(sbatch --parsable --array=0-$((n-1)) pipelines/sweep-slurm.sbatch runs/s 2> "$S/sbatch.err")
check "sbatch --array accepted the job ($jid)" test -n "$jid"
cid=$(sbatch --parsable --dependency=afterany:$jid --wrap "bin/xl-sweep collect runs/s runs/s/records/*.jsonl" 2>> "$S/sbatch.err")
check "sbatch --dependency=afterany accepted the collect job ($cid)" test -n "$cid"
done_all() { [ -z "$(squeue -h -o %i 2> /dev/null)" ]; }
check "all jobs finished" wait_for $((limit - 30)) done_all
state() { scontrol show job "$1" 2> /dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}'; }
echo "# array job states: $(state "$jid"); collect: $(state "$cid")"

# ---- the collected run
check "every array task left its record" test "$(ls runs/s/records/task-*.jsonl 2> /dev/null | wc -l)" = 3
check "no half-written record (no .tmp left)" test -z "$(ls runs/s/records/*.tmp 2> /dev/null)"
check "the collect job wrote trials.jsonl" test -s runs/s/trials.jsonl
check "3 trials collected" test "$(jq -s length runs/s/trials.jsonl 2> /dev/null)" = 3
check "trials 1 and 2 ok" test "$(jq -r 'select(.trial != 3) | .status' runs/s/trials.jsonl 2> /dev/null | sort -u)" = ok
check "the failed array task is a failed trial with its error" \
  test "$(jq -r 'select(.trial == 3) | "\(.status) \(.error != null and .error != "")"' runs/s/trials.jsonl 2> /dev/null)" = "failed true"
check "the failed task's Slurm state is FAILED" sh -c 'scontrol show job "$1" | grep -q "JobState=FAILED"' _ "${jid}_2"
check "summary.csv has the 3 trials" test "$(($(wc -l < runs/s/summary.csv) - 1))" = 3
check "best.json names an ok trial" sh -c 'jq -e ".params.chunk_size | IN(16, 32)" runs/s/best.json > /dev/null'
check "the collect job succeeded" sh -c 'scontrol show job "$1" | grep -q "JobState=COMPLETED"' _ "$cid"
check "Slurm wrote the tasks' output files in the submit directory" test "$(ls slurm-"$jid"_*.out 2> /dev/null | wc -l)" = 3
if [ "$fail" != 0 ]; then
  for f in slurm-*.out; do [ -f "$f" ] && { echo "# --- $f"; tail -5 "$f" | sed 's/^/# /'; }; done
fi
cd /
summary
[ "$fail" = 0 ]
