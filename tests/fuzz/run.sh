#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD SECONDS TARGET...: runs each harness BUILD/fuzz_TARGET for SECONDS
# on BUILD/corpus/TARGET (the seeds of tests/fuzz/corpus/TARGET copied in first; what the
# fuzzer finds stays there, outside the repository), with tests/fuzz/TARGET.dict when there
# is one. Prints one line per target (executions, rate, corpus size, any crash file) and
# exits 1 when a harness found a crash, leak, timeout or out-of-memory input; each one's
# full log is BUILD/fuzz_TARGET.log. Used by `make fuzz` (see docs/fuzzing.md).
set -u
[ $# -ge 3 ] || { echo "usage: $0 BUILD SECONDS TARGET..." >&2; exit 2; }
build=$1 secs=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
total=0 bad=0
for t in "$@"; do
  bin=$build/fuzz_$t
  if [ ! -x "$bin" ]; then echo "fuzz_$t: no harness $bin (make fuzz-build)"; bad=$((bad + 1)); continue; fi
  corpus=$build/corpus/$t crashes=$build/crashes/$t log=$build/fuzz_$t.log
  mkdir -p "$corpus" "$crashes"
  [ -d "$here/corpus/$t" ] && cp -n "$here/corpus/$t"/* "$corpus"/ 2>/dev/null
  n0=$(find "$corpus" -type f | wc -l)
  dict=()
  [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
  mark=$(mktemp)
  start=$SECONDS
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "${dict[@]}" "$corpus" > "$log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  [ -n "$execs" ] || execs=0
  n1=$(find "$corpus" -type f | wc -l)
  found=$(find "$crashes" -type f -newer "$mark" | sort)
  rm -f "$mark"
  total=$((total + execs))
  line=$(printf 'fuzz_%-13s %10d executions in %3ds (%d/s), corpus %d inputs (%+d)' "$t" "$execs" "$took" \
    $((execs / (took > 0 ? took : 1))) "$n1" $((n1 - n0)))
  if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    bad=$((bad + 1))
    echo "$line: FAILED (exit $rc)"
    why=$(grep -m1 -oE 'fuzz invariant broken at [^ ]+ .*' "$log" || grep -m1 -oE '[^ ]+: runtime error: .*' "$log" ||
          grep -m1 -oE 'ERROR: libFuzzer: (out-of-memory|timeout|fuzz target exited).*' "$log" ||
          grep -m1 -E '^SUMMARY: ' "$log")
    echo "    ${why:-see the log}"
    for f in $found; do echo "    input: $f"; done
    echo "    log: $log"
  else
    echo "$line, no crash"
  fi
done
echo "fuzz: $# targets, $total executions, $bad with findings"
[ "$bad" -eq 0 ]
