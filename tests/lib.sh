# Shared prelude of the shell tests: strict mode, C locale, a temp dir removed on exit,
# and TAP-style assertions counted by tests/run.sh.
set -eu
export LC_ALL=C
: "${BIN:?run through tests/run.sh (BIN unset)}"
TD=${XL_TESTDATA:-$(cd "$(dirname "$0")" && pwd)/golden}
ROOT=${XL_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
nfail=0
ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; nfail=$((nfail + 1)); }
# check NAME COMMAND...: passes when the command exits 0
check()  { local n=$1; shift; if "$@"; then ok "$n"; else not_ok "$n"; fi; }
# expect_status NAME STATUS COMMAND...: passes when the command exits with STATUS
expect_status() {
  local n=$1 want=$2; shift 2
  set +e; "$@" >"$TMP/out" 2>"$TMP/err"; local got=$?; set -e
  if [ "$got" = "$want" ]; then ok "$n"; else not_ok "$n (exit $got, wanted $want): $(head -c 300 "$TMP/err")"; fi
}
# stderr_has NAME PATTERN: the last expect_status's stderr matches PATTERN (grep -E)
stderr_has() { if grep -qE -- "$2" "$TMP/err"; then ok "$1"; else not_ok "$1: stderr was: $(head -c 300 "$TMP/err")"; fi; }
finish() { [ "$nfail" -eq 0 ]; }
