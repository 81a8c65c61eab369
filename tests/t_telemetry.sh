# t_telemetry: the observability flags end to end through the real run tools: the memory
# watchdog's hard limit (exit 3, no partial output), SIGTERM / SIGINT in the middle of a
# decode (exit 143 / 130 with complete, valid logs and outputs), SIGUSR1 status line, the
# stats / memory / metrics files, usage errors and the help text.
source "$(dirname "$0")/lib.sh"

export XL_STATUS_DIR="$TMP/status"
DEC="$BIN/xl-decode"
PROMPT="The history of the printing press"
bg=()
trap 'for p in "${bg[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT

check "xl-decode --help lists the telemetry flags" \
  sh -c '"$1" --help | grep -q -- --mem-hard-mb && "$1" --help | grep -q -- --metrics-file' _ "$DEC"
expect_status "bad --mem-action is a usage error" 2 "$DEC" "$PROMPT" -n 4 --mem-action panic
expect_status "bad --stats-every is a usage error" 2 "$DEC" "$PROMPT" -n 4 --stats-every 0
XL_MEM_HARD_PCT=lots expect_status "bad XL_MEM_HARD_PCT is a usage error" 2 "$DEC" "$PROMPT" -n 4

# A short complete run: the stats log has one decode row per token and consistent sums.
expect_status "short decode with all logs" 0 "$DEC" "$PROMPT" -n 40 --greedy \
  --stats-log "$TMP/s0.csv" --mem-log "$TMP/m0.csv" --metrics-file "$TMP/h0.prom"
# validate_stats FILE [NTOKENS]: header, 6 columns, sums and rates consistent, all rows complete
validate_stats() {
  python3 - "$@" <<'EOF'
import csv, sys
path = sys.argv[1]
raw = open(path).read()
assert raw.endswith("\n"), "last row incomplete"
rows = list(csv.DictReader(raw.splitlines()))
assert rows, "no rows"
assert list(rows[0].keys())[:6] == ["step", "dt_ms", "cum_ms", "inst_tok_s", "avg_tok_s", "phase"]
dec = [r for r in rows if r["phase"] == "decode"]
assert dec, "no decode rows"
cum = 0.0
prev = 0
for r in dec:
    step, dt, c, inst, avg = int(r["step"]), float(r["dt_ms"]), float(r["cum_ms"]), float(r["inst_tok_s"]), float(r["avg_tok_s"])
    assert step == prev + 1, (prev, step)
    cum += dt
    assert abs(cum - c) <= 1e-6 * c + 1e-5, (cum, c)
    assert dt <= 0 or abs(inst - 1000.0 / dt) <= 1e-5 * inst + 1e-3, (inst, dt)
    assert abs(avg - step * 1000.0 / c) <= 1e-5 * avg + 1e-3, (avg, step, c)
    prev = step
if len(sys.argv) > 2:
    assert prev == int(sys.argv[2]), (prev, sys.argv[2])
print(prev)
EOF
}
check "stats log of the short run is consistent (40 decode rows)" validate_stats "$TMP/s0.csv" 40
check "memory log has rows with RSS and MemTotal" python3 - "$TMP/m0.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert rows
for r in rows:
    assert float(r["ts"]) > 1e9 and float(r["rss_mb"]) > 0 and float(r["total_mb"]) >= float(r["avail_mb"]) > 0, r
    assert float(r["model_mapped_mb"]) >= 0 and r["phase"], r
EOF
# validate_prom FILE TOOL DECODE_TOKENS
validate_prom() {
  python3 - "$@" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
names = set()
vals = {}
for line in text.splitlines():
    if line.startswith("#"):
        m = re.match(r"# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$", line)
        assert m, line
        names.add((m.group(1), m.group(2)))
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$', line)
    assert m, line
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
    assert labels.get("tool") == sys.argv[2] and labels.get("pid", "").isdigit(), labels
    assert ("HELP", m.group(1)) in names and ("TYPE", m.group(1)) in names, m.group(1)
    vals[m.group(1)] = float(m.group(3))
for k in ["xlstm_tok_s_prefill", "xlstm_tok_s_decode", "xlstm_rss_bytes", "xlstm_prefill_tokens_total", "xlstm_decode_tokens_total"]:
    assert k in vals, k
assert vals["xlstm_decode_tokens_total"] == int(sys.argv[3]), (vals["xlstm_decode_tokens_total"], sys.argv[3])
assert vals["xlstm_tok_s_decode"] > 0 and vals["xlstm_rss_bytes"] > 0 and vals["xlstm_prefill_tokens_total"] > 0
EOF
}
check "metrics file parses, counters match the run" validate_prom "$TMP/h0.prom" xl-decode 40
check "no status file left behind" sh -c '! ls "$1"/*.json >/dev/null 2>&1' _ "$XL_STATUS_DIR"

# The hard memory limit: exit 3 with the reason, and no (partial) output file.
expect_status "--mem-hard-mb 1 stops the decode with exit 3" 3 "$DEC" "$PROMPT" -n 1000000 --greedy \
  --mem-hard-mb 1 --out "$TMP/hard.txt"
stderr_has "the reason is printed" "memory hard limit: RSS [0-9]+ MB > 1 MB"
check "no output file after the hard limit" sh -c '! ls "$1"/hard.txt* >/dev/null 2>&1' _ "$TMP"
XL_MEM_HARD_MB=1 expect_status "XL_MEM_HARD_MB=1 does the same" 3 "$DEC" "$PROMPT" -n 1000000 --greedy
if [ -x "$BIN/xl-prefill" ]; then
  expect_status "xl-prefill with --mem-hard-mb 1 exits 3" 3 "$BIN/xl-prefill" --prompt-file "$ROOT/prompts/pydocs.txt" --mem-every 10 --mem-hard-mb 1 -o "$TMP/state.st"
  check "no state file after the hard limit" sh -c '! ls "$1"/state.st* >/dev/null 2>&1' _ "$TMP"
fi

# start_decode TAG: a long decode in the background with every log; sets DPID.
start_decode() {
  "$DEC" "$PROMPT" -n 1000000 --greedy --stats-log "$TMP/$1.csv" --mem-log "$TMP/$1.mem.csv" \
    --metrics-file "$TMP/$1.prom" --out "$TMP/$1.txt" >/dev/null 2>"$TMP/$1.err" &
  DPID=$!
  bg+=("$DPID")
  for _ in $(seq 100); do
    [ "$(wc -l 2>/dev/null < "$TMP/$1.csv" || echo 0)" -gt 50 ] && return 0
    sleep 0.05
  done
  return 1
}

check "a long decode starts writing its stats log" start_decode term
sleep 0.3
kill -USR1 "$DPID"
sleep 0.4
check "SIGUSR1 prints a status line" grep -qE "status: phase decode, .*decode [0-9]+ tok \([0-9.]+ tok/s\), RSS [0-9.]+ MB" "$TMP/term.err"
kill -TERM "$DPID"
set +e; wait "$DPID"; st=$?; set -e
check "SIGTERM mid-decode exits 143 (got $st)" test "$st" -eq 143
n=$(validate_stats "$TMP/term.csv" 2>/dev/null || echo 0)
check "stats log after SIGTERM is complete and consistent ($n tokens)" test "$n" -gt 50
check "metrics file after SIGTERM counts the same $n tokens" validate_prom "$TMP/term.prom" xl-decode "$n"
check "output file after SIGTERM is complete (non-empty, no temp left)" \
  sh -c 'test -s "$1/term.txt" && ! ls "$1"/term.txt.tmp* >/dev/null 2>&1' _ "$TMP"
check "memory log after SIGTERM ends with a complete row" python3 -c '
import sys; t = open(sys.argv[1]).read(); assert t.endswith("\n") and t.splitlines()[-1].count(",") == 7' "$TMP/term.mem.csv"
check "status file removed after SIGTERM" test ! -e "$XL_STATUS_DIR/$DPID.json"

check "a second long decode starts" start_decode int
kill -INT "$DPID"
set +e; wait "$DPID"; st=$?; set -e
check "SIGINT mid-decode exits 130 (got $st)" test "$st" -eq 130
n=$(validate_stats "$TMP/int.csv" 2>/dev/null || echo 0)
check "stats log after SIGINT is consistent ($n tokens)" test "$n" -gt 50
finish
