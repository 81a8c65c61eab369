#!/usr/bin/env bash
# t_sweep: xl-sweep on the default model with tiny contexts: the run directory files and
# fields, kill -9 + --resume, seeded random/GA/pareto reproducibility, failed trials
# (crash, timeout, watchdog exit, injected by a --tool-prefix wrapper), plan/trial/collect,
# the GNU parallel fan-out and the Slurm array script, --print-config precedence, usage.
source "$(dirname "$0")/lib.sh"
jqe() { jq -e "$@" > /dev/null; }   # a jq test: the exit status only
SW="$BIN/xl-sweep"
# Tools under test are the real ones beside the real xl-sweep (valgrind wraps only it).
TOOLS=${XL_REAL_BIN:-$BIN}
P="$ROOT/prompts/pydocs.txt"
FAST=(--prompt-file "$P" --context 32 --new 8 --repeats 1 --warmup 0 --progress no --bin "$TOOLS")

# ---- 1. a small grid: the four files and their fields ----
R1=$TMP/grid
expect_status "grid sweep runs" 0 "$SW" "${FAST[@]}" --repeats 2 --backend chunkwise,recurrent \
  --chunk-size 16,32 --workers 1,2 --heads-per-band 1 -o "$R1"
cp "$TMP/out" "$TMP/grid.out"
check "stdout: one outcome line (6 trials, none failed)" \
  jqe 'select(.trials == 6 and .measured == 6 and .failed == 0 and .best.backend != null)' "$TMP/grid.out"
check "stderr quiet when not a terminal" test ! -s "$TMP/err"
for f in run_meta.json trials.jsonl summary.csv best.json best_profile.json; do
  check "$f exists" test -s "$R1/$f"
done
check "trials.jsonl: 6 lines, trials 1..6 (in the order they finished)" \
  test "$(jq -s -c '[.[].trial] | sort' "$R1/trials.jsonl")" = "[1,2,3,4,5,6]"
req='["trial","slug","status","error","backend","chunk_size","heads_per_band","workers","prompt_tokens","new_tokens","repeats","prefill_s","decode_s","prefill_tok_s","decode_tok_s","prefill_tok_s_sd","decode_tok_s_sd","peak_rss_mb","time","host","build","blas_core","context","prompt_file"]'
check "every trial has every documented field" \
  jqe --argjson req "$req" -s 'all(.[]; . as $r | all($req[]; . as $k | $r | has($k)))' "$R1/trials.jsonl"
check "ok trials: positive speeds, sd with 2 repeats, no error, context 32" \
  jqe -s 'all(.[]; .status == "ok" and .error == null and .prefill_tok_s > 0 and .decode_tok_s > 0
     and (.prefill_tok_s_sd | type) == "number" and .repeats == 2 and .prompt_tokens == 32
     and .context == 32 and .new_tokens == 8 and .peak_rss_mb > 0 and (.time | test("Z$")))' "$R1/trials.jsonl"
check "slugs name the settings, the context and the trial" \
  jqe -s 'sort_by(.trial) | .[0].slug == "b=chunkwise__ck=16__h=1__w=1__ctx=32__i=1" and .[4].slug == "b=recurrent__ck=1__h=1__w=1__ctx=32__i=5"' "$R1/trials.jsonl"
check "recurrent settings collapse over chunk sizes (recorded as chunk_size 1)" \
  test "$(jq -s '[.[] | select(.backend == "recurrent")] | length' "$R1/trials.jsonl")" = 2
hdr=$(head -1 "$R1/summary.csv")
missing=""
for c in $(jq -r '.[]' <<<"$req"); do
  case ",$hdr," in *",$c,"*) ;; *) missing="$missing $c" ;; esac
done
check "summary.csv header has every column${missing:+ (missing:$missing)}" test -z "$missing"
check "summary.csv: one row per trial" test "$(($(wc -l < "$R1/summary.csv") - 1))" = 6
check "run_meta.json: provenance, bounds, command, fingerprint" \
  jqe '.tool == "xl-sweep" and (.commit | length) > 0 and (.host | length) > 0 and (.cpu | length) > 0
     and (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")) and (.model.fingerprint | length) == 16
     and .search == "grid" and .bounds.chunk_size == [16,32] and .bounds.workers == [1,2]
     and .repeats == 2 and .seed == 42 and (.command | index("--chunk-size")) != null
     and (.prompt_file | endswith("pydocs.txt"))' "$R1/run_meta.json"
# best.json: the fastest decode setting, or a simpler one whose difference from it is within
# the noise (95% intervals overlap); it says whether its lead is significant.
want=$(jq -c '.params | {backend, chunk_size, heads_per_band, workers}' "$R1/best.json")
check "best.json: the fastest decode setting, or one within the noise of it" \
  jqe -s --argjson w "$want" 'map(select(.status == "ok")) as $ok | ($ok | max_by(.decode_tok_s)) as $f
     | ($ok | map(select({backend, chunk_size, heads_per_band, workers} == $w)) | .[0]) as $b
     | $b != null and ($b.decode_tok_s + $b.decode_tok_s_ci95 >= $f.decode_tok_s - $f.decode_tok_s_ci95)' "$R1/trials.jsonl"
check "best.json metrics match that trial, with its interval" \
  jqe --slurpfile t "$R1/trials.jsonl" '(.params | {backend, chunk_size, heads_per_band, workers}) as $p
     | .metrics.decode_tok_s == ([$t[] | select({backend, chunk_size, heads_per_band, workers} == $p)][0].decode_tok_s)
       and (.metrics.decode_tok_s_ci95 | type) == "number" and (.significant | type) == "boolean"' "$R1/best.json"
check "best_profile.json: params (every run setting) + metrics" \
  jqe '(.params | keys) == ["backend","chunk_size","device","gemm","heads_per_band","kernels","matmul","workers"] and .metrics.decode_tok_s > 0' "$R1/best_profile.json"
check "trials record mean, sd, 95% interval, count and runs, and the machine load" \
  jqe -s 'all(.[]; .decode_n == 2 and (.decode_tok_s_runs | length) == 2 and .decode_tok_s_ci95 > 0
     and (.decode_tok_s_sd | type) == "number" and .load_1m >= 0 and .batch >= 1)' "$R1/trials.jsonl"
check "decode is measured once per setting of the knobs that can change it (heads, workers)" \
  jqe -s '. as $all | (map(select(.decode_from == null)) | length) == 2 and all(.[]; . as $r | .decode_from == null or
     ($all | map(select(.slug == $r.decode_from)) | .[0] | .decode_tok_s == $r.decode_tok_s and .workers == $r.workers
      and .heads_per_band == $r.heads_per_band and .decode_from == null))' "$R1/trials.jsonl"
"$TOOLS/xl-decode" --profile "$R1/best_profile.json" --ids 5,6,7 -n 2 --format ndjson > "$TMP/prof.json" 2>/dev/null
check "xl-decode --profile accepts the best profile" \
  test "$(jq -c '{backend, chunk_size, heads_per_band, workers}' "$TMP/prof.json")" = "$want"
check "ids file: exactly 32 ids" test "$(tr ',' '\n' < "$R1/ids/ctx32.ids" | grep -c .)" = 32

expect_status "prefill-only sweep (--new 0) runs xl-prefill" 0 "$SW" "${FAST[@]}" --new 0 --backend chunkwise \
  --chunk-size 16 --workers 1,2 --heads-per-band 1 -o "$TMP/pre"
check "prefill only: prefill speeds, null decode, objective prefill" \
  jqe -s 'all(.[]; .prefill_tok_s > 0 and .decode_tok_s == null and .new_tokens == 0)' "$TMP/pre/trials.jsonl"
check "prefill only: best.json by prefill, decode null" \
  jqe '.objective == "prefill" and .metrics.decode_tok_s == null and .metrics.prefill_tok_s > 0' "$TMP/pre/best.json"

# ---- 1b. knobs from the settings table: matmul, device, sampling ----
expect_status "matmul fp32,bf16 is a knob" 0 "$SW" "${FAST[@]}" --repeats 2 --backend chunkwise,recurrent --chunk-size 16 \
  --workers 1 --heads-per-band 1 --matmul bf16,fp32 -o "$TMP/mm"
check "matmul: 4 trials, named in the slug (mm=) and the record" \
  jqe -s 'length == 4 and ([.[] | select(.matmul == "bf16" and (.slug | test("__mm=bf16__")))] | length) == 2' "$TMP/mm/trials.jsonl"
check "matmul: the tool ran with it" jqe -s 'all(.[]; .status == "ok")' "$TMP/mm/trials.jsonl"
check "decode shared only between backends (prefill-only), never across matmul" \
  jqe -s '. as $all | (map(select(.decode_from != null)) | length) == 2 and all(.[]; . as $r | .decode_from == null
     or ($all | map(select(.slug == $r.decode_from))[0].matmul == $r.matmul))' "$TMP/mm/trials.jsonl"
check "run_meta.json: the knobs searched and the defaults the tools ran with" \
  jqe '.knobs == ["backend","chunk_size","heads_per_band","workers","matmul"] and .values.matmul == ["fp32","bf16"]
     and .defaults.chunk_size == 64 and .defaults.matmul == "fp32" and .noise.repeats == 2' "$TMP/mm/run_meta.json"
expect_status "--reuse no: every trial measures both speeds" 0 "$SW" "${FAST[@]}" --repeats 2 --backend chunkwise,recurrent \
  --chunk-size 16 --workers 1 --heads-per-band 1 --reuse no -o "$TMP/noreuse"
check "... no decode_from" jqe -s 'all(.[]; .decode_from == null and .decode_n == 2)' "$TMP/noreuse/trials.jsonl"
expect_status "--device with a device this machine lacks: refused" 2 "$SW" "${FAST[@]}" --backend chunkwise --chunk-size 16 \
  --workers 1 --heads-per-band 1 --device cpu,cuda:7 -o "$TMP/dev"
stderr_has "... saying which and why, pointing at --skip-unavailable" 'device cuda:7 is not available here \(.*\).*--skip-unavailable'
check "... before making the run directory" test ! -e "$TMP/dev"
expect_status "--skip-unavailable sweeps the rest" 0 "$SW" "${FAST[@]}" --backend chunkwise --chunk-size 16 --workers 1 \
  --heads-per-band 1 --device cpu,cuda:7 --skip-unavailable -o "$TMP/dev2"
stderr_has "... with a warning" 'cuda:7 is not available here.*skipped'
check "... measuring cpu only" jqe -s 'length == 1 and .[0].device == "cpu" and (.[0].slug | startswith("dev=cpu__"))' "$TMP/dev2/trials.jsonl"
expect_status "sampling is an opt-in knob with a recorded seed" 0 "$SW" "${FAST[@]}" --repeats 2 --backend chunkwise \
  --chunk-size 16 --workers 1 --heads-per-band 1 --sampling greedy,t0.8k40 --sampling-seed 9 -o "$TMP/smp"
check "... greedy and t0.8k40, the sampled one with its seed; prefill shared (sampling cannot change it)" \
  jqe -s 'length == 2 and ([.[].sampling] | sort) == ["greedy","t0.8k40"] and (map(select(.sampling == "t0.8k40"))[0]
     | .sampling_seed == "9" and .prefill_from != null and .decode_from == null)' "$TMP/smp/trials.jsonl"
expect_status "a bad sampling is a usage error" 2 "$SW" --sampling t0 --print-config
expect_status "a bad matmul is a usage error" 2 "$SW" --matmul fp16 --print-config
stderr_has "... naming the flag" 'matmul.*fp16'

# ---- 2. progress on stderr when asked (as on a terminal) ----
expect_status "progress lines with --progress yes" 0 "$SW" "${FAST[@]}" --backend chunkwise --chunk-size 16 \
  --workers 1 --heads-per-band 1,2 -o "$TMP/prog" --progress yes
stderr_has "progress: trial i/N, best so far and ETA" '\[2/2\] b=chunkwise__ck=16__h=2__w=1__ctx=32__i=2: prefill .* \| best decode .* \| ETA'

# ---- 3. a fresh run refuses a used directory; kill -9 then --resume ----
expect_status "fresh run on a used directory is refused" 1 "$SW" "${FAST[@]}" -o "$R1"
stderr_has "... pointing at --resume" 'already holds 6 trials.*--resume'
cat > "$TMP/slow.sh" <<'EOF'
#!/bin/sh
# test wrapper: every tool run takes a little longer, so a kill lands mid-sweep
sleep 0.25
exec "$@"
EOF
chmod +x "$TMP/slow.sh"
R2=$TMP/killed
KOPT=("${FAST[@]}" --backend chunkwise --chunk-size 16,32 --workers 1,2 --heads-per-band 1 --context 32,40)
"$SW" "${KOPT[@]}" --tool-prefix "$TMP/slow.sh" -o "$R2" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  [ -f "$R2/trials.jsonl" ] && [ "$(wc -l < "$R2/trials.jsonl")" -ge 2 ] && break
  sleep 0.02
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
n_before=$(wc -l < "$R2/trials.jsonl")
check "killed mid-run (2..7 of 8 trials recorded: $n_before)" test "$n_before" -ge 2 -a "$n_before" -lt 8
head -2 "$R2/trials.jsonl" > "$TMP/first2"
# A kill during the append would leave half a line: simulate one.
printf '{"trial":9,"slug":"b=chunkwise__ck=3' >> "$R2/trials.jsonl"
expect_status "--resume continues the killed run" 0 "$SW" --resume "$R2" --progress no --tool-prefix ""
stderr_has "the torn last line is dropped" 'dropped a torn last line'
check "resumed: 8 trials, each exactly once" \
  test "$(jq -s -c '[.[].trial] | sort' "$R2/trials.jsonl")" = "[1,2,3,4,5,6,7,8]"
check "resumed: no slug twice" test "$(jq -r .slug "$R2/trials.jsonl" | sort | uniq -d | wc -l)" = 0
check "resumed: the finished trials were kept, not redone" \
  test "$(head -2 "$R2/trials.jsonl")" = "$(cat "$TMP/first2")"
check "resumed: only the missing trials were measured" \
  jqe --argjson n "$n_before" 'select(.resumed == $n and .measured == 8 - $n)' "$TMP/out"
"$SW" plan "${KOPT[@]}" -o "$TMP/killplan" > "$TMP/killplan.jsonl"
check "resumed run has the same slugs as its plan" \
  test "$(jq -r .slug "$R2/trials.jsonl" | sort)" = "$(jq -r .slug "$TMP/killplan.jsonl" | sort)"
check "summary.csv rewritten with all 8 rows" test "$(($(wc -l < "$R2/summary.csv") - 1))" = 8
expect_status "--resume rejects a changed plan setting" 2 "$SW" --resume "$R2" --chunk-size 64
stderr_has "... naming it" 'chunk-size'
expect_status "--resume of a finished run measures nothing" 0 "$SW" --resume "$R2" --progress no
check "... and says so" jqe 'select(.measured == 0 and .resumed == 8)' "$TMP/out"

# ---- 4. seeded searches are reproducible ----
RND=(--search random --trials 5 --backend chunkwise,recurrent --chunk-size 8-128*2 --workers 1,2 --heads-per-band 1,2 --context 32)
"$SW" plan "${FAST[@]}" "${RND[@]}" --seed 11 -o "$TMP/r1" | jq -r .slug > "$TMP/r1.slugs"
"$SW" plan "${FAST[@]}" "${RND[@]}" --seed 11 -o "$TMP/r2" | jq -r .slug > "$TMP/r2.slugs"
"$SW" plan "${FAST[@]}" "${RND[@]}" --seed 12 -o "$TMP/r3" | jq -r .slug > "$TMP/r3.slugs"
check "random: 5 distinct settings" test "$(sort -u "$TMP/r1.slugs" | wc -l)" = 5
check "random: same seed, same settings in the same order" cmp -s "$TMP/r1.slugs" "$TMP/r2.slugs"
check "random: another seed, other settings" sh -c "! cmp -s '$TMP/r1.slugs' '$TMP/r3.slugs'"
expect_status "random sweep runs" 0 "$SW" "${FAST[@]}" "${RND[@]}" --seed 11 -o "$TMP/r4"
check "random sweep measures its plan" test "$(jq -r .slug "$TMP/r4/trials.jsonl" | sort)" = "$(sort "$TMP/r1.slugs")"
# GA and NSGA-II choose from measured speeds; a wrapper that answers with speeds computed
# from the settings (and passes --tokenize to the real tool) makes two runs comparable.
# Like the real tools, decode speed depends only on the knobs that can change it
# (workers, heads per band), so the sweep may share it between backends and chunk sizes.
cat > "$TMP/fake.sh" <<'EOF'
#!/bin/sh
# test wrapper: a deterministic stand-in for xl-decode's record (speeds are a made-up
# function of the settings); tokenizing goes to the real tool
tool=$1; shift
case " $* " in *" --tokenize "*) exec "$tool" "$@" ;; esac
b=chunkwise ck=64 w=1 h=1
while [ $# -gt 0 ]; do
  case $1 in --backend) b=$2; shift ;; --chunk-size) ck=$2; shift ;; --workers) w=$2; shift ;; --heads-per-band) h=$2; shift ;; esac
  shift
done
p=$((2000 - (ck - 48) * (ck - 48) / 8 + 300 * w - 40 * h))
d=$((300 + 25 * w + 7 * h))
[ "$b" = recurrent ] && p=$((p / 5))
printf '{"tool":"xl-decode","prefill_s":0.5,"prefill_tok_s":%d,"seconds":0.5,"tok_s":%d,"decode_s":0.25,"decode_tok_s":%d,"peak_rss_mb":21,"blas_core":"fake","fingerprint":"00000000000000ff","stop":"length"}\n' "$p" "$p" "$d"
EOF
chmod +x "$TMP/fake.sh"
# Two repeats of the same answer: a spread of zero, so every difference is real (with one
# repeat the spread is unknown and every difference would be a tie).
GA=("${FAST[@]}" --repeats 2 --tool-prefix "$TMP/fake.sh" --search ga --population 5 --elites 1 --generations 4
    --backend chunkwise,recurrent --chunk-size 8-256*2 --workers 1-4 --heads-per-band 1-4)
"$SW" "${GA[@]}" --seed 5 -o "$TMP/ga1" > /dev/null 2>&1
"$SW" "${GA[@]}" --seed 5 -o "$TMP/ga2" > /dev/null 2>&1
"$SW" "${GA[@]}" --seed 6 -o "$TMP/ga3" > /dev/null 2>&1
slugs_by_trial() { jq -s -r 'sort_by(.trial) | .[].slug' "$1"; }
slugs_by_trial "$TMP/ga1/trials.jsonl" > "$TMP/ga1.s"; slugs_by_trial "$TMP/ga2/trials.jsonl" > "$TMP/ga2.s"
slugs_by_trial "$TMP/ga3/trials.jsonl" > "$TMP/ga3.s"
check "ga: several distinct settings measured ($(wc -l < "$TMP/ga1.s"))" test "$(wc -l < "$TMP/ga1.s")" -ge 6
check "ga: same seed, same sequence of settings" cmp -s "$TMP/ga1.s" "$TMP/ga2.s"
check "ga: another seed, another sequence" sh -c "! cmp -s '$TMP/ga1.s' '$TMP/ga3.s'"
check "ga: no setting measured twice" test "$(sed 's/__i=.*//' "$TMP/ga1.s" | sort | uniq -d | wc -l)" = 0
check "ga: later generations beat the random first one" \
  jqe -s '(map(select(.trial <= 5)) | max_by(.decode_tok_s).decode_tok_s) < (max_by(.decode_tok_s).decode_tok_s)' "$TMP/ga1/trials.jsonl"
PA=("${GA[@]}" --search pareto --objective pareto)
"$SW" "${PA[@]}" --seed 5 -o "$TMP/pa1" > /dev/null 2>&1
"$SW" "${PA[@]}" --seed 5 -o "$TMP/pa2" > /dev/null 2>&1
check "pareto: same seed, same sequence" \
  test "$(slugs_by_trial "$TMP/pa1/trials.jsonl")" = "$(slugs_by_trial "$TMP/pa2/trials.jsonl")"
check "pareto: best.json lists a non-dominated front that nothing measured beats" \
  jqe --slurpfile t "$TMP/pa1/trials.jsonl" '(.front | length) >= 1 and all(.front[]; . as $f |
     all($t[]; (.prefill_tok_s > $f.prefill_tok_s and .decode_tok_s > $f.decode_tok_s) | not))' "$TMP/pa1/best.json"

# ---- 5. failed trials are recorded and the sweep goes on ----
cat > "$TMP/fail.sh" <<'EOF'
#!/bin/sh
# test wrapper: chunk size 32 crashes (SIGSEGV), 64 hangs, 128 stops like the memory
# watchdog (exit 3); everything else runs the real tool
case " $* " in
  *" --chunk-size 32 "*) kill -SEGV $$ ;;
  *" --chunk-size 64 "*) sleep 30 ;;
  *" --chunk-size 128 "*) echo "xl-decode: memory hard limit reached" >&2; exit 3 ;;
esac
exec "$@"
EOF
chmod +x "$TMP/fail.sh"
expect_status "a sweep with failing trials still finishes" 0 "$SW" "${FAST[@]}" --backend chunkwise \
  --chunk-size 16,32,64,128 --workers 1 --heads-per-band 1 --tool-prefix "$TMP/fail.sh" --trial-timeout 1 -o "$TMP/fail"
F=$TMP/fail/trials.jsonl
check "4 trials recorded, 3 failed" jqe 'select(.trials == 4 and .failed == 3)' "$TMP/out"
check "crash: failed with the signal" \
  jqe -s '.[1].status == "failed" and (.[1].error | test("signal 11"))' "$F"
check "hang: failed with the timeout" jqe -s '.[2].status == "failed" and (.[2].error | test("timed out"))' "$F"
check "watchdog stop: failed with exit 3" jqe -s '.[3].status == "failed" and (.[3].error | test("exit 3"))' "$F"
check "failed trials: null speeds, never NaN" \
  jqe -s '[.[] | select(.status == "failed")] | all(.prefill_tok_s == null and .decode_tok_s == null)' "$F"
check "the good trial is ok and best" \
  jqe -s '.[0].status == "ok"' "$F"
check "best.json names the only ok setting" jqe '.params.chunk_size == 16' "$TMP/fail/best.json"
check "no NaN anywhere in the files" sh -c "! grep -qi nan '$F' '$TMP/fail/summary.csv'"

# ---- 6. plan / trial / collect ----
PL=("${FAST[@]}" --backend chunkwise --chunk-size 16 --workers 1,2 --heads-per-band 1)
"$SW" plan "${PL[@]}" -o "$TMP/dist" > "$TMP/plan.jsonl"
check "plan: 2 specs with settings, slug, trial and paths" \
  jqe -s 'length == 2 and .[1].trial == 2 and .[1].workers == 2 and (.[0].ids_file | startswith("/"))
     and .[0].slug == "b=chunkwise__ck=16__h=1__w=1__ctx=32__i=1" and .[0].new_tokens == 8' "$TMP/plan.jsonl"
check "plan: also saved as RUN/plan.jsonl" cmp -s "$TMP/plan.jsonl" "$TMP/dist/plan.jsonl"
sed -n 1p "$TMP/plan.jsonl" | "$SW" trial - > "$TMP/rec1.jsonl"
check "trial (stdin): one ok record with the spec's slug" \
  jqe -s 'length == 1 and .[0].status == "ok" and .[0].slug == "b=chunkwise__ck=16__h=1__w=1__ctx=32__i=1"' "$TMP/rec1.jsonl"
"$SW" trial "$(sed -n 2p "$TMP/plan.jsonl")" > "$TMP/rec2.jsonl"
check "trial (argument): the second record" jqe '.trial == 2 and .workers == 2 and .status == "ok"' "$TMP/rec2.jsonl"
bad=$(sed -n 1p "$TMP/plan.jsonl" | jq -c '.chunk_size = 32 | .slug = "b=chunkwise__ck=32__h=1__w=1__ctx=32__i=1"')
expect_status "trial: a failed trial prints its record and exits 1" 1 "$SW" trial --tool-prefix "$TMP/fail.sh" "$bad"
check "... the record says failed, with the error" jqe '.status == "failed" and (.error | test("signal 11"))' "$TMP/out"
expect_status "trial: a slug that does not match the settings is refused" 1 \
  "$SW" trial "$(sed -n 1p "$TMP/plan.jsonl" | jq -c '.chunk_size = 32')"
expect_status "collect from files" 0 "$SW" collect "$TMP/dist" "$TMP/rec1.jsonl" "$TMP/rec2.jsonl"
check "collect: 2 added" jqe '.added == 2 and .trials == 2' "$TMP/out"
check "collect: trials.jsonl, summary.csv, best.json" \
  sh -c "test \$(wc -l < '$TMP/dist/trials.jsonl') = 2 && test -s '$TMP/dist/summary.csv' && test -s '$TMP/dist/best.json'"
cat "$TMP/rec1.jsonl" "$TMP/rec2.jsonl" | "$SW" collect "$TMP/dist" > "$TMP/out"
check "collect again (stdin): deduped by slug" jqe '.added == 0 and .skipped == 2 and .trials == 2' "$TMP/out"
jq -c '.status = "failed" | .error = "made up" | .decode_tok_s = null' "$TMP/rec1.jsonl" > "$TMP/recfail.jsonl"
"$SW" collect "$TMP/dist2" "$TMP/recfail.jsonl" > /dev/null
check "collect: no best.json while nothing succeeded" test ! -e "$TMP/dist2/best.json"
"$SW" collect "$TMP/dist2" "$TMP/rec1.jsonl" > "$TMP/out"
check "collect: an ok record replaces a failed one with its slug" \
  jqe '.replaced == 1 and .added == 0 and .trials == 1' "$TMP/out"
check "... in trials.jsonl too" jqe -s 'length == 1 and .[0].status == "ok"' "$TMP/dist2/trials.jsonl"
"$SW" collect "$TMP/dist2" "$TMP/recfail.jsonl" > "$TMP/out"
check "collect: a failed record never replaces an ok one" \
  jqe -s '.[0].skipped == 1' "$TMP/out"
check "collect: the fingerprint reaches run_meta.json" jqe '.model.fingerprint | length == 16' "$TMP/dist/run_meta.json"

# ---- 7. GNU parallel fan-out and the Slurm array script ----
PAR=(--backend chunkwise,recurrent --chunk-size 16,32 --workers 1,2 --heads-per-band 1 --context 32,40)
"$SW" "${FAST[@]}" "${PAR[@]}" -o "$TMP/local" > /dev/null
expect_status "sweep-parallel.sh runs the plan with GNU parallel" 0 \
  bash "$ROOT/pipelines/sweep-parallel.sh" -j 2 --xl-sweep "$SW" "$TMP/par" -- "${FAST[@]}" "${PAR[@]}"
check "parallel: the same trials (slugs) as the local run" \
  test "$(jq -r .slug "$TMP/par/trials.jsonl" | sort)" = "$(jq -r .slug "$TMP/local/trials.jsonl" | sort)"
check "parallel: every trial has both speeds (shared ones filled in by collect)" \
  jqe -s 'all(.[]; .status == "ok" and .prefill_tok_s > 0 and .decode_tok_s > 0)' "$TMP/par/trials.jsonl"
check "parallel: the plan shared decode between chunk sizes and backends" \
  jqe -s '(map(select(.decode_from != null)) | length) > 0' "$TMP/par/trials.jsonl"
check "parallel: joblog has one line per trial, all exit 0" \
  test "$(awk 'NR > 1 && $7 == 0' "$TMP/par/joblog" | wc -l)" = 12
check "parallel: summary.csv rows in trial order" \
  test "$(cut -d, -f1 "$TMP/par/summary.csv" | tail -n +2 | tr '\n' ' ')" = "1 2 3 4 5 6 7 8 9 10 11 12 "
expect_status "parallel --resume-failed reruns nothing when all passed" 0 \
  bash "$ROOT/pipelines/sweep-parallel.sh" --resume-failed --xl-sweep "$SW" "$TMP/par"
check "... and leaves 12 trials" test "$(wc -l < "$TMP/par/trials.jsonl")" = 12
"$SW" plan "${FAST[@]}" --backend chunkwise --chunk-size 16 --workers 1,2 --heads-per-band 1 -o "$TMP/slurm" > /dev/null
for i in 0 1; do
  SLURM_ARRAY_TASK_ID=$i XL_SWEEP="$SW" bash "$ROOT/pipelines/sweep-slurm.sbatch" "$TMP/slurm" || true
done
"$SW" collect "$TMP/slurm" "$TMP"/slurm/records/task-*.jsonl > "$TMP/out"
check "slurm array script: one record per task, collected" jqe '.added == 2 and .trials == 2' "$TMP/out"

# ---- 8. --config and --print-config precedence ----
cat > "$TMP/cfg.json" <<'EOF'
{"_comment": "keys as the flags", "chunk_size": "8,16", "repeats": 5, "workers": [1, 2], "search": "random"}
EOF
expect_status "--print-config" 0 "$SW" --config "$TMP/cfg.json" --repeats 2 --print-config
cp "$TMP/out" "$TMP/pc.json"
check "command line > config file > defaults" \
  jqe '.repeats == 2 and .chunk_size == "8,16" and .workers == "1,2" and .search == "random" and .new == 32
     and ._sources.repeats == "command line" and ._sources.chunk_size == "config" and ._sources.new == "default"' "$TMP/pc.json"
jq 'del(._sources)' "$TMP/pc.json" > "$TMP/pc2.json"
expect_status "the printed config is itself a valid --config" 0 "$SW" --config "$TMP/pc2.json" --print-config
check "... giving the same settings" test "$(jq -c 'del(._sources)' "$TMP/out")" = "$(jq -c . "$TMP/pc2.json")"
echo '{"chunk_sizes": "8"}' > "$TMP/bad.json"
expect_status "config: unknown key is a usage error" 2 "$SW" --config "$TMP/bad.json" --print-config
stderr_has "... naming it" "chunk_sizes"

# ---- 9. usage errors ----
expect_status "--help exits 0" 0 "$SW" --help
check "--help on stdout" grep -q 'Usage: xl-sweep' "$TMP/out"
expect_status "unknown option" 2 "$SW" --bogus
stderr_has "... named as unknown" "unknown option '--bogus'"
expect_status "bad range" 2 "$SW" --chunk-size 64-16 --print-config
stderr_has "... explained" 'chunk-size.*ends before it starts'
expect_status "junk number" 2 "$SW" --workers 1,x --print-config
expect_status "ga cannot optimize pareto" 2 "$SW" --search ga --objective pareto --print-config
expect_status "plan refuses ga" 2 "$SW" plan --search ga -o "$TMP/nope"
expect_status "trial: bad spec" 1 "$SW" trial '{"trial":1}'
expect_status "missing prompt file" 1 "$SW" --prompt-file "$TMP/none.txt" -o "$TMP/np" --progress no
finish
