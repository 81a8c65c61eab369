#!/usr/bin/env bash
# t_fuzz: the fuzz harnesses (tests/fuzz/, docs/fuzzing.md) stay built and working, as CI
# runs them: `make fuzz-build` (quietly, into build-fuzz/), then each harness for a few
# seconds (XL_FUZZ_SECONDS, default 2) with a fixed seed on a copy of its seed corpus, and
# each saved regression input (tests/fuzz/regress/NAME/*: inputs that once crashed,
# leaked or hit undefined behaviour) once. Without clang or libFuzzer every check is
# skipped (and counted as skipped). Nothing is written to the repository.
source "$(dirname "$0")/lib.sh"
SECS=${XL_FUZZ_SECONDS:-2}
CC_FUZZ=${FUZZ_CC:-clang}
FZ=$ROOT/tests/fuzz
targets=$(cd "$FZ" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')

skip_all() {
  for t in $targets; do echo "ok - fuzz_$t # SKIP $1"; done
  exit 0
}
command -v "$CC_FUZZ" >/dev/null 2>&1 || skip_all "$CC_FUZZ not found (make deps installs clang)"
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n > 1 && d[0] == 1; }\n' > "$TMP/probe.c"
"$CC_FUZZ" -fsanitize=fuzzer,address,undefined "$TMP/probe.c" -o "$TMP/probe" > "$TMP/probe.log" 2>&1 ||
  skip_all "$CC_FUZZ cannot link libFuzzer with ASan/UBSan (make deps installs libclang-rt-dev)"

# A make started from a recipe (make test, make check) must not inherit its variables.
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$ROOT" -s -j2 FUZZ_CC="$CC_FUZZ" fuzz-build > "$TMP/build.log" 2>&1; then
  not_ok "make fuzz-build: $(grep -m3 -E 'error|Error' "$TMP/build.log" | tr '\n' ' ')"
  finish
  exit
fi
ok "make fuzz-build builds $(echo $targets | wc -w) harnesses"

# why LOG: the first line that says what a harness found
why() {
  grep -m1 -oE 'fuzz invariant broken at [^ ]+ .*' "$1" || grep -m1 -oE '[^ ]+: runtime error: .*' "$1" ||
    grep -m1 -oE 'ERROR: libFuzzer: .*' "$1" || grep -m1 -E '^SUMMARY: ' "$1" || tail -1 "$1"
}

cd "$TMP"
for t in $targets; do
  bin=$ROOT/build-fuzz/fuzz_$t
  mkdir -p "corpus/$t" "art/$t"
  [ -d "$FZ/corpus/$t" ] && cp "$FZ/corpus/$t"/* "corpus/$t"/
  dict=()
  [ -f "$FZ/$t.dict" ] && dict=(-dict="$FZ/$t.dict")
  set +e
  "$bin" -seed=1 -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="art/$t/" "${dict[@]}" "corpus/$t" > "$t.log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$t.log" | awk '{print $2}')
  if [ "$rc" -eq 0 ] && [ "${execs:-0}" -gt 0 ]; then
    ok "fuzz_$t: ${SECS}s, $execs executions, nothing found"
  else
    not_ok "fuzz_$t (exit $rc, ${execs:-0} executions): $(why "$t.log")"
  fi
  if [ -d "$FZ/regress/$t" ]; then
    n=$(find "$FZ/regress/$t" -type f | wc -l)
    set +e
    "$bin" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="art/$t/" "$FZ/regress/$t"/* > "$t.regress.log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then ok "fuzz_$t: $n regression inputs pass"; else not_ok "fuzz_$t regression inputs: $(why "$t.regress.log")"; fi
  fi
done
finish
