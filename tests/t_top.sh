# t_top: xl-top against a running decode: the machine modes (--once, --json, --json-stream)
# and the curses view driven through tmux (help overlay, pause, interval, kill dialog
# cancelled then confirmed, quit). The decode is the real bin/xl-decode when it is built,
# otherwise the stand-in tool of test_telemetry (--fake-tool), which calls the same
# telemetry API.
source "$(dirname "$0")/lib.sh"

export XL_STATUS_DIR="$TMP/status"
TESTBIN=${TESTBIN:-$ROOT/build/tests}
SOCK="xltop-test-$$"
pids=()
cleanup() {
  tmux -L "$SOCK" kill-server 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

check "xl-top --help exits 0 and documents --json-stream" sh -c '"$1" --help | grep -q -- --json-stream' _ "$BIN/xl-top"
expect_status "unknown flag is a usage error" 2 "$BIN/xl-top" --bogus
expect_status "--poll junk is a usage error" 2 "$BIN/xl-top" --json-stream --poll 0x
expect_status "--json with nothing running" 0 "$BIN/xl-top" --json
check "--json with nothing running lists no process of ours" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert isinstance(d["time"], float) and all(p["tool"] != "xl-fake" for p in d["processes"])' "$TMP/out"

# A long decode in the background.
if [ -x "$BIN/xl-decode" ] && "$BIN/xl-decode" --help 2>/dev/null | grep -q -- --stats-log; then
  TOOL=xl-decode
  "$BIN/xl-decode" "The quick brown fox" -n 1000000 --greedy --stats-log "$TMP/stats.csv" >/dev/null 2>"$TMP/dec.err" &
else
  TOOL=xl-fake
  "$TESTBIN/test_telemetry" --fake-tool 60 --stats-log "$TMP/stats.csv" 2>"$TMP/dec.err" &
fi
DPID=$!
pids+=("$DPID")
echo "# decoding with $TOOL, pid $DPID"
for _ in $(seq 50); do [ -f "$XL_STATUS_DIR/$DPID.json" ] && break; sleep 0.1; done
sleep 0.7   # a rate window or two

# jq filter: our decode's record from one document
sel=".processes[] | select(.pid == $DPID)"
expect_status "--json while decoding" 0 "$BIN/xl-top" --json
check "--json reports pid, tool $TOOL, phase decode, tok/s > 0, rss > 0" \
  sh -c 'jq -e "$1" "$2" >/dev/null' _ "[$sel] | length == 1 and .[0].tool == \"$TOOL\" and .[0].phase == \"decode\" and .[0].tok_s > 0 and .[0].tokens_decode > 0 and .[0].rss_bytes > 0 and .[0].source == \"status\"" "$TMP/out"
check "--json history comes from the stats log" \
  sh -c 'jq -e "$1" "$2" >/dev/null' _ "[$sel][0] | .history_source == \"stats_log\" and (.history | length) > 0 and (.spark | length) == (.history | length)" "$TMP/out"

expect_status "--json-stream --poll 0.5 --count 3" 0 "$BIN/xl-top" --json-stream --poll 0.5 --count 3
check "three NDJSON lines" test "$(wc -l < "$TMP/out")" -eq 3
check "every line reports the decode with tok/s > 0" \
  sh -c "jq -c '[$sel | .tok_s > 0] | length == 1 and .[0]' \"\$1\" | grep -c true | grep -qx 3" _ "$TMP/out"
check "lines ~0.5 s apart, tokens growing" python3 - "$TMP/out" "$DPID" <<'EOF'
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
pid = int(sys.argv[2])
t = [d["time"] for d in docs]
tok = [[p for p in d["processes"] if p["pid"] == pid][0]["tokens_decode"] for d in docs]
assert all(0.4 <= b - a <= 1.0 for a, b in zip(t, t[1:])), t
assert tok[0] < tok[1] < tok[2], tok
EOF

expect_status "--once table" 0 "$BIN/xl-top" --once
check "--once table has the header and the decode row" \
  sh -c 'grep -q "PID.*TOOL.*PHASE.*TOK/S.*RSS_MB" "$1" && grep -Eq "^ *$2 +$3 +decode +[0-9]+\.[0-9] " "$1"' _ "$TMP/out" "$DPID" "$TOOL"
expect_status "--no-curses --count 2 --ascii" 0 "$BIN/xl-top" --no-curses --poll 0.3 --count 2 --ascii
check "--no-curses printed two tables" test "$(grep -c '^ *PID  TOOL' "$TMP/out")" -eq 2

# The curses view in a real (tmux) terminal.
screen() { tmux -L "$SOCK" capture-pane -p -t top; }
wait_screen() {   # wait_screen PATTERN: up to 3 s for PATTERN (grep -E) on screen
  for _ in $(seq 30); do screen | grep -qE -- "$1" && return 0; sleep 0.1; done
  screen | sed 's/^/# /'
  return 1
}
tmux -L "$SOCK" new-session -d -s top -x 120 -y 30 \
  "env XL_STATUS_DIR='$XL_STATUS_DIR' LC_ALL=C.UTF-8 TERM=xterm-256color '$BIN/xl-top' --poll 0.5; sleep 5"
check "curses view shows the decode" wait_screen "^ *$DPID +$TOOL +decode"
check "curses view draws a Unicode sparkline" wait_screen "$DPID .*[▁▂▃▄▅▆▇█]"
tmux -L "$SOCK" send-keys -t top h
check "h opens the help overlay" wait_screen "xl-top keys"
tmux -L "$SOCK" send-keys -t top x
check "any key closes the help" sh -c '! (sleep 0.4; tmux -L "$1" capture-pane -p -t top) | grep -q "xl-top keys"' _ "$SOCK"
tmux -L "$SOCK" send-keys -t top p
check "p pauses" wait_screen "PAUSED"
tmux -L "$SOCK" send-keys -t top p
check "p again resumes" sh -c '! (sleep 0.4; tmux -L "$1" capture-pane -p -t top) | grep -q PAUSED' _ "$SOCK"
tmux -L "$SOCK" send-keys -t top s
check "s changes the interval (0.5 s -> 1 s)" wait_screen "every 1\.0 s"
tmux -L "$SOCK" send-keys -t top K
check "K asks for a pid" wait_screen "Send SIGTERM to pid"
tmux -L "$SOCK" send-keys -t top "$DPID" Enter
check "then asks y/n naming the tool" wait_screen "Send SIGTERM to $DPID \($TOOL\)\? \[y/n\]"
tmux -L "$SOCK" send-keys -t top n
check "n cancels" wait_screen "kill cancelled"
check "the decode still runs after the cancel" kill -0 "$DPID"
tmux -L "$SOCK" send-keys -t top K
wait_screen "Send SIGTERM to pid" >/dev/null || true
tmux -L "$SOCK" send-keys -t top "$DPID" Enter
wait_screen "\[y/n\]" >/dev/null || true
tmux -L "$SOCK" send-keys -t top y
check "y sends SIGTERM" wait_screen "sent SIGTERM to $DPID"
set +e; wait "$DPID"; st=$?; set -e
check "the decode exits 143 after SIGTERM (got $st)" test "$st" -eq 143
wait_gone() {   # wait_gone PATTERN: up to 4 s for PATTERN to leave the screen
  for _ in $(seq 40); do screen | grep -qE -- "$1" || return 0; sleep 0.1; done
  return 1
}
check "the vanished process leaves the view" wait_gone "^ *$DPID "
tmux -L "$SOCK" send-keys -t top q
# After xl-top the pane runs "sleep 5": the pane's command tells whether q quit.
check "q quits xl-top" sh -c 'for i in $(seq 30); do [ "$(tmux -L "$1" display -p -t top "#{pane_current_command}")" = sleep ] && exit 0; sleep 0.1; done; exit 1' _ "$SOCK"
finish
