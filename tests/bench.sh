#!/usr/bin/env bash
# make bench: the speed measurements, one NDJSON record per measurement on stdout (and
# appended to build/bench.ndjson), each with provenance (commit, CPU, cores, threads, time,
# OpenBLAS core). In order:
#   1. the machine's limits in this run: memory bandwidth (triad and read, 3 x 512 MB),
#      OpenBLAS SGEMM GFLOP/s (2048^3) on 1 and on all threads;
#   2. prefill tok/s at 512, 2048, 8192 tokens and decode tok/s after 128 and 8192 tokens,
#      with roofline and efficiency, on the default model and on a random-weight 1.3B
#      BF16 checkpoint (made once by xl-init into build/bench-models/, reused after);
#      peak RSS against weights + state;
#   2b. the same for a mixed mLSTM/sLSTM (xlstm_v1) model of about 350M parameters (BF16);
#   3. the tokenizer's encode MB/s (tests/bench_tokenizer.c) when present;
#   4. observability overhead: xl-decode tok/s with and without --stats-log/--mem-log/
#      --metrics-file, when xl-decode has those flags;
#   5. a "targets" record: the issue's goals against what was measured.
# Helpers tests/bench_*.c are built by the Makefile (build/tests/bench_*).
# Environment: XL_BENCH_WORKERS (default: all cores), XL_BENCH_BIG=0 (skip the 1.3B model),
# XL_BENCH_LONG (the long context, default 8192), XL_BENCH_BUDGET (seconds the 1.3B long
# prefill may take, default 420: past it the prefill stops at a segment boundary, a
# prefill_budget_stop record says where, and the long decode runs at the context reached),
# XL_BENCH_V1=0 (skip the v1 model), XL_BENCH_OUT (default build/bench.ndjson).
# Runs in 10-14 minutes on a 2-core machine (most of it the 1.3B prefill).
set -eu
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${XL_BENCH_OUT:-$ROOT/build/bench.ndjson}
W=${XL_BENCH_WORKERS:-$(nproc)}
LONG=${XL_BENCH_LONG:-8192}
BIG=${XL_BENCH_BIG:-1}
BUDGET=${XL_BENCH_BUDGET:-420}   # seconds for the 1.3B long prefill; it stops early past that
MODELS=$ROOT/build/bench-models
mkdir -p "$ROOT/build" "$MODELS"

say() { echo "bench: $*" >&2; }

# ---- build the helpers (the Makefile builds tests/bench_*.c into build/tests/) ----
helpers=$(for src in tests/bench_*.c; do echo "build/tests/$(basename "$src" .c)"; done)
# shellcheck disable=SC2086
make -s bin/xl-init bin/xl-decode $helpers >&2
H=build/tests

# ---- provenance ----
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- lib tools 2>/dev/null || commit="$commit-dirty"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cores=$(nproc)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
emit() {   # reads NDJSON records on stdin, adds provenance, prints and appends them
  # the 1-minute load average when the measurement started: other work on the machine skews every number
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  jq -c --arg commit "$commit" --arg cpu "$cpu" --argjson cores "$cores" --argjson workers "$W" --arg run "$started" \
    --argjson load "$load" \
    '{commit: $commit, cpu: $cpu, cores: $cores, threads: $workers, run: $run, load1: $load, time: (now | todate)} + .' | tee -a "$OUT"
}
say "commit $commit, $cpu, $cores cores, $W workers; records also in $OUT"

# ---- 1. limits ----
lim=$(mktemp)
trap 'rm -f "$lim"' EXIT
threads=1; [ "$W" -gt 1 ] && threads="1,$W"
$H/bench_limits --mb 512 --reps 5 --threads "$threads" | emit | tee "$lim"
BW=$(jq -s 'map(select(.what == "read_bw")) | max_by(.gb_s) | .gb_s' "$lim")
GF=$(jq -s 'map(select(.what == "sgemm")) | max_by(.gflop_s) | .gflop_s' "$lim")
say "limits: read bandwidth $BW GB/s, SGEMM $GF GFLOP/s (best over thread counts)"

# ---- 2. models ----
res=$(mktemp)
trap 'rm -f "$lim" "$res"' EXIT
marks="512,2048"; [ "$LONG" -gt 2048 ] && marks="$marks,$LONG"
say "default model: prefill to $LONG tokens, decode"
$H/bench_model models/xlstm-tiny-pydocs --label default --marks "$marks" --short-ctx 128 --steps 128 --workers "$W" \
  --bw "$BW" --gflops "$GF" | emit | tee -a "$res"
if [ "$BIG" = 1 ]; then
  big=$MODELS/1.3b-bf16
  if [ ! -f "$big/.complete" ]; then
    say "making the 1.3B BF16 checkpoint in $big (once)"
    bin/xl-init --preset 1.3b --dtype bf16 --seed 1 -o "$big" -q > "$big.init.json"
    touch "$big/.complete"
  fi
  say "1.3B BF16: prefill to $LONG tokens, decode (several minutes)"
  $H/bench_model "$big" --label 1.3b-bf16 --marks "$marks" --short-ctx 128 --steps 64 --workers "$W" \
    --bw "$BW" --gflops "$GF" --budget "$BUDGET" | emit | tee -a "$res"
fi

# ---- 2b. the original xLSTM: a mixed mLSTM/sLSTM model of about 350M parameters ----
if [ "${XL_BENCH_V1:-1}" = 1 ]; then
  v1=$MODELS/v1-350m-bf16
  if [ ! -f "$v1/.complete" ]; then
    say "making the mixed m/s v1 checkpoint in $v1 (once)"
    bin/xl-init --arch v1 --preset 350m -D 1024 --blocks 48 --slstm-at 3,11,19,27,35,43 --dtype bf16 --seed 1 -o "$v1" -q > "$v1.init.json"
    touch "$v1/.complete"
  fi
  say "v1 mixed m/s: prefill to 2048 tokens, decode"
  $H/bench_model "$v1" --label v1-350m-bf16 --marks 512,2048 --short-ctx 128 --steps 16 --workers "$W" \
    --bw "$BW" --gflops "$GF" | emit | tee -a "$res"
fi

# ---- 3. tokenizer ----
if [ -x $H/bench_tokenizer ]; then
  say "tokenizer encode"
  $H/bench_tokenizer --mb 8 --reps 3 | emit
fi

# ---- 4. observability overhead ----
if [ -x bin/xl-decode ] && bin/xl-decode --help 2>/dev/null | grep -q -- --metrics-file; then
  say "observability overhead (default model, 1024 decode tokens, 9 alternating runs each, medians)"
  obs=$(mktemp -d)
  trap 'rm -f "$lim" "$res"; rm -rf "$obs"' EXIT
  run_dec() { bin/xl-decode --ids 5,7,9,11 -n 1024 --greedy --ignore-eos --format ndjson --workers "$W" "$@" 2>/dev/null | jq '.decode_tok_s'; }
  plain=() logged=()
  for i in 1 2 3 4 5 6 7 8 9; do
    plain+=("$(run_dec)")
    logged+=("$(run_dec --stats-log "$obs/s.csv" --mem-log "$obs/m.csv" --metrics-file "$obs/metrics.prom")")
  done
  jq -n -c --argjson a "$(printf '%s\n' "${plain[@]}" | jq -s .)" --argjson b "$(printf '%s\n' "${logged[@]}" | jq -s .)" \
    'def median: sort | .[length / 2 | floor];
     {bench: "observability_overhead", model: "default", tokens: 1024,
      plain_tok_s: ($a | median), logged_tok_s: ($b | median), plain_runs: $a, logged_runs: $b,
      overhead: (1 - ($b | median) / ($a | median)), goal: 0.02}' | emit
fi

# ---- 5. targets ----
jq -s -c --arg long "$LONG" '
  def pick(f): map(select(f)) | first;
  (pick(.bench == "decode" and .model == "1.3b-bf16" and .context == 128)) as $d
  | (pick(.bench == "prefill" and .model == "1.3b-bf16" and .tokens == 2048)) as $p
  | (pick(.bench == "decode_ctx_ratio" and .model == "1.3b-bf16")) as $r
  | (pick(.bench == "memory" and .model == "1.3b-bf16")) as $m
  | {bench: "targets", model: "1.3b-bf16",
     decode_efficiency: $d.efficiency, decode_goal: 0.8, decode_ok: (($d.efficiency // 0) >= 0.8),
     prefill2048_efficiency: $p.efficiency, prefill_goal: 0.6, prefill_ok: (($p.efficiency // 0) >= 0.6),
     decode_long_over_short: $r.ratio, ctx_ok: ((($r.ratio // 0) - 1 | fabs) <= 0.05),
     rss_over_weights_state: $m.rss_over_weights_state, rss_ok: (($m.rss_over_weights_state // 99) <= 1.10)}' "$res" | emit
say "done"
