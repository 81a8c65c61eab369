#!/usr/bin/env bash
# make bench: the speed measurements, one NDJSON record per measurement on stdout (and
# appended to build/bench.ndjson), each with provenance (commit, CPU, cores, threads, time,
# OpenBLAS core). In order:
#   1. the machine's limits in this run: memory bandwidth (triad and read, 3 x 512 MB),
#      OpenBLAS SGEMM GFLOP/s (2048^3), and on a CPU with BF16 units the BF16 GEMM GFLOP/s
#      (oneDNN), and oneDNN's fp32 matmul where oneDNN loads, on 1 thread and on each thread
#      count of XL_BENCH_WORKERS;
#   2. per thread count W of XL_BENCH_WORKERS: prefill tok/s at 1024, 2048, 8192 tokens and
#      decode tok/s after 128 and 8192 tokens, with roofline (the limits at W threads) and
#      efficiency, on the default model and on a random-weight 1.3B BF16 checkpoint (made
#      once by xl-init into build/bench-models/, reused after); peak RSS against weights +
#      state; the 1.3B prefill again with --matmul bf16 (on the CPU's BF16 units where it
#      has them: the record's bf16_gemm says what ran), against the BF16 GEMM ceiling, and
#      with --gemm onednn (oneDNN's fp32 matmul) against oneDNN's fp32 ceiling (the default
#      model's prefill too);
#   2b. the same for a mixed mLSTM/sLSTM (xlstm_v1) model of about 350M parameters (BF16);
#   2c. when python3 imports torch and transformers and tests/hf_bench.py is there: Hugging
#      Face transformers (fp32, --threads W) on the same checkpoints, and hf_ratio records
#      (xltools tok/s over HF tok/s at the same lengths and threads);
#   3. the tokenizer's encode MB/s (tests/bench_tokenizer.c) when present;
#   4. observability overhead: xl-decode tok/s with and without --stats-log/--mem-log/
#      --metrics-file, when xl-decode has those flags (at the largest W);
#   5. "targets" records per W, and a "scaling" record across the thread counts: the
#      issue's goals against what was measured.
# Helpers tests/bench_*.c are built by the Makefile (build/tests/bench_*).
# Environment: XL_BENCH_WORKERS (thread counts, e.g. 2,16; default: all cores),
# XL_BENCH_BIG=0 (skip the 1.3B model), XL_BENCH_LONG (the long context, default 8192),
# XL_BENCH_BUDGET (seconds the 1.3B long prefill may take, default 420: past it the prefill
# stops at a segment boundary, a prefill_budget_stop record says where, and the long decode
# runs at the context reached), XL_BENCH_V1=0 (skip the v1 model), XL_BENCH_HF=0 (skip HF),
# XL_BENCH_PROFILE=DIR (a --profile-log per model and thread count into DIR),
# XL_BENCH_OUT (default build/bench.ndjson).
# Runs in 12-16 minutes on a 2-core machine with one thread count (most of it the 1.3B
# prefill); each further thread count adds a run of section 2.
set -eu
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${XL_BENCH_OUT:-$ROOT/build/bench.ndjson}
WLIST=${XL_BENCH_WORKERS:-$(nproc)}
IFS=, read -r -a WS <<< "$WLIST"
for w in "${WS[@]}"; do
  case "$w" in ''|*[!0-9]*|0) echo "bench: XL_BENCH_WORKERS: '$w' is not a thread count >= 1 (e.g. 2,16)" >&2; exit 2 ;; esac
done
W=${WS[0]}
WMAX=$(printf '%s\n' "${WS[@]}" | sort -n | tail -1)
PROF=${XL_BENCH_PROFILE:-}
[ -n "$PROF" ] && mkdir -p "$PROF"
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
say "commit $commit, $cpu, $cores cores, workers $WLIST; records also in $OUT"

# ---- 1. limits ----
lim=$(mktemp)
trap 'rm -f "$lim"' EXIT
threads=$(printf '%s\n' 1 "${WS[@]}" | sort -n -u | paste -sd, -)
$H/bench_limits --mb 512 --reps 5 --threads "$threads" | emit | tee "$lim"
limit() {   # what field threads: the measurement at that thread count (0 if none)
  jq -s --arg w "$1" --arg f "$2" --argjson t "$3" 'map(select(.what == $w and .threads == $t)) | (first // {})[$f] // 0' "$lim"
}
for w in "${WS[@]}"; do
  say "limits at $w threads: read bandwidth $(limit read_bw gb_s "$w") GB/s, SGEMM $(limit sgemm gflop_s "$w") GFLOP/s (oneDNN fp32 $(limit onednn_sgemm gflop_s "$w")), BF16 GEMM $(limit bf16_gemm gflop_s "$w") GFLOP/s"
done

# ---- 2. models, per thread count ----
res=$(mktemp)
hf=$(mktemp)
trap 'rm -f "$lim" "$res" "$hf"' EXIT
# prefill rates are recorded at segment boundaries (1024 tokens): 1024, 2048 and the long one
marks="1024,2048"; [ "$LONG" -gt 2048 ] && marks="$marks,$LONG"
big=$MODELS/1.3b-bf16
if [ "$BIG" = 1 ] && [ ! -f "$big/.complete" ]; then
  say "making the 1.3B BF16 checkpoint in $big (once)"
  bin/xl-init --preset 1.3b --dtype bf16 --seed 1 -o "$big" -q > "$big.init.json"
  touch "$big/.complete"
fi
v1=$MODELS/v1-350m-bf16
if [ "${XL_BENCH_V1:-1}" = 1 ] && [ ! -f "$v1/.complete" ]; then
  say "making the mixed m/s v1 checkpoint in $v1 (once)"
  bin/xl-init --arch v1 --preset 350m -D 1024 --blocks 48 --slstm-at 3,11,19,27,35,43 --dtype bf16 --seed 1 -o "$v1" -q > "$v1.init.json"
  touch "$v1/.complete"
fi
# HF transformers on the same checkpoints: when python3 has torch and transformers and the
# helper is there (tests/hf_bench.py: --device cpu --threads N)
HF=0
if [ "${XL_BENCH_HF:-1}" = 1 ]; then
  if [ ! -f tests/hf_bench.py ]; then say "HF: skipped (tests/hf_bench.py is not in this tree)"
  elif ! python3 -c "import torch, transformers" 2>/dev/null; then say "HF: skipped (python3 cannot import torch and transformers)"
  else HF=1; fi
fi
prof() {   # model label: --profile-log FILE when XL_BENCH_PROFILE is set
  [ -n "$PROF" ] && echo "--profile-log $PROF/$1.w$W.jsonl"
  return 0
}
for W in "${WS[@]}"; do
  BW=$(limit read_bw gb_s "$W"); GF=$(limit sgemm gflop_s "$W"); GB=$(limit bf16_gemm gflop_s "$W")
  GO=$(limit onednn_sgemm gflop_s "$W")
  say "[$W threads] default model: prefill to $LONG tokens, decode"
  # shellcheck disable=SC2046
  $H/bench_model models/xlstm-tiny-pydocs --label default --marks "$marks" --short-ctx 128 --steps 128 --workers "$W" \
    --bw "$BW" --gflops "$GF" $(prof default) | emit | tee -a "$res"
  if [ "$GO" != 0 ]; then
    say "[$W threads] default model, --gemm onednn: prefill to 2048 tokens"
    XL_GEMM=onednn $H/bench_model models/xlstm-tiny-pydocs --label default.gemm-onednn --marks 1024,2048 --workers "$W" \
      --prefill-only --gflops "$GO" | emit | tee -a "$res"
  fi
  if [ "$BIG" = 1 ]; then
    say "[$W threads] 1.3B BF16: prefill to $LONG tokens, decode (several minutes)"
    # shellcheck disable=SC2046
    $H/bench_model "$big" --label 1.3b-bf16 --marks "$marks" --short-ctx 128 --steps 64 --workers "$W" \
      --bw "$BW" --gflops "$GF" --budget "$BUDGET" $(prof 1.3b-bf16) | emit | tee -a "$res"
    say "[$W threads] 1.3B BF16, --matmul bf16: prefill to 2048 tokens"
    # shellcheck disable=SC2046
    XL_MATMUL=bf16 $H/bench_model "$big" --label 1.3b-bf16.matmul-bf16 --marks 1024,2048 --workers "$W" --prefill-only \
      --gflops "$([ "$GB" != 0 ] && echo "$GB" || echo "$GF")" $(prof 1.3b-bf16.matmul-bf16) | emit | tee -a "$res"
    if [ "$GO" != 0 ]; then
      say "[$W threads] 1.3B BF16, --gemm onednn: prefill to 2048 tokens"
      # shellcheck disable=SC2046
      XL_GEMM=onednn $H/bench_model "$big" --label 1.3b-bf16.gemm-onednn --marks 1024,2048 --workers "$W" --prefill-only \
        --gflops "$GO" $(prof 1.3b-bf16.gemm-onednn) | emit | tee -a "$res"
    fi
  fi
  # ---- 2b. the original xLSTM: a mixed mLSTM/sLSTM model of about 350M parameters ----
  if [ "${XL_BENCH_V1:-1}" = 1 ]; then
    say "[$W threads] v1 mixed m/s: prefill to 2048 tokens, decode"
    # shellcheck disable=SC2046
    $H/bench_model "$v1" --label v1-350m-bf16 --marks 1024,2048 --short-ctx 128 --steps 16 --workers "$W" \
      --bw "$BW" --gflops "$GF" $(prof v1-350m-bf16) | emit | tee -a "$res"
  fi
  # ---- 2c. HF transformers, same checkpoints and threads ----
  if [ "$HF" = 1 ]; then
    for m in "default:models/xlstm-tiny-pydocs:1024,2048" "1.3b-bf16:$big:1024,2048"; do
      label=${m%%:*}; rest=${m#*:}; dir=${rest%%:*}; lens=${rest#*:}
      [ "$label" = 1.3b-bf16 ] && [ "$BIG" != 1 ] && continue
      say "[$W threads] HF transformers on $label (fp32, --threads $W)"
      python3 tests/hf_bench.py "$dir" --device cpu --threads "$W" --prefill "$lens" --decode-after 128 --steps 16 \
        --label "$label" --budget "$BUDGET" 2>/dev/null | jq -c --argjson w "$W" '. + {threads: $w}' | emit | tee -a "$hf" || say "HF on $label failed"
    done
    # xltools over HF at the same model, length and threads
    jq -s -c --argjson w "$W" '
      (map(select(.bench == "hf_prefill" and .threads == $w))) as $hp
      | (map(select(.bench == "hf_decode" and .threads == $w))) as $hd
      | ($hp[] | . as $h | {bench: "hf_ratio", what: "prefill", model: $h.model, tokens: $h.tokens, threads: $w, hf_tok_s: $h.tok_s}),
        ($hd[] | . as $h | {bench: "hf_ratio", what: "decode", model: $h.model, context: $h.context, threads: $w, hf_tok_s: $h.tok_s})' "$hf" \
      > "$hf.pairs" || true
    while read -r pair; do
      what=$(jq -r .what <<< "$pair"); model=$(jq -r .model <<< "$pair")
      if [ "$what" = prefill ]; then
        n=$(jq .tokens <<< "$pair")
        ours=$(jq -s --arg m "$model" --argjson n "$n" --argjson w "$W" 'map(select(.bench == "prefill" and .model == $m and .tokens == $n and .threads == $w)) | (first // {}).tok_s // 0' "$res")
      else
        ours=$(jq -s --arg m "$model" --argjson w "$W" 'map(select(.bench == "decode" and .model == $m and .context == 128 and .threads == $w)) | (first // {}).tok_s // 0' "$res")
      fi
      jq -c --argjson ours "$ours" '. + {xltools_tok_s: (if $ours > 0 then $ours else null end),
        ratio: (if .hf_tok_s > 0 and $ours > 0 then $ours / .hf_tok_s else null end), goal: 1.5}' <<< "$pair" | emit | tee -a "$res"
      if [ "$what" = prefill ]; then   # the --gemm onednn prefill against the same HF run
        ours=$(jq -s --arg m "$model.gemm-onednn" --argjson n "$n" --argjson w "$W" 'map(select(.bench == "prefill" and .model == $m and .tokens == $n and .threads == $w)) | (first // {}).tok_s // 0' "$res")
        [ "$ours" != 0 ] && jq -c --argjson ours "$ours" '. + {model: (.model + ".gemm-onednn"), xltools_tok_s: $ours,
          ratio: (if .hf_tok_s > 0 then $ours / .hf_tok_s else null end), goal: 1.5}' <<< "$pair" | emit | tee -a "$res"
      fi
    done < "$hf.pairs"
    rm -f "$hf.pairs"
  fi
done
W=$WMAX

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
for w in "${WS[@]}"; do
  jq -s -c --argjson w "$w" '
    def pick(f): map(select(f and .threads == $w)) | first;
    (pick(.bench == "decode" and .model == "1.3b-bf16" and .context == 128)) as $d
    | (pick(.bench == "prefill" and .model == "1.3b-bf16" and .tokens == 2048)) as $p
    | (pick(.bench == "prefill" and .model == "1.3b-bf16.matmul-bf16" and .tokens == 2048)) as $pb
    | (pick(.bench == "prefill" and .model == "1.3b-bf16.gemm-onednn" and .tokens == 2048)) as $po
    | (pick(.bench == "decode_ctx_ratio" and .model == "1.3b-bf16")) as $r
    | (pick(.bench == "memory" and .model == "1.3b-bf16")) as $m
    | {bench: "targets", model: "1.3b-bf16", threads: $w,
       decode_efficiency: $d.efficiency, decode_goal: 0.8, decode_ok: (($d.efficiency // 0) >= 0.8),
       prefill2048_efficiency: $p.efficiency, prefill_goal: 0.65, prefill_ok: (($p.efficiency // 0) >= 0.65),
       prefill2048_onednn_efficiency: ($po.efficiency // null),
       onednn_over_openblas: (if ($p.tok_s // 0) > 0 and $po then $po.tok_s / $p.tok_s else null end),
       matmul_bf16_over_fp32: (if ($p.tok_s // 0) > 0 and $pb then $pb.tok_s / $p.tok_s else null end), matmul_bf16_goal: 2,
       bf16_gemm: ($pb.bf16_gemm // null),
       decode_long_over_short: $r.ratio, ctx_ok: ((($r.ratio // 0) - 1 | fabs) <= 0.05),
       rss_over_weights_state: $m.rss_over_weights_state, rss_ok: (($m.rss_over_weights_state // 99) <= 1.10)}' "$res" | W=$w emit
done
if [ "${#WS[@]}" -gt 1 ]; then
  jq -s -c --argjson lo "$(printf '%s\n' "${WS[@]}" | sort -n | head -1)" --argjson hi "$WMAX" '
    def tps(m; n; w): map(select(.bench == "prefill" and .model == m and .tokens == n and .threads == w)) | (first // {}).tok_s // 0;
    def dps(m; w): map(select(.bench == "decode" and .model == m and .context == 128 and .threads == w)) | (first // {}).tok_s // 0;
    {bench: "scaling", from_threads: $lo, to_threads: $hi,
     prefill2048_1_3b: (if tps("1.3b-bf16"; 2048; $lo) > 0 then tps("1.3b-bf16"; 2048; $hi) / tps("1.3b-bf16"; 2048; $lo) else null end),
     prefill2048_1_3b_goal: ($hi / $lo * 0.75),
     prefill2048_1_3b_onednn: (if tps("1.3b-bf16.gemm-onednn"; 2048; $lo) > 0 then tps("1.3b-bf16.gemm-onednn"; 2048; $hi) / tps("1.3b-bf16.gemm-onednn"; 2048; $lo) else null end),
     prefill2048_default: (if tps("default"; 2048; $lo) > 0 then tps("default"; 2048; $hi) / tps("default"; 2048; $lo) else null end),
     decode_1_3b: (if dps("1.3b-bf16"; $lo) > 0 then dps("1.3b-bf16"; $hi) / dps("1.3b-bf16"; $lo) else null end),
     decode_default: (if dps("default"; $lo) > 0 then dps("default"; $hi) / dps("default"; $lo) else null end)}' "$res" | emit
fi
say "done"
