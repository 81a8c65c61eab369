#!/usr/bin/env bash
# t_top_commands: xl-top for scripts and pipes (issue 17): --stdin-commands (kill PID stops
# a watched run cleanly, interval SEC, quit; one JSON answer per line), the --json-stream
# history keeps its 30 points, tok_s is null while unknown, `xl-top | head` is quiet, and
# status files of processes that are gone do not pile up.
source "$(dirname "$0")/lib.sh"
export XL_STATUS_DIR="$TMP/status"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT
eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', wanted '$3'"; fi; }

"$BIN/xl-decode" "The quick brown fox" -n 1000000 --ignore-eos --stats-log "$TMP/stats.csv" > "$TMP/dec.out" 2> "$TMP/dec.err" &
DPID=$!
pids+=("$DPID")
for _ in $(seq 100); do [ -f "$XL_STATUS_DIR/$DPID.json" ] && [ "$(wc -l < "$TMP/stats.csv" 2>/dev/null || echo 0)" -gt 40 ] && break; sleep 0.1; done
sleep 0.6

# ---- history: 30 points in every line, not 30 then 2, 3, 4
expect_status "--json-stream --poll 0.3 --count 4" 0 "$BIN/xl-top" --json-stream --poll 0.3 --count 4
eq "every line has 30 history points" "$(jq -c "[.processes[] | select(.pid == $DPID) | .history | length] | .[0]" "$TMP/out" | tr '\n' ' ')" "30 30 30 30 "

# ---- a closed pipe: quiet, status 0
set +e
"$BIN/xl-top" --json-stream --poll 0.1 --count 100 2> "$TMP/pipe.err" | head -1 > /dev/null
st=${PIPESTATUS[0]}
set -e
eq "xl-top --json-stream | head -1: exit 0" "$st" "0"
check "no 'Broken pipe' on stderr" test ! -s "$TMP/pipe.err"

# ---- tok_s null while unknown: a process seen only in /proc, with no stats log
"$BIN/xl-decode" "x" -n 1000000 --ignore-eos --no-status-file > /dev/null 2>&1 &
QPID=$!
pids+=("$QPID")
sleep 0.5
expect_status "--json with a process known only from /proc" 0 "$BIN/xl-top" --json
eq "its tok_s, tok_s_decode and avg rates are null" \
  "$(jq -c "[.processes[] | select(.pid == $QPID) | [.tok_s, .tok_s_decode, .avg_tok_s_decode, .source]][0]" "$TMP/out")" '[null,null,null,"proc"]'
eq "the decode with a status file has a number" "$(jq "[.processes[] | select(.pid == $DPID) | .tok_s > 0][0]" "$TMP/out")" "true"
kill "$QPID"; wait "$QPID" 2>/dev/null || true

# ---- --stdin-commands
{
  sleep 0.5
  echo "interval 0.2"
  echo "kill 1"
  echo "frobnicate"
  echo "kill $DPID"
  sleep 1.5
  echo "quit"
} | timeout 20 "$BIN/xl-top" --stdin-commands --poll 5 > "$TMP/cmd.out" 2> "$TMP/cmd.err"
st=$?
eq "xl-top --stdin-commands exits 0 on quit" "$st" "0"
grep '"command"' "$TMP/cmd.out" > "$TMP/replies" || true
eq "one answer per command line" "$(jq -r -c '[.command, .ok] | @csv' "$TMP/replies" | tr '\n' ' ')" \
  '"interval",true "kill",false "frobnicate",false "kill",true "quit",true '
eq "interval answer carries the value" "$(jq -r 'select(.command == "interval") | .interval' "$TMP/replies")" "0.2"
check "kill of an unwatched pid says so" grep -q 'pid 1 is not a watched xltools process' "$TMP/replies"
eq "kill answer names the pid and SIGTERM" "$(jq -r "select(.command == \"kill\" and .ok) | \"\(.pid) \(.signal)\"" "$TMP/replies")" "$DPID SIGTERM"
n=$(grep -c '"processes"' "$TMP/cmd.out" || true)
check "interval 0.2 took effect: several documents in ~2 s, not one per 5 s ($n)" test "$n" -ge 4
set +e; wait "$DPID"; rc=$?; set -e
eq "the killed decode stopped cleanly: exit 143" "$rc" "143"
check "it says why" grep -q "interrupted: terminated (SIGTERM)" "$TMP/dec.err"
check "its stats log ends with a complete row" sh -c 'tail -c 1 "$1" | od -c | grep -q "\\\\n"' _ "$TMP/stats.csv"
check "its status file is gone" test ! -e "$XL_STATUS_DIR/$DPID.json"
expect_status "--stdin-commands with --once is a usage error" 2 "$BIN/xl-top" --once --stdin-commands
echo "quit" | timeout 10 "$BIN/xl-top" --stdin-commands > /dev/null; eq "a bare quit exits 0" "$?" "0"
timeout 10 "$BIN/xl-top" --stdin-commands < /dev/null > /dev/null; eq "the end of stdin ends xl-top (exit 0)" "$?" "0"

# ---- status files of processes that are gone are removed
mkdir -p "$XL_STATUS_DIR"
"$BIN/xl-decode" "x" -n 1000000 --ignore-eos > /dev/null 2>&1 &
KPID=$!
for _ in $(seq 50); do [ -f "$XL_STATUS_DIR/$KPID.json" ] && break; sleep 0.1; done
kill -KILL "$KPID"; wait "$KPID" 2>/dev/null || true
check "a SIGKILLed tool leaves its status file behind" test -f "$XL_STATUS_DIR/$KPID.json"
expect_status "xl-top --json" 0 "$BIN/xl-top" --json
check "xl-top removed the dead process's status file" test ! -e "$XL_STATUS_DIR/$KPID.json"
check "and does not list it" sh -c '! jq -e --argjson p "$1" ".processes[] | select(.pid == \$p)" "$2" > /dev/null' _ "$KPID" "$TMP/out"
expect_status "a tool dying on an error after start-up (unwritable --state-out)" 1 \
  "$BIN/xl-decode" "x" -n 3 --state-out "$TMP/no/such/dir/s.st"
check "removes its own status file on the way out" test -z "$(ls "$XL_STATUS_DIR")"
finish
