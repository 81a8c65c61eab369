#!/usr/bin/env bash
# t_workflow: pipelines/workflow.mk end to end on a reduced sweep (4 trials: 2 head bands x
# 2 tiny contexts, NEW=8) in $TMP, with the external judge on the mock server: every file of
# the chain exists, report.md links figures that exist; a second make runs nothing (make -q
# says up to date, no file changes); a changed parameter redoes only its step and those
# after it; a failing step leaves no half-made target and the next make resumes after the
# last good step; an interrupted sweep is resumed; make -n writes nothing; each step prints
# the command it runs; RUN and paths with shell or make syntax are refused.
source "$(dirname "$0")/lib.sh"
WF=$ROOT/pipelines/workflow.mk
R=$TMP/run

start_mock_judge

V=(XL_BIN="$BIN" RUN_DIR="$R" CONTEXTS=16,32 BACKENDS=chunkwise CHUNK_SIZES=16 HEADS=1,2 WORKERS=1
   MATMULS= SAMPLES=1 NEW=8 REPEATS=1 WARMUP=0 SAVE_NEW=8 PLOT_FORMAT=svg
   JUDGE_API="$API" JUDGE_MODEL=good "JUDGE_FLAGS=--retries 1 --timeout 10")
wf() { make --no-print-directory -f "$WF" "${V[@]}" "$@"; }
# snapshot: every file under the run dir with its mtime
snap() { find "$R" -type f -printf '%P %T@\n' | sort; }

cd "$TMP"   # the makefile finds the tools and prompts from its own location
expect_status "make demo runs the whole chain" 0 wf demo
check "it prints where the report is" grep -qx "report: $R/report.md" "$TMP/out"
missing=
for f in run_meta.json trials.jsonl summary.csv best.json outputs.jsonl ratings.jsonl ratings.csv \
         ratings_ollama.jsonl ratings_ollama.csv merged.csv pareto.csv recommended.json stats.csv mem.csv report.md; do
  [ -s "$R/$f" ] || missing="$missing $f"
done
check "every file of the chain exists${missing:+ (missing:$missing)}" test -z "$missing"
check "4 trials, 4 outputs, 4 internal and 4 external ratings" test \
  "$(grep -c . "$R/trials.jsonl") $(ls "$R/outputs" | wc -l) $(grep -c . "$R/ratings.jsonl") $(grep -c . "$R/ratings_ollama.jsonl")" = "4 4 4 4"
check "merged.csv carries both judges' scores for every trial" python3 - "$R/merged.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
sys.exit(not (len(rows) == 4 and all(r["avg_logprob"] and float(r["avg_logprob"]) < 0 and r["overall"] for r in rows)))
PY
links=$(grep -oE '\]\(plots/[^)]+\.svg\)' "$R/report.md" | sed 's/^](//; s/)$//' || true)
nl=$(printf '%s\n' "$links" | grep -c . || true)
allthere=1; for l in $links; do [ -s "$R/$l" ] || allthere=0; done
check "report.md links $nl figures (all seven, step and memory included), all present" test "$nl" -ge 7 -a "$allthere" = 1
check "no sweep staging dir or temp file left" test -z "$(find "$R" -name '.sweep' -o -name '*.tmp.*')"

check "the external judge ran with the new flag spellings and the prompt (one sample: PROMPT itself)" \
  grep -qE "/xl-judge ollama $R --api http://127\.0\.0\.1:[0-9]+ --judge-model good --workers 1 --prompt-file $ROOT/prompts/pydocs\.txt --retries 1 --timeout 10\$" "$TMP/out"
check "... so no tool warned about an old spelling" sh -c "! grep -q deprecated '$TMP/err'"
check "the telemetry step printed its whole command" \
  grep -qE "/xl-decode --prompt-file \S+ -n 256 --ignore-eos -q --stats-log \S+ --mem-log \S+ --mem-every 20 --profile $R/profile_ctx32\.json\$" "$TMP/out"

snap > "$TMP/snap1"
# a dry run writes nothing: neither a new run directory nor the parameter records of a
# changed parameter
expect_status "make -n on a new run directory" 0 wf -n demo RUN_DIR="$TMP/dry"
check "... prints the steps" grep -q "xl-sweep -o $TMP/dry/.sweep" "$TMP/out"
check "... and creates nothing" test ! -e "$TMP/dry"
expect_status "make -n with a changed parameter" 0 wf -n demo SAVE_NEW=5
check "... lists the steps it would redo" grep -q -- "/xl-save $R -n 5 " "$TMP/out"
snap > "$TMP/snap1n"
check "... and changes no file (no .params record rewritten)" cmp -s "$TMP/snap1" "$TMP/snap1n"
expect_status "make -q: up to date" 0 wf -q report
expect_status "second make demo" 0 wf demo
check "second make runs no step" test "$(cat "$TMP/out")" = "report: $R/report.md"
snap > "$TMP/snap2"
check "second make changes no file" cmp -s "$TMP/snap1" "$TMP/snap2"

# a new save length redoes save and what follows, not the sweep
cp "$R/trials.jsonl" "$TMP/trials.before"
expect_status "SAVE_NEW=6" 0 wf demo SAVE_NEW=6
check "the sweep was not redone" sh -c "! grep -q xl-sweep '$TMP/out' && test \"\$(stat -c %Y '$R/trials.jsonl')\" = \"$(stat -c %Y "$R/trials.jsonl")\""
check "outputs regenerated with 6 tokens" test "$(jq -r .requested_new_tokens "$R/outputs.jsonl" | sort -u)" = 6
check "the judges, merge and plot ran again" test "$(grep -cE '^/\S*/xl-(judge|merge|plot) ' "$TMP/out")" = 4
check "the external judge re-rated the new outputs (8 requests in all)" test "$(grep -c '"/api/generate"' "$TMP/req.log")" = 8
V=("${V[@]/SAVE_NEW=8/SAVE_NEW=6}")

# a failing step: a judge that writes half a file and fails
FB=$TMP/fakebin
mkdir -p "$FB"
for t in "$BIN"/xl-*; do ln -s "$t" "$FB/$(basename "$t")"; done
rm "$FB/xl-judge"
printf '#!/bin/sh\necho "slug,half" > "$2/ratings.csv"\necho "xl-judge: fake failure" >&2\nexit 1\n' > "$FB/xl-judge"
chmod +x "$FB/xl-judge"
rm "$R/ratings.csv"
expect_status "a failing judge fails make" 2 wf demo XL_BIN="$FB"
check "no half-made ratings.csv, no merged.csv remade" test ! -e "$R/ratings.csv"
snap > "$TMP/snap3"
expect_status "the next make resumes" 0 wf demo
check "it starts at the judge" test "$(grep -oE '^/\S*/xl-[a-z]+( internal| ollama)?' "$TMP/out" | sed 's,.*/,,' | tr '\n' ' ')" = "xl-judge internal xl-merge xl-decode xl-plot "
check "the chain is whole again" test -s "$R/ratings.csv" -a -s "$R/report.md"
expect_status "make -q: up to date again" 0 wf -q report

# an interrupted sweep is resumed, not restarted: trials finished before the interrupt are kept
R2=$TMP/run2
V2=(XL_BIN="$BIN" RUN_DIR="$R2" CONTEXTS=16,32 BACKENDS=chunkwise CHUNK_SIZES=16,32 HEADS=1,2 WORKERS=1
    MATMULS= NEW=8 REPEATS=2 WARMUP=0 INTERLEAVE=1 SAVE_NEW=4 PLOT_FORMAT=svg)
setsid make --no-print-directory -f "$WF" "${V2[@]}" "$R2/trials.jsonl" > "$TMP/int.out" 2>&1 &
MK=$!
for _ in $(seq 400); do [ -s "$R2/.sweep/trials.jsonl" ] && break; sleep 0.025; done
kill -INT -- -$MK 2>/dev/null || true
wait $MK 2>/dev/null || true
check "interrupted: no trials.jsonl in place, the staging dir kept" test ! -e "$R2/trials.jsonl" -a -s "$R2/.sweep/trials.jsonl"
expect_status "make after the interrupt" 0 make --no-print-directory -f "$WF" "${V2[@]}" "$R2/trials.jsonl"
check "the sweep was resumed" grep -q "resuming" "$TMP/out"
check "8 unique trials, some resumed" test "$(jq -r .slug "$R2/trials.jsonl" | sort -u | wc -l) $(grep -c . "$R2/trials.jsonl") $(grep -o '"resumed":[0-9]*' "$TMP/out" | grep -vc ':0$')" = "8 8 1"
# the default knobs: fp32 against bf16, with quality compared pair by pair over prompt windows
R3=$TMP/run3
V3=(XL_BIN="$BIN" RUN_DIR="$R3" CONTEXTS=32 BACKENDS=chunkwise CHUNK_SIZES=16 HEADS=1 WORKERS=1
    NEW=8 REPEATS=2 WARMUP=0 SAVE_NEW=16 SAMPLES=3 PLOT_FORMAT=svg)
expect_status "make demo with matmul fp32,bf16 and 3 samples" 0 make --no-print-directory -f "$WF" "${V3[@]}" demo
check "2 trials (fp32, bf16); 6 outputs, 2 of them generated per sample and window" \
  test "$(grep -c . "$R3/trials.jsonl") $(grep -c . "$R3/outputs.jsonl") $(ls "$R3/windows" | wc -l)" = "2 6 3"
check "quality.csv compares bf16 with the fp32 reference" \
  python3 -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); sys.exit(not ([x["setting"].split()[-1] for x in r] == ["matmul=fp32", "matmul=bf16"] and r[0]["verdict"] == "reference" and r[1]["samples"] == "3"))' "$R3/quality.csv"
check "report.md: noise, front and quality sections" \
  bash -c "grep -q '^## Noise' '$R3/report.md' && grep -q '^## Pareto front' '$R3/report.md' && grep -q '^## Quality against the reference' '$R3/report.md' && grep -q 'matmul=bf16' '$R3/report.md'"
check "the speed-quality figure and the matmul bar chart are drawn" test -s "$R3/plots/speed_quality.svg" -a -s "$R3/plots/decode_by_matmul.svg"

# what a step prints is what it runs: the telemetry command, pasted, gets the same arguments
LB=$TMP/logbin
mkdir -p "$LB"
for t in "$BIN"/xl-*; do ln -s "$t" "$LB/$(basename "$t")"; done
rm "$LB/xl-decode"
printf '#!/bin/sh\nprintf "%%s\\n" "$0" "$@" > "$ARGS_LOG"\nexec "%s/xl-decode" "$@"\n' "$BIN" > "$LB/xl-decode"
chmod +x "$LB/xl-decode"
rm "$R3/stats.csv"
ARGS_LOG=$TMP/ran.args expect_status "the telemetry step alone" 0 make --no-print-directory -f "$WF" "${V3[@]}" telemetry XL_BIN="$LB"
printed=$(grep "/xl-decode " "$TMP/out")
check "it printed one command" test "$(printf '%s\n' "$printed" | grep -c .)" = 1
(eval "set -- $printed"; printf '%s\n' "$@") > "$TMP/printed.args"
check "the printed command is the one that ran, word for word" cmp -s "$TMP/printed.args" "$TMP/ran.args"
check "pasted (stdin closed), it runs on its own" sh -c "cd / && ARGS_LOG=/dev/null timeout 60 sh -c '$printed' < /dev/null > /dev/null && test -s '$R3/stats.csv.part'"
rm -f "$R3/stats.csv.part" "$R3/mem.csv.part"
# a judge URL's user:password is printed and recorded as ***; with prompt windows (SAMPLES > 1)
# no --prompt-file: each output is judged against its own window
PORT=${API##*:}
expect_status "an external judge with user:password in its URL" 0 make --no-print-directory -f "$WF" "${V3[@]}" \
  judge-ollama JUDGE_API="http://judge:s3cr3t@127.0.0.1:$PORT" JUDGE_MODEL=good
check "... printed with ***@" grep -q "xl-judge ollama $R3 --api 'http://\*\*\*@127.0.0.1:$PORT' --judge-model good --workers 1\$" "$TMP/out"
check "... the password is printed and recorded nowhere" sh -c "! grep -rq s3cr3t '$TMP/out' '$TMP/err' '$R3'"

# JUDGE_JOBS, the old name of JUDGE_WORKERS (xl-judge --workers), works for one release with a warning
expect_status "JUDGE_JOBS=3 (make -n)" 0 make -n --no-print-directory -f "$WF" "${V3[@]}" judge-ollama \
  JUDGE_API="http://127.0.0.1:$PORT" JUDGE_JOBS=3
check "... becomes --workers 3" grep -q -- "--judge-model llama3.1:8b --workers 3" "$TMP/out"
stderr_has "... with a deprecation warning" "JUDGE_JOBS is deprecated.*JUDGE_WORKERS"

# variables are data: RUN is a plain name, paths hold no shell or make syntax, and a value
# given on the command line is never read as make syntax; refused before anything runs
rm -f "$TMP/pwned"
expect_status "RUN with shell syntax is refused, even under make -n" 2 make -n -f "$WF" "RUN=a;touch $TMP/pwned;b" sweep
stderr_has "... naming RUN and what it may hold" "RUN='a;touch .*letters, digits"
expect_status "RUN=.. is refused" 2 make -n -f "$WF" RUN=.. sweep
expect_status "RUN=x/y is refused" 2 make -n -f "$WF" RUN=x/y sweep
expect_status "a RUN_DIR with \$(shell ...) is refused, not run" 2 make -n -f "$WF" "RUN_DIR=\$(shell touch $TMP/pwned)" sweep
expect_status "a RUN from the environment too" 2 env "RUN=\$(shell touch $TMP/pwned)" make -n -f "$WF" sweep
expect_status "a PROMPT with a quote is refused" 2 make -n -f "$WF" RUN_DIR="$TMP/q" "PROMPT=$TMP/it's" sweep
expect_status "a list value with a blank is refused" 2 make -n -f "$WF" RUN_DIR="$TMP/q" "CONTEXTS=16 \`touch $TMP/pwned\`" sweep
check "nothing ran, no run directory made" test ! -e "$TMP/pwned" -a ! -e "$TMP/q" -a ! -e "$ROOT/runs/a"
expect_status "flags with shell syntax reach the tool as data (make -n)" 0 make -n -f "$WF" RUN_DIR="$TMP/q" \
  "SWEEP_FLAGS=--progress \$(touch $TMP/pwned)" sweep
check "... quoted word by word" grep -qF "'\$(touch' '$TMP/pwned)'" "$TMP/out"
check "... and still nothing ran or was written" test ! -e "$TMP/pwned" -a ! -e "$TMP/q"
finish
