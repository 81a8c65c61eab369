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
# start_mock_judge [ARGS...]: tests/mock_judge_server.py on a free port, logging each request
# to $TMP/req.log (extra ARGS, e.g. --slow 0.8, go to the server); sets MPID and API
# (http://127.0.0.1:PORT). The server is killed on exit; it also ends by itself after 120 s.
start_mock_judge() {
  python3 "$ROOT/tests/mock_judge_server.py" --port-file "$TMP/port" --log "$TMP/req.log" --time-limit 120 "$@" \
    > /dev/null 2> "$TMP/mock.err" &
  MPID=$!
  trap 'kill $MPID 2>/dev/null || true; wait $MPID 2>/dev/null || true; rm -rf "$TMP"' EXIT
  for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
  API="http://127.0.0.1:$(cat "$TMP/port")"
}
