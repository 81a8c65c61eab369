#!/usr/bin/env bash
# Runs the whole test suite: every C test binary in $TESTBIN and every tests/t_*.sh.
# Each test prints TAP-style lines ("ok - name" / "not ok - name"); this script counts
# them and ends with the one summary line CI reads: "N passed, N failed, N skipped".
# A test program that exits non-zero without printing "not ok" counts as one failure;
# one that exits 77 (the automake convention: "cannot run here", e.g. no GPU) counts as
# one skipped test, and so does each "ok - name # SKIP why" line.
# Environment: BIN (built tools), TESTBIN (built tests), XL_VALGRIND=1 (wrap everything
# in valgrind memcheck), TESTS="pattern" (run only tests whose name matches).
set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
: "${BIN:?BIN must name the built tools}" "${TESTBIN:?TESTBIN must name the built tests}"
export XL_TESTDATA="$here/golden" XL_ROOT="$(dirname "$here")"
# absolute: tests change directory (BIN=bin TESTBIN=build/tests works from the checkout)
BIN=$(cd "$BIN" && pwd) TESTBIN=$(cd "$TESTBIN" && pwd) || exit 2

wrapdir=
if [ "${XL_VALGRIND:-0}" = 1 ]; then
  # Shell tests call "$BIN/xl-*": point BIN at wrappers that run the real tool under valgrind.
  wrapdir=$(mktemp -d)
  for t in "$BIN"/xl-*; do
    printf '#!/bin/sh\nexec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "%s" "$@"\n' "$t" > "$wrapdir/$(basename "$t")"
    chmod +x "$wrapdir/$(basename "$t")"
  done
  export XL_REAL_BIN="$BIN"
  BIN=$wrapdir
fi
export BIN TESTBIN
trap '[ -n "$wrapdir" ] && rm -rf "$wrapdir"' EXIT

passed=0 failed=0 skipped=0
log=$(mktemp)
run_one() {   # name, command...
  local name=$1; shift
  case "$name" in *${TESTS:-}*) ;; *) return ;; esac
  local start=$SECONDS
  "$@" > "$log" 2>&1
  local rc=$?
  local p f k
  if [ "$rc" -eq 77 ]; then
    skipped=$((skipped + 1))
    echo "skip $name: $(tail -1 "$log")"
    return
  fi
  k=$(grep -c '^ok .*# SKIP' "$log")
  p=$(($(grep -c '^ok ' "$log") - k))
  f=$(grep -c '^not ok ' "$log")
  skipped=$((skipped + k))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited with status $rc" >> "$log"; fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$k" -eq 0 ]; then f=1; echo "not ok - $name ran no checks" >> "$log"; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -gt 0 ]; then
    echo "FAIL $name ($p passed, $f failed, $((SECONDS - start))s)"
    grep -v '^ok ' "$log" | tail -40 | sed 's/^/    /'
  else
    echo "pass $name ($p checks, $((SECONDS - start))s)"
  fi
}

for t in "$TESTBIN"/test_*; do
  [ -x "$t" ] || continue
  if [ "${XL_VALGRIND:-0}" = 1 ]; then
    run_one "$(basename "$t")" valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$t"
  else
    run_one "$(basename "$t")" "$t"
  fi
done
for t in "$here"/t_*.sh; do
  [ -f "$t" ] || continue
  run_one "$(basename "$t")" bash "$t"
done
rm -f "$log"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
