#!/usr/bin/env bash
# t_runtools_security: the run tools' files and limits (issue 16), one regression check each:
#  - a status directory (XL_STATUS_DIR, what telemetry writes and xl-top reads) that is a
#    symbolic link, or another user's directory, is refused: not followed, not chmodded,
#    no status file written through it, none removed through it by xl-top;
#  - a full disk (a 64 KB tmpfs) leaves no empty or cut-short output: the logs of the run
#    tools (--stats-log, --mem-log, --profile-log, --metrics-file) are removed and the tool
#    exits 1 naming the file; -o / --state-out / --logits are atomic; the judge's
#    ratings.jsonl + ratings.csv are replaced together or not at all; xl-init leaves no
#    half checkpoint and refuses one the filesystem cannot hold before writing;
#  - the memory watchdog keeps the hard limit: a run whose weights (and --logits buffer)
#    cannot fit under it stops before it starts (exit 3, peak RSS under the limit), and a run
#    that fits is not stopped (growth during a run: test_telemetry's growth test);
#  - under an address-space limit (ulimit -v) no tool spins or says "interrupted": OpenBLAS's
#    buffers and threads for the session's workers are set up before the run (exit 1 with a
#    message when they do not fit), xl-top and xl-init start no OpenBLAS threads at all;
#  - a FIFO at an output path nobody reads is an error after 5 s, not a hang: the run tools'
#    logs (they used to block for ever in fopen) and the judge's ratings; with a reader the
#    data go through it;
#  - the run tools' records stay JSON when a path is not UTF-8 (a model directory or -o name
#    with a byte like 0xff gets U+FFFD; Python's json module used to refuse the line);
#  - SIGINT / SIGTERM stop xl-judge internal within one output: the rows finished are
#    written whole, exit 130 / 143 (xl-judge ollama: tests/t_judge_security.sh);
source "$(dirname "$0")/lib.sh"
D="$BIN/xl-decode"

# ---- status directory planted as a link / owned by someone else
mkdir -p "$TMP/victim" && chmod 755 "$TMP/victim" && echo keep > "$TMP/victim/keep"
echo '{"pid":999999999}' > "$TMP/victim/999999999.json"   # looks like a stale status file
ln -s "$TMP/victim" "$TMP/link"
expect_status "status dir is a symlink: the run still works" 0 env XL_STATUS_DIR="$TMP/link" "$D" x -n 3 -q
stderr_has "it says why there is no status file" "no status file for xl-top: .*link is a symbolic link"
check "the link's target is not chmodded (still 755)" test "$(stat -c %a "$TMP/victim")" = 755
check "nothing written into the target" test "$(ls "$TMP/victim" | tr '\n' ' ')" = "999999999.json keep "
expect_status "xl-top with a symlinked status dir" 0 env XL_STATUS_DIR="$TMP/link" "$BIN/xl-top" --json
stderr_has "xl-top says it does not read it" "status files not read: .*symbolic link"
check "xl-top removed nothing through the link" test -e "$TMP/victim/999999999.json"
expect_status "status dir 'link/' (trailing slash) is refused too" 0 env XL_STATUS_DIR="$TMP/link/" "$D" x -n 3 -q
check "... and the target keeps its mode" test "$(stat -c %a "$TMP/victim")" = 755
if [ "$(id -u)" = 0 ] && id nobody > /dev/null 2>&1; then
  mkdir -p "$TMP/theirs" && chmod 777 "$TMP/theirs" && chown nobody "$TMP/theirs"
  expect_status "status dir owned by another user: the run still works" 0 env XL_STATUS_DIR="$TMP/theirs" "$D" x -n 3 -q
  stderr_has "it names the owner" "theirs belongs to uid [0-9]+, not to this user"
  check "another user's dir is not chmodded and gets no file" \
    sh -c '[ "$(stat -c %a "$1")" = 777 ] && [ -z "$(ls "$1")" ]' _ "$TMP/theirs"
else
  ok "status dir of another user # SKIP needs root and a 'nobody' user"
fi
expect_status "a missing status dir is created private (0700)" 0 env XL_STATUS_DIR="$TMP/new/st" "$D" x -n 3 -q
check "created 0700" test "$(stat -c %a "$TMP/new/st")" = 700
mkdir -p "$TMP/mine" && chmod 755 "$TMP/mine"
expect_status "an existing status dir of ours" 0 env XL_STATUS_DIR="$TMP/mine" "$D" x -n 3 -q
check "is made private (0700)" test "$(stat -c %a "$TMP/mine")" = 700

# a run directory for the judges: one output of the default model
R0=$TMP/run0 && mkdir -p "$R0" && printf 'The Python interpreter' > "$R0/prompt.txt"
"$D" "The Python interpreter" -n 24 --format ndjson | jq -c '{slug:"s1",trial:1,prompt_file:"prompt.txt",token_ids:.ids,text:.text}' > "$R0/outputs.jsonl"

# ---- records with a path that is not UTF-8
M=$(printf '%s/m\377' "$TMP") && cp -r "$ROOT/models/xlstm-tiny-pydocs" "$M"
valid_json() { python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]' "$1" 2> /dev/null; }
expect_status "xl-decode -m DIR-with-0xff --format ndjson" 0 "$D" -m "$M" x -n 2 --format ndjson
check "... the record is valid UTF-8 JSON" valid_json "$TMP/out"
expect_status "xl-prefill -m DIR-with-0xff -o STATE-with-0xfe" 0 "$BIN/xl-prefill" -m "$M" x -o "$(printf '%s/s\376' "$TMP")"
check "... the record is valid UTF-8 JSON" valid_json "$TMP/out"
expect_status "xl-init -o DIR-with-0xfd" 0 "$BIN/xl-init" -o "$(printf '%s/i\375' "$TMP")" --preset tiny -D 8 --heads 2 --blocks 1 --vocab 64 --tokenizer none -q
check "... the record is valid UTF-8 JSON" valid_json "$TMP/out"

# ---- a FIFO nobody reads: exit 1 after about 5 s, not a hang
mkfifo "$TMP/fifo"
for log in --stats-log --mem-log --profile-log; do
  expect_status "$log FIFO with no reader: exit 1, no hang" 1 timeout -s KILL 20 "$D" x -n 3 -q "$log" "$TMP/fifo"
  stderr_has "... naming it" "cannot open .* log $TMP/fifo: No such device or address"
done
(cat "$TMP/fifo" > "$TMP/fifo.out" &)
expect_status "--stats-log FIFO with a reader" 0 timeout -s KILL 20 "$D" x -n 3 -q --stats-log "$TMP/fifo"
sleep 0.5
check "... the rows go through it" test "$(head -1 "$TMP/fifo.out")" = "step,dt_ms,cum_ms,inst_tok_s,avg_tok_s,phase"
mkdir -p "$TMP/jf" && cp "$R0/outputs.jsonl" "$R0/prompt.txt" "$TMP/jf/" && mkfifo "$TMP/jf/ratings.jsonl"
expect_status "xl-judge internal, ratings.jsonl a FIFO with no reader: exit 1, no hang" 1 timeout -s KILL 30 "$BIN/xl-judge" internal "$TMP/jf"
stderr_has "... naming it" "cannot write $TMP/jf/ratings.jsonl: No such device or address"
check "... and no ratings.csv written without its pair" test ! -e "$TMP/jf/ratings.csv"
(cat "$TMP/jf/ratings.jsonl" > "$TMP/jf.out" &)
expect_status "... with a reader" 0 timeout -s KILL 30 "$BIN/xl-judge" internal "$TMP/jf"
sleep 0.5
check "... the row goes through it, the CSV beside it" sh -c 'jq -e ".slug == \"s1\"" "$1/jf.out" > /dev/null && test -s "$1/jf/ratings.csv"' _ "$TMP"

# ---- SIGINT / SIGTERM stop xl-judge internal within one output, finished rows written
mkdir -p "$TMP/jsig" && printf 'The Python interpreter' > "$TMP/jsig/prompt.txt"
python3 - "$TMP/jsig/outputs.jsonl" <<'PY'
import json, random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    for k in range(60):   # 60 outputs of 3000 tokens: many seconds of scoring
        f.write(json.dumps({"slug": "s%02d" % k, "trial": k, "prompt_file": "prompt.txt",
                            "token_ids": [random.randrange(4096) for _ in range(3000)], "text": "w " * 50}) + "\n")
PY
for sig in INT TERM; do
  want=$([ $sig = INT ] && echo 130 || echo 143)
  rm -f "$TMP/jsig/ratings."*
  "$BIN/xl-judge" internal "$TMP/jsig" > /dev/null 2> "$TMP/jsig.err" &
  jp=$!
  # a few rows first (a sanitizer build is several times slower)
  if [ "${XL_SANITIZED:-0}" = 1 ] || [ "${XL_VALGRIND:-0}" = 1 ]; then sleep 12; else sleep 1.5; fi
  t0=$(date +%s.%N)
  kill -$sig $jp
  set +e; wait $jp; rc=$?; set -e
  t1=$(date +%s.%N)
  n=$(grep -c . "$TMP/jsig/ratings.jsonl" 2> /dev/null || echo 0)
  check "xl-judge internal, SIG$sig: exit $want (got $rc)" test "$rc" = "$want"
  # a second; under sanitizers the exit's leak scan alone can take longer
  lim=1; { [ "${XL_SANITIZED:-0}" = 1 ] || [ "${XL_VALGRIND:-0}" = 1 ]; } && lim=10
  check "... within $lim s of the signal ($(echo "$t1 - $t0" | bc) s)" test "$(echo "$t1 - $t0 < $lim" | bc)" = 1
  check "... the rows finished are written ($n of 60), whole, in both files" \
    sh -c '[ "$1" -gt 0 ] && [ "$1" -lt 60 ] && [ "$(($(wc -l < "$2/ratings.csv") - 1))" = "$1" ] &&
           [ "$(jq -r "select(.scored_tokens == 3000 and .avg_logprob < 0) | .slug" "$2/ratings.jsonl" | wc -l)" = "$1" ]' _ "$n" "$TMP/jsig"
  check "... and it says so" grep -q "stopped (.*): $n of 60 output(s) rated, written to" "$TMP/jsig.err"
done

# ---- the memory watchdog stops before the hard limit is passed
"$D" "def main():" -n 50 --format ndjson > "$TMP/m0.json"
p1=$(jq -r .peak_rss_mb "$TMP/m0.json")   # RSS once every weight was read
# RSS when the run starts (weights not yet read): what a 1 MB limit reports, before the run
"$D" "def main():" -n 50 --mem-hard-mb 1 2> "$TMP/m0.err" > /dev/null || true
s0=$(sed -n 's/.*memory hard limit: RSS \([0-9.]*\) MB > 1 MB.*/\1/p' "$TMP/m0.err" | head -1)
lim=$(awk -v a="$s0" -v b="$p1" 'BEGIN { printf "%d", (a + b) / 2 + 0.5 }')
check "fixture: reading the weights adds memory ($s0 -> $p1 MB)" awk -v a="$s0" -v b="$p1" 'BEGIN { exit !(b - a > 2) }'
expect_status "--mem-hard-mb $lim (between start and peak): exit 3" 3 "$D" "def main():" -n 50 --format ndjson --mem-hard-mb "$lim" -o "$TMP/m1.txt"
stderr_has "... stopped before the run, saying why" "the model's weights will bring it to .* > $lim MB \(stopped before the run\)"
check "... RSS never passed the limit (peak $(jq -r .peak_rss_mb "$TMP/out") MB <= $lim)" \
  test "$(jq -r --argjson l "$lim" 'select(.peak_rss_mb <= $l and .stop == "memory" and .new_tokens == 0) | 1' "$TMP/out")" = 1
check "... no output file" test ! -e "$TMP/m1.txt"
lim2=$(awk -v b="$p1" 'BEGIN { printf "%d", b + 30 }')
expect_status "--mem-hard-mb $lim2 (above the peak): the run is not stopped" 0 "$D" "def main():" -n 50 --format ndjson --mem-hard-mb "$lim2"
python3 -c 'print(",".join(str(i * 7 % 4000) for i in range(20000)))' > "$TMP/ids20k"
lim3=$(awk -v b="$p1" 'BEGIN { printf "%d", b + 100 }')   # the logits of 20000 positions are 328 MB
expect_status "xl-prefill --logits past --mem-hard-mb $lim3: exit 3" 3 "$BIN/xl-prefill" --ids-file "$TMP/ids20k" --logits "$TMP/l.st" --mem-hard-mb "$lim3"
stderr_has "... before the run (the logits buffer counted)" "weights and the run's buffers will bring it to .* \(stopped before the run\)"
check "... RSS never passed the limit (peak $(jq -r .peak_rss_mb "$TMP/out") MB <= $lim3)" \
  test "$(jq -r --argjson l "$lim3" 'select(.peak_rss_mb <= $l) | 1' "$TMP/out")" = 1

# ---- ulimit -v: exit 0 or 1 with a message, never a spin (124/137) or a false "interrupted" (130)
if [ "${XL_SANITIZED:-0}" = 1 ] || [ "${XL_VALGRIND:-0}" = 1 ]; then
  ok "ulimit -v # SKIP sanitizers and valgrind reserve address space of their own"
else
  mkdir -p "$TMP/jr" && cp "$R0/outputs.jsonl" "$R0/prompt.txt" "$TMP/jr/"
  under() {   # LIMIT_KB NAME COMMAND...: one run under ulimit -v, killed after 20 s
    local lim=$1 name=$2; shift 2
    set +e
    (ulimit -v "$lim"; exec timeout -s KILL 20 "$@") > /dev/null 2> "$TMP/ul.err"
    local rc=$?
    set -e
    if [ "$rc" = 0 ] || { [ "$rc" = 1 ] && [ -s "$TMP/ul.err" ]; }; then return 0; fi
    not_ok "$name under ulimit -v $lim: exit $rc: $(head -c 200 "$TMP/ul.err")"
    return 1
  }
  for tool in "xl-judge internal" "xl-decode" "xl-prefill"; do
    bad=0
    for w in 1 2 4; do
      for lim in $(seq 250000 30000 700000); do
        case $tool in
          "xl-judge internal") under "$lim" "$tool --workers $w" "$BIN/xl-judge" internal "$TMP/jr" --workers "$w" || bad=1 ;;
          xl-decode) under "$lim" "$tool --workers $w" "$D" --prompt-file "$ROOT/prompts/pydocs.txt" -n 4 --workers "$w" || bad=1 ;;
          xl-prefill) under "$lim" "$tool --workers $w" "$BIN/xl-prefill" --prompt-file "$ROOT/prompts/pydocs.txt" --workers "$w" || bad=1 ;;
        esac
      done
    done
    [ $bad = 0 ] && ok "$tool under ulimit -v 250000..700000 kB, 1/2/4 workers: exit 0, or 1 with a message"
  done
  set +e; (ulimit -v 300000; exec timeout -s KILL 20 "$BIN/xl-judge" internal "$TMP/jr") > /dev/null 2> "$TMP/ul.err"; rc=$?; set -e
  check "xl-judge internal under ulimit -v 300000: exit 1 (got $rc)" test "$rc" = 1
  check "... with a message naming the limit" grep -q "address-space limit (ulimit -v 300000 kB)" "$TMP/ul.err"
  for lim in 100000 150000 200000; do
    bad=0
    under "$lim" xl-top "$BIN/xl-top" --once || bad=1
    rm -rf "$TMP/ck"; under "$lim" xl-init "$BIN/xl-init" -o "$TMP/ck" --preset tiny -q || bad=1
    [ $bad = 0 ] && ok "xl-top and xl-init under ulimit -v $lim: no OpenBLAS thread to spin"
  done
fi

# ---- full disk
if [ "$(id -u)" = 0 ] && mkdir -p "$TMP/full" && mount -t tmpfs -o size=64k tmpfs "$TMP/full" 2> /dev/null; then
  trap 'umount "$TMP/full" 2> /dev/null || true; rm -rf "$TMP"' EXIT
  F=$TMP/full
  # fill PAGES: the tmpfs keeps PAGES free 4 KB pages (everything else of it removed first)
  fill() {
    rm -rf "${F:?}"/*
    [ -n "${2:-}" ] && cp -r "$2" "$F/run"
    local avail; avail=$(df --output=avail -B4096 "$F" | tail -1)
    [ "$avail" -gt "$1" ] && dd if=/dev/zero of="$F/fill" bs=4096 count=$((avail - $1)) 2> /dev/null
    true
  }
  left() { ls -A "$F" | grep -v '^fill$' | grep -v '^run$' | tr '\n' ' '; }
  for log in "--stats-log stats.csv" "--mem-log mem.csv" "--profile-log prof.jsonl" "--metrics-file m.prom"; do
    set -- $log
    fill 0
    expect_status "full disk, $1: exit 1" 1 "$D" "def main():" -n 20 -q "$1" "$F/$2"
    stderr_has "full disk, $1: the message names the file" "$F/$2: cannot write the .*No space left on device"
    check "full disk, $1: no empty file left ($(left))" test -z "$(left)"
  done
  fill 1   # the header fits, the rows of 3000 tokens do not: cut short mid-run
  expect_status "disk full mid-run, --stats-log: exit 1" 1 "$D" "def main():" -n 3000 --ignore-eos -q --stats-log "$F/stats.csv"
  stderr_has "disk full mid-run: removed, named" "$F/stats.csv: cannot write the stats log: No space left on device; removed"
  check "disk full mid-run: no cut-short log left ($(left))" test -z "$(left)"
  fill 0
  expect_status "full disk, xl-prefill --stats-log: exit 1" 1 "$BIN/xl-prefill" "def main():" --stats-log "$F/s.csv"
  check "... nothing left ($(left))" test -z "$(left)"
  for out in "-o out.txt" "--state-out s.state"; do
    set -- $out
    fill 0
    expect_status "full disk, xl-decode $1: exit 1" 1 "$D" "def main():" -n 5 -q "$1" "$F/$2"
    stderr_has "full disk, xl-decode $1: names the file" "$F/$2"
    check "full disk, xl-decode $1: nothing left, no temporary file ($(left))" test -z "$(left)"
  done
  fill 0
  expect_status "full disk, xl-prefill --logits: exit 1" 1 "$BIN/xl-prefill" "def main():" --logits "$F/l.st" -o "$F/p.state"
  check "full disk, xl-prefill: nothing left ($(left))" test -z "$(left)"
  expect_status "stdout on /dev/full: exit 1" 1 sh -c '"$1" "def main():" -n 5 > /dev/full' _ "$D"
  stderr_has "stdout on /dev/full: says so" "write error on standard output"
  # the judge's pair of files: a run directory on the small disk
  for pages in 0 1; do   # 1: ratings.jsonl fits, ratings.csv does not
    fill $pages "$R0"
    expect_status "full disk ($pages pages free), xl-judge internal: exit 1" 1 "$BIN/xl-judge" internal "$F/run"
    stderr_has "... names the file" "cannot write $F/run/ratings\.(jsonl|csv): No space left on device"
    check "... neither ratings file nor a temporary one ($(ls "$F/run" | tr '\n' ' '))" \
      test "$(ls "$F/run" | tr '\n' ' ')" = "outputs.jsonl prompt.txt "
  done
  # xl-init: refused before writing when the weights cannot fit; no half checkpoint otherwise
  fill 2
  expect_status "xl-init on a disk too small: exit 1" 1 "$BIN/xl-init" -o "$F/ck" --preset tiny -D 8 --heads 2 --blocks 1 --vocab 64 --dtype f32 -q
  stderr_has "... says how much is needed, before writing" "the weights need .* MB and the filesystem has .* MB free; nothing written"
  for pages in 3 4 5; do   # the weights, config.json, generation_config.json fail in turn
    fill $pages
    expect_status "xl-init, disk full after $pages pages: exit 1" 1 "$BIN/xl-init" -o "$F/ck" --preset tiny -D 8 --heads 2 --blocks 1 --vocab 64 --dtype f32 -q
    stderr_has "... names the file" "$F/ck/[a-z_.]+: (cannot write|write failed): No space left on device"
    check "... no half checkpoint left ($(left))" test -z "$(left)"
  done
  umount "$F"
else
  ok "full disk # SKIP needs root to mount a small tmpfs"
fi

finish
