#!/usr/bin/env bash
# t_runtools_flags: numbers on the run tools' command lines (issue 16, "Limits"): a value
# outside a flag's range, negative, overflowing or junk is a usage error (exit 2) whose
# message names the flag and the allowed range, before any work; never a runtime error
# (xl-decode -n 99999999999 used to try to allocate 400 GB and exit 1). -n is an upper
# bound: memory for the ids grows with the tokens generated, not with -n.
source "$(dirname "$0")/lib.sh"
export XL_STATUS_DIR="$TMP/status"
D="$BIN/xl-decode" P="$BIN/xl-prefill"

usage() {   # NAME PATTERN COMMAND...: exit 2 and the message matches PATTERN
  local n=$1 pat=$2; shift 2
  expect_status "$n: exit 2" 2 "$@"
  stderr_has "$n: names the flag and the range" "$pat"
}
usage "-n 99999999999" "--new: '99999999999' is not a whole number in \[0, 1073741824\]" "$D" x -n 99999999999
usage "-n -1" "--new: '-1' is not a whole number in \[0, " "$D" x -n -1
usage "-n 5x" "--new: '5x'" "$D" x -n 5x
usage "-n ' 5' (blank)" "--new: ' 5'" "$D" x -n ' 5'
usage "-n +5" "--new: '\+5'" "$D" x -n +5
usage "-n 0x10" "--new: '0x10'" "$D" x -n 0x10
usage "-n 1e3 (not whole)" "--new: '1e3'" "$D" x -n 1e3
usage "-n=99999999999999999999 (long overflow)" "--new: '99999999999999999999'" "$D" x -n=99999999999999999999
usage "--temperature nan" "--temperature: 'nan' is not a number in \[1e-06, 1e\+06\]" "$D" x --temperature nan
usage "--temperature 0x1p-3 (hex)" "--temperature: '0x1p-3'" "$D" x --temperature 0x1p-3
usage "--temperature 1e400" "--temperature: '1e400'" "$D" x --temperature 1e400
usage "--top-k 99999999999" "--top-k: '99999999999' is not a whole number in \[0, 1073741824\]" "$D" x --temperature 1 --top-k 99999999999
usage "--top-p 1.5" "--top-p: '1.5' is not a number in \[1e-06, 1\]" "$D" x --temperature 1 --top-p 1.5
usage "--seed -1" "--seed: '-1' is not a whole number in \[0, 9223372036854775807\]" "$D" x --temperature 1 --seed -1
usage "--workers 99999999999" "--workers: '99999999999' is not an integer in \[1, 1024\]" "$D" x --workers 99999999999
usage "--workers ' 2'" "--workers: ' 2'" "$P" x --workers ' 2'
usage "--chunk-size -5" "--chunk-size: '-5' is not an integer in \[1, 65536\]" "$P" x --chunk-size -5
usage "XL_HEADS_PER_BAND overflow" "XL_HEADS_PER_BAND: '99999999999999999999'" env XL_HEADS_PER_BAND=99999999999999999999 "$P" x
usage "--stats-every 0" "--stats-every: '0' is not a whole number in \[1, 1000000000\]" "$D" x --stats-every 0
usage "--mem-every 5" "--mem-every: '5' is not a whole number in \[10, 3600000\]" "$P" x --mem-every 5
usage "--mem-hard-mb -1" "--mem-hard-mb: '-1' is not a number in \[0, 1e\+09\]" "$D" x --mem-hard-mb -1
usage "--mem-soft-pct 101" "--mem-soft-pct: '101' is not a number in \[0, 100\]" "$D" x --mem-soft-pct 101
usage "XL_MEM_HARD_MB junk" "XL_MEM_HARD_MB: 'x'" env XL_MEM_HARD_MB=x "$D" x
usage "--ids with junk" "--ids: token 2 \('x'\) is not an id in \[0, 4096\)" "$P" --ids 5,x
usage "--ids past the vocabulary" "--ids: token 1 \('99999999999999999999'\) is not an id" "$P" --ids 99999999999999999999
expect_status "--ids-file with a bad id: a data error (exit 1)" 1 sh -c 'echo 5,-1 > "$1/ids" && "$2" --ids-file "$1/ids"' _ "$TMP" "$P"
stderr_has "--ids-file: names the file" "$TMP/ids: token 2"
usage "xl-judge ollama --workers 65" "--workers: '65' is not a whole number in \[1, 64\]" "$BIN/xl-judge" ollama "$TMP" --workers 65
usage "xl-judge ollama --timeout 1e9" "--timeout: '1e9' is not a number in \[0.001, 86400\]" "$BIN/xl-judge" ollama "$TMP" --timeout 1e9
usage "xl-judge internal --workers 0" "--workers: '0' is not an integer in \[1, 1024\]" "$BIN/xl-judge" internal "$TMP" --workers 0
usage "xl-top --count -1" "--count: '-1' is not a whole number in \[0, 100000000\]" "$BIN/xl-top" --count -1
usage "xl-top --poll inf" "--poll: 'inf' is not a number in \[0.1, 3600\]" "$BIN/xl-top" --poll inf
usage "xl-init --blocks 99999999999" "--blocks: '99999999999' is not a whole number in \[1, 4096\]" "$BIN/xl-init" -o "$TMP/i" --blocks 99999999999
usage "xl-init --seed -1" "--seed: '-1' is not a whole number in \[0, " "$BIN/xl-init" -o "$TMP/i" --seed -1
check "xl-init wrote nothing on a usage error" test ! -e "$TMP/i"

# in range: -n 1073741824 is only an upper bound: memory for the ids follows the tokens made,
# so it runs under an address-space limit far below 4 GB (it used to allocate 4 GB first)
if [ "${XL_SANITIZED:-0}" = 1 ] || [ "${XL_VALGRIND:-0}" = 1 ]; then
  ok "-n 1073741824 under ulimit -v # SKIP sanitizers and valgrind reserve address space of their own"
else
  (ulimit -v 1500000; exec "$D" "The Python interpreter" -n 1073741824 --ignore-eos --format ndjson) \
    > "$TMP/big.json" 2> "$TMP/big.err" &
  pid=$!
  sleep 1.5
  kill -TERM "$pid" 2> /dev/null || true
  set +e; wait "$pid"; rc=$?; set -e
  check "-n 1073741824 under ulimit -v 1500000: runs until SIGTERM (exit $rc, wanted 143): $(head -c 200 "$TMP/big.err")" test "$rc" = 143
  check "the record holds the tokens made before the stop" \
    test "$(jq -r 'select(.new_tokens > 0 and (.ids | length) == .new_tokens) | .stop' "$TMP/big.json")" = signal
fi
expect_status "-n 5000 --ignore-eos: every token kept" 0 "$D" "The Python" -n 5000 --ignore-eos --format ndjson
check "5000 ids in the record" test "$(jq -r '"\(.new_tokens) \(.ids | length)"' "$TMP/out")" = "5000 5000"
finish
