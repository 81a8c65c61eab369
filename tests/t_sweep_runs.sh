#!/usr/bin/env bash
# t_sweep_runs: where xl-sweep writes and what it runs. --run is a plain name under runs/
# (never .., a path or a hidden name: usage error); `plan` without -o or --run prints its
# specs and writes nothing; --resume and trial run the tools beside xl-sweep (or named on
# their own command line), never the programs run_meta.json or a spec names; --resume drops
# duplicate records of a trial; kill -9 of xl-sweep leaves no tool run behind; the progress
# lines count every trial the search asks for (a GA's repeats too, up to N/N) and say what
# the best mean is of; an installed xl-sweep finds its default prompt in PREFIX/share/xltools.
source "$(dirname "$0")/lib.sh"
jqe() { jq -e "$@" > /dev/null; }
SW="$BIN/xl-sweep"
TOOLS=${XL_REAL_BIN:-$BIN}
P="$ROOT/prompts/pydocs.txt"
FAST=(--prompt-file "$P" --context 32 --new 8 --repeats 1 --warmup 0 --progress no)
ONE=(--backend chunkwise --chunk-size 16 --workers 1 --heads-per-band 1)
cd "$TMP"

# ---- --run NAME: a name under runs/, nothing else ----
for bad in .. ../x /abs x/y .hidden ""; do
  expect_status "--run '$bad' is a usage error" 2 "$SW" "${FAST[@]}" "${ONE[@]}" --run "$bad"
done
stderr_has "... saying what a name may hold and pointing at -o" "--run '': a name of letters, digits.*-o DIR"
check "nothing was written (no runs/, no run files here or above)" \
  test ! -e "$TMP/runs" -a ! -e "$TMP/run_meta.json" -a ! -e "$(dirname "$TMP")/x"
expect_status "--run with a plain name" 0 "$SW" "${FAST[@]}" "${ONE[@]}" --run good.1_x-y
check "... makes runs/NAME" test -s "$TMP/runs/good.1_x-y/trials.jsonl"

# ---- plan without a place writes nothing ----
mkdir "$TMP/p"
(cd "$TMP/p" && "$SW" plan "${FAST[@]}" "${ONE[@]}" --workers 1,2) > "$TMP/plan.out" 2> "$TMP/err"
check "plan without -o or --run prints its 2 specs" jqe -s 'length == 2 and .[0].run_dir == null and .[0].ids_file == null' "$TMP/plan.out"
check "... and writes nothing (no runs/sweep-<time>)" test -z "$(ls -A "$TMP/p")"
head -1 "$TMP/plan.out" | "$SW" trial - > "$TMP/rec.json"
check "... its specs run as they are (the trial tokenizes the prompt)" jqe '.status == "ok" and .prompt_tokens == 32' "$TMP/rec.json"
expect_status "plan -o DIR still writes the plan there" 0 "$SW" plan "${FAST[@]}" "${ONE[@]}" -o "$TMP/planned"
check "... plan.jsonl, run_meta.json and the ids" test -s "$TMP/planned/plan.jsonl" -a -s "$TMP/planned/run_meta.json" -a -s "$TMP/planned/ids/ctx32.ids"

# ---- --resume: a run directory never chooses what runs ----
R=$TMP/res
expect_status "a 2-trial run" 0 "$SW" "${FAST[@]}" "${ONE[@]}" --workers 1,2 --bin "$TOOLS" -o "$R"
mkdir -p "$TMP/evilbin"
for t in xl-prefill xl-decode; do printf '#!/bin/sh\ntouch "%s/pwned-bin"\nexit 1\n' "$TMP" > "$TMP/evilbin/$t"; done
printf '#!/bin/sh\ntouch "%s/pwned-prefix"\nexec "$@"\n' "$TMP" > "$TMP/evil.sh"
chmod +x "$TMP/evilbin"/* "$TMP/evil.sh"
jq --arg b "$TMP/evilbin" --arg p "$TMP/evil.sh" --arg o "$TMP/elsewhere.json" \
  '.config.bin = $b | .config.tool_prefix = $p | .config.profile_out = $o' "$R/run_meta.json" > "$TMP/meta" && mv "$TMP/meta" "$R/run_meta.json"
head -1 "$R/trials.jsonl" > "$TMP/t1" && mv "$TMP/t1" "$R/trials.jsonl"   # one trial left to measure
expect_status "--resume of a run dir whose run_meta.json names programs" 0 "$SW" --resume "$R" --progress no
check "... runs none of them" test ! -e "$TMP/pwned-bin" -a ! -e "$TMP/pwned-prefix"
check "... writes no file where it says (profile_out)" test ! -e "$TMP/elsewhere.json"
stderr_has "... and says it ignored bin" "ignoring bin '$TMP/evilbin' of $R/run_meta.json"
stderr_has "... and tool_prefix" "ignoring tool-prefix '$TMP/evil.sh'"
check "... measuring the missing trial with the tools beside xl-sweep" jqe 'select(.measured == 1 and .resumed == 1 and .failed == 0)' "$TMP/out"
expect_status "--resume with --tool-prefix given again" 0 "$SW" --resume "$R" --progress no --tool-prefix "$TMP/evil.sh"
check "... runs what its own command line names" test -e "$TMP/pwned-prefix"
rm -f "$TMP/pwned-prefix"

# ---- trial: a spec (a line of plan.jsonl) never chooses what runs either ----
jq -c --arg b "$TMP/evilbin" --arg p "$TMP/evil.sh" '.bin = $b | .tool_prefix = $p' "$TMP/planned/plan.jsonl" > "$TMP/evil.plan"
expect_status "trial of a spec naming a bin and a tool_prefix" 0 "$SW" trial - < "$TMP/evil.plan"
check "... runs neither" test ! -e "$TMP/pwned-bin" -a ! -e "$TMP/pwned-prefix"
check "... but the tools beside xl-sweep" jqe '.status == "ok" and .prompt_tokens == 32' "$TMP/out"
stderr_has "... saying so (bin)" "not the spec's bin $TMP/evilbin"
stderr_has "... saying so (tool_prefix)" "ignoring the spec's tool_prefix '$TMP/evil.sh'"
expect_status "trial --bin DIR runs DIR's tools" 1 "$SW" trial --bin "$TMP/evilbin" - < "$TMP/evil.plan"
check "... (the command line chose them)" test -e "$TMP/pwned-bin"
rm -f "$TMP/pwned-bin"

# ---- --resume drops duplicate records of a trial, keeping the first complete one ----
s1=$(jq -r 'select(.trial == 1) | .slug' "$R/trials.jsonl")
first=$(grep -F "\"slug\":\"$s1\"" "$R/trials.jsonl")
{ printf '{"slug":"%s","note":"incomplete: no status"}\n' "$s1"; cat "$R/trials.jsonl"
  jq -c 'select(.trial == 1) | .decode_tok_s = 1' "$R/trials.jsonl"; } > "$TMP/dup"
cp "$TMP/dup" "$R/trials.jsonl"
expect_status "--resume of a trials.jsonl with a trial recorded three times" 0 "$SW" --resume "$R" --progress no
stderr_has "... says it dropped the duplicates" "dropped 2 duplicate record\(s\)"
check "... 2 records left, one per trial" test "$(grep -c . "$R/trials.jsonl") $(jq -r .slug "$R/trials.jsonl" | sort -u | wc -l)" = "2 2"
check "... the first complete record kept, byte for byte" test "$(grep -F "\"slug\":\"$s1\"" "$R/trials.jsonl")" = "$first"
check "... summary.csv has 2 rows" test "$(($(wc -l < "$R/summary.csv") - 1))" = 2

# ---- kill -9 of xl-sweep: its running tool stops too ----
R4=$TMP/killed
"$SW" "${FAST[@]}" "${ONE[@]}" --new 1000000 --trial-timeout 0 --bin "$TOOLS" -o "$R4" > /dev/null 2>&1 &
spid=$!
child=
for _ in $(seq 1 400); do
  child=$(pgrep -f -- "--ids-file $R4/ids/ctx32.ids" | head -1 || true)
  [ -n "$child" ] && break
  sleep 0.05
done
check "a long trial is running (xl-decode pid ${child:-none})" test -n "$child"
kill -9 "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
gone=0
for _ in $(seq 1 200); do
  kill -0 "$child" 2>/dev/null || { gone=1; break; }
  sleep 0.05
done
check "kill -9 of xl-sweep stops its xl-decode (no orphan left)" test "$gone" = 1
[ "$gone" = 1 ] || kill -9 "$child" 2>/dev/null || true

# ---- progress: every trial the search asks for is counted; the best says what it is ----
cat > "$TMP/fake.sh" <<'EOF'
#!/bin/sh
# test wrapper: a deterministic stand-in for xl-decode's record; tokenizing goes to the real tool
tool=$1; shift
case " $* " in *" --tokenize "*) exec "$tool" "$@" ;; esac
ck=64 w=1 h=1
while [ $# -gt 0 ]; do
  case $1 in --chunk-size) ck=$2; shift ;; --workers) w=$2; shift ;; --heads-per-band) h=$2; shift ;; esac
  shift
done
printf '{"tool":"xl-decode","prefill_s":0.5,"prefill_tok_s":%d,"decode_s":0.25,"decode_tok_s":%d,"peak_rss_mb":21,"blas_core":"fake","fingerprint":"00000000000000ff","stop":"length"}\n' $((2000 + ck + 300 * w)) $((300 + 25 * w + 7 * h))
EOF
chmod +x "$TMP/fake.sh"
GA=("${FAST[@]}" --repeats 2 --bin "$TOOLS" --tool-prefix "$TMP/fake.sh" --search ga --population 4 --elites 1 --generations 3
    --backend chunkwise --chunk-size 16,32 --workers 1,2 --heads-per-band 1 --progress yes)
expect_status "a GA over a space smaller than its population x generations" 0 "$SW" "${GA[@]}" -o "$TMP/ga"
grep -E '^xl-sweep: \[' "$TMP/err" > "$TMP/ga.lines" || true
check "the counter reaches N/N: 4 x 3 = 12 lines, the last [12/12]" \
  test "$(grep -c . "$TMP/ga.lines") $(tail -1 "$TMP/ga.lines" | grep -o '^xl-sweep: \[[0-9]*/[0-9]*\]')" = "12 xl-sweep: [12/12]"
check "settings the GA asks for again are counted and named so" grep -q '(measured before in this run)' "$TMP/ga.lines"
check "... but measured once" jqe 'select(.measured == 4 and .trials == 4)' "$TMP/out"
expect_status "a grid over two contexts" 0 "$SW" "${FAST[@]}" --repeats 2 --bin "$TOOLS" --tool-prefix "$TMP/fake.sh" \
  --backend chunkwise --chunk-size 16 --workers 1,2 --heads-per-band 1 --context 32,40 --progress yes -o "$TMP/two"
best=$(printf '%.2f' "$(jq .metrics.decode_tok_s "$TMP/two/best.json")")
check "the best mean over two contexts names its setting, not one trial" \
  grep -qE "\| best decode $best \(b=chunkwise__ck=16__h=1__w=2, mean of 2 contexts\) \|" "$TMP/err"
check "... never a trial's slug beside a mean" sh -c "! grep -qE 'best decode [0-9.]+ \([^)]*__i=[0-9]+, mean' '$TMP/err'"
expect_status "one context" 0 "$SW" "${FAST[@]}" --bin "$TOOLS" --tool-prefix "$TMP/fake.sh" --backend chunkwise \
  --chunk-size 16 --workers 2 --heads-per-band 1 --progress yes -o "$TMP/one"
check "... names the trial, whose own value it is" \
  grep -qE "\| best decode $(printf '%.2f' "$(jq .decode_tok_s "$TMP/one/trials.jsonl")") \(b=chunkwise__ck=16__h=1__w=2__ctx=32__i=1\) \|" "$TMP/err"

# ---- an installed xl-sweep finds the prompt it ships with ----
PF=$TMP/prefix
mkdir -p "$PF/bin" "$PF/share/xltools/prompts"
cp "$TOOLS/xl-sweep" "$PF/bin/"
cp "$P" "$PF/share/xltools/prompts/"
(cd / && "$PF/bin/xl-sweep" --print-config) > "$TMP/pc.json" 2> "$TMP/err"
check "installed: the default prompt is PREFIX/share/xltools/prompts/pydocs.txt" \
  jqe --arg p "$PF/share/xltools/prompts/pydocs.txt" '.prompt_file == $p and ._sources.prompt_file == "default"' "$TMP/pc.json"
finish
