#!/usr/bin/env bash
# t_save: xl-save on a small run directory. With the real xl-decode: one output per
# successful trial (failed ones skipped), .txt = continuation = outputs.jsonl text, the
# same greedy text as xl-decode run by hand, the trial's parameters on each line; re-runs
# keep finished outputs, --force redoes them, a deleted .txt is redone alone, duplicated or
# torn lines are cleaned up, summary.csv and stdin work. With a fake xl-decode (XL_DECODE):
# each trial's knobs reach the command line, a failing trial leaves the others saved and
# exits 1, a kill mid-run leaves only whole, unique lines; -o/--output; a full disk leaves
# no empty outputs.jsonl; SIGTERM/SIGINT stop the running xl-decode, keep the finished lines
# and exit 143/130, a rerun does the rest, kill -9 leaves no xl-decode; usage errors exit 2.
source "$(dirname "$0")/lib.sh"
S="$BIN/xl-save"
R=$TMP/run
mkdir -p "$R"
printf 'The Python interpreter' > "$R/prompt.txt"
A='b=chunkwise__ck=16__h=1__w=1__i=1'
B='b=recurrent__ck=1__h=2__w=2__i=2'
C='b=chunkwise__ck=7__h=2__w=1__i=3'
cat > "$R/trials.jsonl" <<EOF
{"trial":1,"slug":"$A","status":"ok","backend":"chunkwise","chunk_size":16,"heads_per_band":1,"workers":1,"prompt_tokens":64,"context":64,"prompt_file":"prompt.txt"}
{"trial":2,"slug":"$B","status":"ok","backend":"recurrent","chunk_size":1,"heads_per_band":2,"workers":2,"prompt_tokens":256,"context":256,"prompt_file":"prompt.txt"}
{"trial":3,"slug":"$C","status":"ok","backend":"chunkwise","chunk_size":7,"heads_per_band":2,"workers":1,"prompt_tokens":64,"context":64,"prompt_file":"prompt.txt"}
{"trial":4,"slug":"b=chunkwise__ck=99__h=1__w=1__i=4","status":"failed","error":"killed","backend":"chunkwise","chunk_size":99,"heads_per_band":1,"workers":1}
EOF
# jq helpers
nlines() { grep -c . "$1" || true; }
field() { jq -r --arg s "$2" "select(.slug==\$s) | $3" "$1"; }

expect_status "save 3 ok trials with -j 2" 0 "$S" "$R" -n 12 -j 2
cp "$TMP/out" "$TMP/sum1"
check "summary line: 3 generated, 1 failed trial skipped" \
  test "$(jq -r '"\(.generated) \(.kept) \(.skipped_failed_trials) \(.errors)"' "$TMP/sum1")" = "3 0 1 0"
check "one outputs.jsonl line per ok trial" test "$(nlines "$R/outputs.jsonl")" = 3
check "no output for the failed trial" test ! -e "$R/outputs/b=chunkwise__ck=99__h=1__w=1__i=4.txt"
check "unique slugs" test "$(jq -r .slug "$R/outputs.jsonl" | sort -u | wc -l)" = 3
ok_txt=1
for s in "$A" "$B" "$C"; do
  [ -f "$R/outputs/$s.txt" ] || ok_txt=0
  [ "$(field "$R/outputs.jsonl" "$s" .text)" = "$(cat "$R/outputs/$s.txt")" ] || ok_txt=0
  [ "$(field "$R/outputs.jsonl" "$s" '.token_ids|length')" = "$(field "$R/outputs.jsonl" "$s" .new_tokens)" ] || ok_txt=0
done
check "each .txt holds its line's text; token_ids match new_tokens" test $ok_txt = 1
check "12 tokens requested and generated" test "$(field "$R/outputs.jsonl" "$A" '"\(.requested_new_tokens) \(.new_tokens) \(.stop)"')" = "12 12 length"
check "trial parameters on the line (B)" \
  test "$(field "$R/outputs.jsonl" "$B" '"\(.trial) \(.backend) \(.chunk_size) \(.heads_per_band) \(.workers) \(.context) \(.prompt_file)"')" = "2 recurrent 1 2 2 256 prompt.txt"
# the prompt is used as is: prompt_tokens is its real length, not the context label
check "prompt used as is (prompt_tokens 3 or 4 < context 64)" test "$(field "$R/outputs.jsonl" "$A" .prompt_tokens)" -lt 10
# the greedy text equals xl-decode run by hand, and is the same under every setting
"$BIN/xl-decode" -q --greedy -n 12 --prompt-file "$R/prompt.txt" --format ndjson > "$TMP/hand"
check "continuation = xl-decode --greedy by hand" test "$(jq -r .text "$TMP/hand")" = "$(cat "$R/outputs/$A.txt")"
check "settings agree on the greedy text" test "$(jq -r .text "$R/outputs.jsonl" | sort -u | wc -l)" = 1
check "the continuation has no prompt" sh -c "! grep -q 'The Python interpreter' '$R/outputs/$A.txt'"

cp "$R/outputs.jsonl" "$TMP/first.jsonl"
expect_status "re-run keeps everything" 0 "$S" "$R" -n 12
check "re-run: 0 generated, 3 kept" test "$(jq -r '"\(.generated) \(.kept)"' "$TMP/out")" = "0 3"
check "re-run: outputs.jsonl unchanged" cmp -s "$TMP/first.jsonl" "$R/outputs.jsonl"

rm "$R/outputs/$C.txt"
expect_status "a deleted .txt is redone" 0 "$S" "$R" -n 12
check "only that one generated" test "$(jq -r '"\(.generated) \(.kept)"' "$TMP/out")" = "1 2"
check "and its file is back" test -s "$R/outputs/$C.txt"

expect_status "--force redoes all" 0 "$S" "$R" -n 12 --force
check "--force: 3 generated, still 3 lines" test "$(jq -r .generated "$TMP/out") $(nlines "$R/outputs.jsonl")" = "3 3"

expect_status "another -n" 0 "$S" "$R" -n 10
check "another -n redoes every output" test "$(jq -r '"\(.generated) \(.kept)"' "$TMP/out") $(jq -r .new_tokens "$R/outputs.jsonl" | sort -u)" = "3 0 10"

# duplicated and torn lines (a hand edit, an old tool) are cleaned up
{ cat "$R/outputs.jsonl"; head -1 "$R/outputs.jsonl"; printf '{"slug":"torn'; } > "$TMP/dirty"
cp "$TMP/dirty" "$R/outputs.jsonl"
expect_status "dirty outputs.jsonl" 0 "$S" "$R" -n 12
stderr_has "the torn line is reported" "ignored 1 unreadable line"
check "deduplicated: 3 lines, all valid JSON" test "$(jq -c . "$R/outputs.jsonl" | wc -l) $(nlines "$R/outputs.jsonl")" = "3 3"

# other trial sources: summary.csv, NDJSON on stdin, a torn last trials line
R2=$TMP/run2
mkdir -p "$R2"
cp "$R/prompt.txt" "$R2/"
cat > "$R2/summary.csv" <<EOF
trial,slug,status,error,backend,chunk_size,heads_per_band,workers,prompt_tokens
5,s5,ok,,chunkwise,32,1,1,64
6,s6,failed,"boom, really",chunkwise,32,1,1,64
EOF
printf '{"prompt_file":"prompt.txt","model":{"path":null}}\n' > "$R2/run_meta.json"
expect_status "summary.csv when there is no trials.jsonl (prompt from run_meta.json)" 0 "$S" "$R2" -n 4
check "summary.csv: s5 saved, s6 skipped" test "$(jq -r .slug "$R2/outputs.jsonl")" = s5
check "summary.csv: numbers read as numbers" test "$(jq -r '"\(.trial) \(.chunk_size) \(.context)"' "$R2/outputs.jsonl")" = "5 32 64"
printf '{"trial":7,"slug":"s7","status":"ok","backend":"chunkwise","chunk_size":8}\n{"trial":8,"slug":"s8","sta' |
  "$S" "$R2" --trials - -n 4 --prompt-file "$R/prompt.txt" > "$TMP/out" 2> "$TMP/err"
check "stdin trials with a torn last line: s7 saved, s5 kept after it" test "$(jq -r .slug "$R2/outputs.jsonl" | tr '\n' ' ')" = "s7 s5 "
stderr_has "the torn trials line is reported" "incomplete last line"

# --- a fake xl-decode: knobs on the command line, failures, kills
F=$TMP/fake-decode
cat > "$F" <<'EOF'
#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case " $* " in *" --chunk-size 7 "*) echo "xl-decode: chunk 7 exploded" >&2; exit 1;; esac
sleep "${FAKE_SLEEP:-0}"
echo '{"tool":"xl-decode","prompt_tokens":3,"new_tokens":2,"ids":[5,6],"text":"hi there","stop":"length"}'
EOF
chmod +x "$F"
R3=$TMP/run3
mkdir -p "$R3"
cp "$R/trials.jsonl" "$R/prompt.txt" "$R3/"
export FAKE_LOG=$TMP/fake.log
XL_DECODE=$F expect_status "a failing trial exits 1" 1 "$S" "$R3" -n 5 -m /some/model
stderr_has "the failure names the slug and xl-decode's message" "ck=7.*status 1: xl-decode: chunk 7 exploded"
check "the other two are saved" test "$(jq -r .slug "$R3/outputs.jsonl" | tr '\n' ' ')" = "$A $B "
check "no .txt for the failed one" test ! -e "$R3/outputs/$C.txt"
check "knobs of A on its command line" grep -qx -- "-q --format ndjson --greedy -n 5 --prompt-file $R3/prompt.txt -m /some/model --backend chunkwise --chunk-size 16 --heads-per-band 1 --workers 1" "$FAKE_LOG"
check "knobs of B on its command line" grep -q -- "--backend recurrent --chunk-size 1 --heads-per-band 2 --workers 2" "$FAKE_LOG"
check "settings a trial lacks are left to xl-decode" sh -c 'printf "{\"slug\":\"bare\",\"prompt_file\":\"prompt.txt\"}\n" | XL_DECODE="$2" "$0" "$1" --trials - -n 1 >/dev/null 2>&1; tail -1 "$3" | grep -qx -- "-q --format ndjson --greedy -n 1 --prompt-file $1/prompt.txt"' "$S" "$R3" "$F" "$FAKE_LOG"

# a slug repeated in trials.jsonl (a re-measured setting): the later record wins, one output
R6=$TMP/run6
mkdir -p "$R6"
cp "$R/prompt.txt" "$R6/"
printf '{"trial":1,"slug":"rep","status":"ok","chunk_size":8,"prompt_file":"prompt.txt"}\n{"trial":9,"slug":"rep","status":"ok","chunk_size":24,"prompt_file":"prompt.txt"}\n' > "$R6/trials.jsonl"
XL_DECODE=$F expect_status "repeated slug" 0 "$S" "$R6" -n 2
check "repeated slug: one line, the later trial's settings" test "$(jq -r '"\(.trial) \(.chunk_size)"' "$R6/outputs.jsonl")" = "9 24"

# --share and --samples: one generation per output setting (the lowest trial number makes it),
# K prompt windows per trial; every run setting of the trial reaches xl-decode
R7=$TMP/run7
mkdir -p "$R7"
cp "$R/prompt.txt" "$R7/"
printf 'The built-in function sorted returns a new list containing every item of an iterable in ascending order.\n' > "$R7/prompt.txt"
cat > "$R7/trials.jsonl" <<EOF
{"trial":3,"slug":"X","status":"ok","backend":"chunkwise","chunk_size":16,"heads_per_band":1,"workers":1,"matmul":"fp32","context":8,"prompt_file":"prompt.txt"}
{"trial":1,"slug":"Y","status":"ok","backend":"chunkwise","chunk_size":32,"heads_per_band":1,"workers":1,"matmul":"fp32","context":8,"prompt_file":"prompt.txt"}
{"trial":2,"slug":"Z","status":"ok","backend":"chunkwise","chunk_size":16,"heads_per_band":1,"workers":1,"matmul":"bf16","context":8,"prompt_file":"prompt.txt"}
EOF
: > "$FAKE_LOG"
XL_DECODE=$F expect_status "--share --samples 2" 0 "$S" "$R7" -n 2 --samples 2 --share
check "2 output settings x 2 samples generated, 2 lines shared" test "$(jq -r '"\(.generated) \(.shared)"' "$TMP/out")" = "4 2"
check "6 lines: each trial's slug and slug__s=1" test "$(jq -r .slug "$R7/outputs.jsonl" | sort | tr '\n' ' ')" = "X X__s=1 Y Y__s=1 Z Z__s=1 "
check "X shares Y's continuation (the lower trial number generates)" \
  test "$(field "$R7/outputs.jsonl" X .shared_from) $(field "$R7/outputs.jsonl" X__s=1 .shared_from) $(field "$R7/outputs.jsonl" Y .shared_from)" = "Y Y__s=1 null"
check "the bf16 trial ran with --matmul bf16, never shared with fp32" \
  bash -c "grep -q -- '--chunk-size 16 --heads-per-band 1 --workers 1 --matmul bf16' '$FAKE_LOG' && test \"\$(jq -r 'select(.slug==\"Z\") | .shared_from' '$R7/outputs.jsonl')\" = null"
check "two prompt windows, each line naming its own" \
  test "$(ls "$R7/windows" | tr '\n' ' ') $(field "$R7/outputs.jsonl" Y__s=1 '.prompt_file | sub(".*/";"")')" = "ctx8_s0.txt ctx8_s1.txt  ctx8_s1.txt"

# a kill in the middle: the lines written so far are whole and unique, each with its .txt
R4=$TMP/run4
mkdir -p "$R4"
cp "$R/prompt.txt" "$R4/"
for i in $(seq 1 12); do printf '{"trial":%d,"slug":"k%d","status":"ok","chunk_size":%d,"prompt_file":"prompt.txt"}\n' $i $i $((i + 20)); done > "$R4/trials.jsonl"
FAKE_SLEEP=0.3 XL_DECODE=$F "$S" "$R4" -n 2 -j 3 > /dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$R4/outputs.jsonl" ] && break; sleep 0.05; done   # the first lines are in
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
n4=$(nlines "$R4/outputs.jsonl")
check "killed run: some but not all lines ($n4)" test "$n4" -ge 1 -a "$n4" -lt 12
check "killed run: every line is valid JSON, slugs unique" test "$(jq -c . "$R4/outputs.jsonl" | wc -l) $(jq -r .slug "$R4/outputs.jsonl" | sort -u | wc -l)" = "$n4 $n4"
allf=1; for s in $(jq -r .slug "$R4/outputs.jsonl"); do [ -f "$R4/outputs/$s.txt" ] || allf=0; done
check "killed run: each line's .txt exists" test $allf = 1
sleep 0.3   # orphaned fake children finish
FAKE_SLEEP=0 XL_DECODE=$F expect_status "resume after the kill" 0 "$S" "$R4" -n 2 -j 3
check "resumed: the rest generated, 12 unique lines" test "$(jq -r .generated "$TMP/out") $(nlines "$R4/outputs.jsonl")" = "$((12 - n4)) 12"

# --- -o, --output FILE.jsonl: another outputs file (a name without '/' in RUN_DIR)
R9=$TMP/run9
mkdir -p "$R9"
cp "$R/prompt.txt" "$R3/trials.jsonl" "$R9/"
sed -i '/ck=7/d' "$R9/trials.jsonl"
XL_DECODE=$F expect_status "-o NAME" 0 "$S" "$R9" -n 2 -o mine.jsonl
check "... RUN_DIR/NAME holds the lines, no outputs.jsonl" test "$(nlines "$R9/mine.jsonl")" = 2 -a ! -e "$R9/outputs.jsonl"
XL_DECODE=$F expect_status "--output=PATH" 0 "$S" "$R9" -n 2 --output="$TMP/elsewhere.jsonl"
check "... the lines at PATH" test "$(nlines "$TMP/elsewhere.jsonl")" = 2
XL_DECODE=$F expect_status "-o NAME again: nothing to redo" 0 "$S" "$R9" -n 2 -o mine.jsonl
check "... the finished lines are kept" test "$(jq -r '"\(.generated) \(.kept)"' "$TMP/out")" = "0 2"
printf 'a,b\n' > "$R9/table.csv"
XL_DECODE=$F expect_status "-o a file of another kind is refused" 1 "$S" "$R9" -n 2 -o table.csv
check "... and left alone" test "$(cat "$R9/table.csv")" = "a,b"
XL_DECODE=$F expect_status "-o /dev/full: the write error is an error" 1 timeout 60 "$S" "$R9" -n 2 -o /dev/full --force
stderr_has "... saying so" "/dev/full: No space left on device"

# --- a full disk leaves no empty outputs.jsonl (a tiny tmpfs; root only)
if [ "$(id -u)" = 0 ] && mkdir -p "$TMP/tfs" && mount -t tmpfs -o size=64k tmpfs "$TMP/tfs" 2> /dev/null; then
  trap 'umount "$TMP/tfs" 2> /dev/null || true; rm -rf "$TMP"' EXIT
  RF=$TMP/tfs/run
  mkdir -p "$RF"
  cp "$R/prompt.txt" "$R9/trials.jsonl" "$RF/"
  head -c 1048576 /dev/zero > "$TMP/tfs/fill" 2> /dev/null || true
  XL_DECODE=$F expect_status "a full disk: exit 1" 1 "$S" "$RF" -n 2
  stderr_has "... naming the error" "No space left on device"
  check "... no outputs.jsonl at all (not an empty one), no temp file" test ! -e "$RF/outputs.jsonl" -a -z "$(find "$RF" -name '*.tmp.*')"
  rm "$TMP/tfs/fill"
  XL_DECODE=$F expect_status "space again: the rerun saves everything" 0 "$S" "$RF" -n 2
  check "... 2 lines" test "$(nlines "$RF/outputs.jsonl")" = 2
  umount "$TMP/tfs"
else
  ok "a full disk leaves no empty outputs.jsonl # SKIP cannot mount a tmpfs here"
fi

# --- SIGTERM / SIGINT: the running xl-decode is stopped, the finished lines kept, exit 143 /
# 130, and a rerun does only the rest; kill -9 of xl-save leaves no xl-decode behind
TOOLS=${XL_REAL_BIN:-$BIN}
R8=$TMP/run8
mkdir -p "$R8"
cp "$R/prompt.txt" "$R8/"
printf '{"trial":1,"slug":"fast","status":"ok","chunk_size":16,"prompt_file":"prompt.txt"}\n{"trial":2,"slug":"slow","status":"ok","chunk_size":99,"prompt_file":"prompt.txt"}\n' > "$R8/trials.jsonl"
SLOW=$TMP/slow-decode   # the real xl-decode; trial 2's runs for a million tokens
printf '#!/bin/sh\ncase " $* " in *" --chunk-size 99 "*) exec "%s/xl-decode" "$@" --ignore-eos -n 1000000 ;; esac\nexec "%s/xl-decode" "$@"\n' "$TOOLS" "$TOOLS" > "$SLOW"
chmod +x "$SLOW"
slow_pid() { pgrep -f -- "$R8/prompt.txt.*--chunk-size 99" | head -1 || true; }
# start_save: xl-save in the background until trial 2's xl-decode runs (its pid in $child)
start_save() {
  rm -rf "$R8/outputs" "$R8/outputs.jsonl"
  XL_DECODE=$SLOW "$S" "$R8" -n 8 > "$TMP/out" 2> "$TMP/err" &
  spid=$!
  child=
  for _ in $(seq 1 400); do child=$(slow_pid); [ -n "$child" ] && break; sleep 0.05; done
}
gone() { for _ in $(seq 1 200); do kill -0 "$1" 2> /dev/null || return 0; sleep 0.05; done; return 1; }
for sig in TERM INT; do
  want=$([ $sig = TERM ] && echo 143 || echo 130)
  start_save
  check "SIG$sig: trial 2 is generating (xl-decode ${child:-not found})" test -n "$child"
  kill -$sig "$spid"
  gone "$spid" || kill -9 "$spid" 2> /dev/null || true   # never wait out a million tokens
  set +e; wait "$spid"; rc=$?; set -e
  check "SIG$sig: exit $want" test "$rc" = "$want"
  check "SIG$sig: its xl-decode stopped too" gone "${child:-0}"
  [ -z "$child" ] || kill -9 "$child" 2> /dev/null || true
  check "SIG$sig: the finished line kept, the cut one not saved" \
    test "$(jq -r .slug "$R8/outputs.jsonl" 2> /dev/null | tr '\n' ' ')$(ls "$R8/outputs" | tr '\n' ' ')" = "fast fast.txt "
  check "SIG$sig: the summary says 1 interrupted" test "$(jq -r '"\(.generated) \(.interrupted)"' "$TMP/out")" = "1 1"
done
cp "$R8/outputs.jsonl" "$TMP/before-rerun"
expect_status "the rerun after an interrupt" 0 "$S" "$R8" -n 8
check "... generates only the cut one" test "$(jq -r '"\(.generated) \(.kept)"' "$TMP/out")" = "1 1"
check "... keeping the finished line as it was" test "$(jq -c 'select(.slug == "fast")' "$R8/outputs.jsonl")" = "$(jq -c . "$TMP/before-rerun")"
start_save
kill -9 "$spid"
wait "$spid" 2> /dev/null || true
check "kill -9 of xl-save: its xl-decode stops (no orphan)" gone "${child:-0}"
[ -z "$child" ] || kill -9 "$child" 2> /dev/null || true

# --- errors
expect_status "--help" 0 "$S" --help
check "--help on stdout" grep -q "Usage: xl-save RUN_DIR" "$TMP/out"
expect_status "no RUN_DIR" 2 "$S"
expect_status "bad -j" 2 "$S" "$R" -j 0
expect_status "bad --new" 2 "$S" "$R" --new x
expect_status "unknown option" 2 "$S" "$R" --bogus
expect_status "missing trials" 1 "$S" "$TMP/nothing-here"
stderr_has "names the missing file" "nothing-here/trials.jsonl"
R5=$TMP/run5
mkdir -p "$R5"
printf '{"slug":"a/b","status":"ok"}\n' > "$R5/trials.jsonl"
expect_status "a slug that is a path" 1 "$S" "$R5"
stderr_has "says why" "cannot name a file"
printf '{"slug":"nop","status":"ok","prompt_file":"missing.txt"}\n' > "$R5/trials.jsonl"
expect_status "a missing prompt file" 1 "$S" "$R5"
stderr_has "names it" "prompt file 'missing.txt' not found"
printf '{"slug":"w","status":"ok","workers":"many","prompt_file":"x"}\n' > "$R5/trials.jsonl"
expect_status "a bad knob value" 1 "$S" "$R5"
stderr_has "names the field" "record 1: workers is not an integer"
finish
