#!/usr/bin/env bash
# make bench-cuda: the GPU measurements of the xLSTM-7B checkpoint, with the GPU's own
# ceilings from the same run, one NDJSON record per measurement on stdout (each with
# provenance: commit, GPU, driver, host, run, time), all appended to BENCH_OUT (default
# runs/bench-cuda-<time>.ndjson), and a short table on stderr at the end (also in
# BENCH_OUT with .txt for .ndjson). Works from the checkout (make bench-cuda) and from the
# unpacked bundle (make bundle; then tests/bench_cuda.sh in its root, no make, no packages).
# Stages, each under its own time limit (a hang costs that stage only; a "stage" record
# says ok / skipped / timeout / failed, its exit status and seconds):
#   1. gpu_limits: bf16 GEMM TFLOP/s through cuBLAS (8192^3), device copy and read GB/s
#      (libexec/ or build/tests/gpu_limits); its tflops and bw_gb_s are the ceilings below.
#      No GPU: a record says so and the script ends (exit 0) before making any checkpoint.
#   2. the 7B checkpoint: XL_BENCH_7B=DIR reuses one; else made once by
#      xl-init -o DIR --preset 7b --dtype bf16 --seed 1 (13.7 GB; timed: the xl-init record
#      and the stage record) in XL_BENCH_MODELS (default build/bench-models, in the bundle
#      bench-models/), reused on later runs.
#   3. bench_cuda on it: prefill XL_BENCH_PREFILL tokens (default 2048,16384), decode after
#      128 and the longest prompt, rooflines from stage 1, peak GPU memory.
#   4. Hugging Face transformers on the same checkpoint, when python3 imports torch and
#      transformers and sees the GPU (tests/hf_bench.py: bf16, prefill of the same lengths,
#      decode after 128 and each length, peak memory).
#   5. hf_ratio records (xltools over HF: prefill >= 6x, decode >= 12x) and a targets
#      record (the GPU issue's goals against what was measured), then the table.
# Environment: BENCH_OUT, XL_BENCH_7B, XL_BENCH_MODELS, XL_BENCH_PRESET (default 7b; tiny
# for a quick check of the machinery), XL_BENCH_PREFILL, XL_BENCH_STEPS (decode steps,
# default 128), XL_BENCH_HF_STEPS (default 32), XL_BENCH_HF=0 (skip HF), BENCH_CUDA_ARGS
# (more bench_cuda flags, e.g. "--chunk 64,128 --reps 5"), PYTHON (default python3),
# time limits in seconds: XL_BENCH_LIMITS_TIMEOUT (240), XL_BENCH_INIT_TIMEOUT (1500),
# XL_BENCH_CUDA_TIMEOUT (900), XL_BENCH_HF_TIMEOUT (900). XL_BIN / XL_HELPERS name the
# tools' and the helper programs' folders (make passes them).
# cuBLAS comes from the machine (or the bundle's lib/ when made with BUNDLE_CUBLAS=1): when
# neither the loader's paths nor LD_LIBRARY_PATH have it, the script looks in
# CUDA_HOME/lib64, /usr/local/cuda/lib64 and python's nvidia-cublas wheel and adds that
# folder to LD_LIBRARY_PATH (a "cublas" record says where).
set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$here")
case "${1:-}" in -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac

if [ -d "$ROOT/libexec" ] && [ -f "$ROOT/BUILD-INFO.json" ]; then
  layout=bundle
  BIN=${XL_BIN:-$ROOT/bin}
  H=${XL_HELPERS:-$ROOT/libexec}
  MODELS=${XL_BENCH_MODELS:-$ROOT/bench-models}
else
  layout=checkout
  BIN=${XL_BIN:-$ROOT/bin}
  H=${XL_HELPERS:-$ROOT/build/tests}
  MODELS=${XL_BENCH_MODELS:-$ROOT/build/bench-models}
fi
PRESET=${XL_BENCH_PRESET:-7b}
PREFILL=${XL_BENCH_PREFILL:-2048,16384}
STEPS=${XL_BENCH_STEPS:-128}
HF_STEPS=${XL_BENCH_HF_STEPS:-32}
PY=${PYTHON:-python3}
T_LIMITS=${XL_BENCH_LIMITS_TIMEOUT:-240}
T_INIT=${XL_BENCH_INIT_TIMEOUT:-1500}
T_CUDA=${XL_BENCH_CUDA_TIMEOUT:-900}
T_HF=${XL_BENCH_HF_TIMEOUT:-900}
RUN=$(date -u +%Y-%m-%dT%H:%M:%SZ)
OUT=${BENCH_OUT:-$ROOT/runs/bench-cuda-$(date -u +%Y%m%dT%H%M%SZ).ndjson}
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

say() { echo "bench-cuda: $*" >&2; }

# jq: the machine's, else the bundle's own (no rpath: its libraries through LD_LIBRARY_PATH)
if ! command -v jq >/dev/null 2>&1; then
  if [ -x "$ROOT/libexec/jq" ]; then
    jq() { LD_LIBRARY_PATH="$ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$ROOT/libexec/jq" "$@"; }
  else
    say "needs jq (not on PATH, and no libexec/jq beside this script)"; exit 1
  fi
fi

# ---- provenance ----
if [ "$layout" = bundle ]; then
  commit="$(jq -r '.commit[0:7] + " (bundle " + .version + ")"' "$ROOT/BUILD-INFO.json")"
else
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$ROOT" diff --quiet HEAD -- lib tools 2>/dev/null || commit="$commit-dirty"
fi
host=$(hostname 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
gpu=unknown driver=unknown
if command -v nvidia-smi >/dev/null 2>&1; then
  q=$(timeout 30 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader -i 0 2>/dev/null | head -1)
  [ -n "$q" ] && gpu=${q%%, *} && driver=${q##*, }
fi
emit() {   # NDJSON on stdin -> provenance added -> stdout and $OUT
  jq -c --unbuffered --arg commit "$commit" --arg run "$RUN" --arg host "$host" --arg cpu "$cpu" --arg gpu "$gpu" \
    --arg driver "$driver" --arg layout "$layout" \
    '{commit: $commit, run: $run, host: $host, gpu: $gpu, driver: $driver, layout: $layout, time: (now | todate)} + .' |
    tee -a "$OUT"
}
note() {   # KEY=VALUE...: one record of strings
  local args=() keys=()
  for kv in "$@"; do args+=(--arg "${kv%%=*}" "${kv#*=}"); keys+=("${kv%%=*}"); done
  jq -nc "${args[@]}" "\$ARGS.named" | emit
}

# stage NAME LIMIT CMD...: runs CMD under `timeout`, its NDJSON stdout lines through emit as
# they come, its other stdout lines kept (a "skipped: why" line is the stage's reason), then
# a stage record. Returns CMD's status (124/137: timed out).
stage() {
  local name=$1 limit=$2; shift 2
  local log=$WORK/$name.out t0 t1 rc status why=
  say "$name (limit ${limit}s): $*"
  t0=$(date +%s.%N)
  timeout -k 15 "$limit" "$@" | tee "$log" | grep --line-buffered '^{' | emit
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  case $rc in
    0) status=ok ;;
    77) status=skipped why=$(grep -m1 '^skipped' "$log" || echo "exit 77") ;;
    124|137) status=timeout why="stopped after ${limit}s" ;;
    *) status=failed why="exit $rc" ;;
  esac
  jq -nc --arg stage "$name" --arg status "$status" --arg why "$why" --argjson rc "$rc" --argjson limit "$limit" \
    --argjson s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" --arg cmd "$*" \
    '{bench: "stage", stage: $stage, status: $status, rc: $rc, seconds: $s, limit_s: $limit, cmd: $cmd}
     + (if $why == "" then {} else {why: $why} end)' | emit
  [ "$status" = ok ] || say "$name: $status${why:+ ($why)}"
  return "$rc"
}

say "run $RUN, $layout layout at $ROOT, commit $commit; records also in $OUT"

# ---- cuBLAS: the machine's (gpu_limits links it, the tools dlopen it on their first GPU
# session); when the loader would not find it, look in the usual places and say where ----
need=libcublas.so.13
if [ -x "$H/gpu_limits" ]; then
  n=$(ldd "$H/gpu_limits" 2>/dev/null | awk '$1 ~ /^libcublas\.so/ { print $1; exit }')
  [ -n "$n" ] && need=$n
fi
have_cublas() {
  [ -e "$ROOT/lib/$need" ] && return 0
  ldconfig -p 2>/dev/null | grep -qF "$need " && return 0
  local d IFS=:
  for d in ${LD_LIBRARY_PATH:-}; do [ -n "$d" ] && [ -e "$d/$need" ] && return 0; done
  return 1
}
if ! have_cublas; then
  found=
  pywheel=$(timeout 60 "$PY" -c 'import nvidia.cublas as m, os; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null || true)
  for d in "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib $pywheel; do
    if [ -e "$d/$need" ]; then found=$d; break; fi
  done
  if [ -n "$found" ]; then
    export LD_LIBRARY_PATH="$found${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    note bench=cublas soname="$need" found="$found" how="added to LD_LIBRARY_PATH"
  else
    note bench=cublas soname="$need" found="" why="not found: the GPU stages cannot run"
  fi
fi

# ---- 1. the GPU's ceilings ----
TF=${XL_BENCH_TFLOPS:-0} BW=${XL_BENCH_BW:-0}
if [ -x "$H/gpu_limits" ]; then
  stage gpu_limits "$T_LIMITS" "$H/gpu_limits"
  lrc=$?
  if [ "$lrc" = 0 ]; then
    lim=$(grep -m1 '"bench":"gpu_limits"' "$WORK/gpu_limits.out")
    TF=$(jq -r .tflops <<<"$lim") BW=$(jq -r .bw_gb_s <<<"$lim")
    gpu=$(jq -r .gpu <<<"$lim") driver=$(jq -r .driver <<<"$lim")
    say "ceilings: bf16 GEMM $TF TFLOP/s, bandwidth $BW GB/s (copy $(jq -r .copy_gb_s <<<"$lim"), read $(jq -r .read_gb_s <<<"$lim"))"
  elif [ "$lrc" = 77 ]; then
    note bench=bench_cuda status=skipped why="no usable GPU here: $(grep -m1 '^skipped' "$WORK/gpu_limits.out")"
    say "no usable GPU: nothing more to measure"
    exit 0
  fi
else
  note bench=stage stage=gpu_limits status=missing why="no $H/gpu_limits (built only where nvcc is)"
fi

# ---- 2. the checkpoint ----
if [ -n "${XL_BENCH_7B:-}" ]; then
  MODEL=$XL_BENCH_7B
else
  MODEL=$MODELS/$PRESET-bf16
fi
if [ -f "$MODEL/config.json" ] && { [ -n "${XL_BENCH_7B:-}" ] || [ -f "$MODEL/.complete" ]; }; then
  note bench=checkpoint dir="$MODEL" reused=true gb="$(du -sb "$MODEL" | awk '{ printf "%.2f", $1 / 1e9 }')"
else
  mkdir -p "$MODEL"
  free_gb=$(df -Pk "$MODEL" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
  if [ "$PRESET" = 7b ] && [ "${free_gb:-0}" -lt 15 ]; then
    note bench=checkpoint dir="$MODEL" status=failed why="$free_gb GB free, the 7B checkpoint needs 14"
    say "no room for the 7B checkpoint in $MODEL"; exit 1
  fi
  if stage xl_init "$T_INIT" "$BIN/xl-init" -o "$MODEL" --preset "$PRESET" --dtype bf16 --seed 1 -q; then
    touch "$MODEL/.complete"
  else
    say "could not make the checkpoint"; exit 1
  fi
fi

# ---- 3. xltools on the GPU ----
bc_ok=0
if [ -x "$H/bench_cuda" ]; then
  # shellcheck disable=SC2086
  stage bench_cuda "$T_CUDA" "$H/bench_cuda" "$MODEL" --bw "$BW" --tflops "$TF" --prefill "$PREFILL" --steps "$STEPS" \
    --short-ctx 128 ${BENCH_CUDA_ARGS:-} && bc_ok=1
else
  note bench=stage stage=bench_cuda status=missing why="no $H/bench_cuda"
fi

# ---- 4. Hugging Face transformers, same checkpoint, same GPU ----
if [ "${XL_BENCH_HF:-1}" = 1 ]; then
  if timeout 180 "$PY" -c 'import torch, transformers; assert torch.cuda.is_available()' 2>/dev/null; then
    stage hf_bench "$T_HF" env PYTHONUNBUFFERED=1 "$PY" "$here/hf_bench.py" "$MODEL" --device cuda --dtype bf16 \
      --prefill "$PREFILL" --decode-after "128,$PREFILL" --steps "$HF_STEPS" --budget $((T_HF - 120)) --label "$PRESET-bf16"
  else
    note bench=stage stage=hf_bench status=skipped why="$PY cannot import torch and transformers, or sees no GPU"
  fi
fi

# ---- 5. ratios, targets, table ----
this=$WORK/this.ndjson
jq -c --arg run "$RUN" 'select(.run == $run)' "$OUT" > "$this"
jq -s -c '
  def best(f): map(select(f)) | max_by(.tok_s);
  [ (map(select(.bench == "hf_prefill")) | .[]) as $h
    | (best(.bench == "cuda_prefill" and .tokens == $h.tokens and (.matmul // "bf16") == "bf16")) as $x
    | select($x != null)
    | {bench: "hf_ratio", what: "prefill", tokens: $h.tokens, xltools_tok_s: $x.tok_s, hf_tok_s: $h.tok_s,
       ratio: ($x.tok_s / $h.tok_s), goal: 6, ok: ($x.tok_s / $h.tok_s >= 6)} ]
  + [ (map(select(.bench == "hf_decode")) | .[]) as $h
    | (best(.bench == "cuda_decode" and .context == $h.context and (.matmul // "bf16") == "bf16")) as $x
    | select($x != null)
    | {bench: "hf_ratio", what: "decode", context: $h.context, xltools_tok_s: $x.tok_s, hf_tok_s: $h.tok_s,
       ratio: ($x.tok_s / $h.tok_s), goal: 12, ok: ($x.tok_s / $h.tok_s >= 12)} ]
  | .[]' "$this" | emit > "$WORK/ratios.ndjson"
cat "$WORK/ratios.ndjson" >> "$this"
jq -s -c --arg long "${PREFILL##*,}" --arg model "$PRESET-bf16" '
  def best(f): map(select(f)) | max_by(.tok_s);
  ($long | tonumber) as $L
  | (best(.bench == "cuda_decode" and .context == 128 and (.matmul // "bf16") == "bf16")) as $d
  | (best(.bench == "cuda_decode" and .context == $L and (.matmul // "bf16") == "bf16")) as $dl
  | (best(.bench == "cuda_prefill" and .tokens == 2048 and (.matmul // "bf16") == "bf16")) as $p2
  | (best(.bench == "cuda_prefill" and .tokens == $L and (.matmul // "bf16") == "bf16")) as $pl
  | (map(select(.bench == "cuda_memory")) | min_by(.peak_over_weights_gb)) as $m
  | (map(select(.bench == "hf_ratio" and .what == "prefill")) | min_by(.ratio)) as $rp
  | (map(select(.bench == "hf_ratio" and .what == "decode")) | min_by(.ratio)) as $rd
  | {bench: "targets", model: $model, long_context: $L,
     decode_tok_s: $d.tok_s, decode_efficiency: $d.efficiency,
     decode_ok: (($d.tok_s // 0) >= 250 and ($d.efficiency // 0) >= 0.8),
     decode_long_over_short: (if $d and $dl then $dl.tok_s / $d.tok_s else null end),
     ctx_ok: (if $d and $dl then (($dl.tok_s / $d.tok_s - 1) | fabs) <= 0.05 else false end),
     prefill_long_ms: $pl.ms, prefill_long_ok: (($pl.ms // 1e9) <= 400),
     prefill2048_tok_s: $p2.tok_s, prefill2048_ok: (($p2.tok_s // 0) >= 30000),
     peak_over_weights_gb: $m.peak_over_weights_gb, memory_ok: (($m.peak_over_weights_gb // 99) <= 2),
     hf_prefill_ratio_min: $rp.ratio, hf_prefill_ok: (if $rp then $rp.ratio >= 6 else null end),
     hf_decode_ratio_min: $rd.ratio, hf_decode_ok: (if $rd then $rd.ratio >= 12 else null end)}' "$this" | emit >> "$this"

table=${OUT%.ndjson}.txt
[ "$table" = "$OUT" ] && table=$OUT.txt
jq -s -r '
  def f(x; d): if x == null then "-" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
  def pct(x): if x == null then "" else " (" + f(x * 100; 0) + "% of roofline)" end;
  def ok(x): if x == null then "-" elif x then "ok" else "missed" end;
  . as $all
  | (map(select(.bench == "gpu_limits")) | first) as $l
  | (map(select(.bench == "stage" and .stage == "xl_init")) | first) as $i
  | (map(select(.bench == "checkpoint")) | first) as $c
  | (map(select(.bench == "targets")) | first) as $t
  | "",
    "xLSTM on the GPU (\(.[0].gpu), driver \(.[0].driver), commit \(.[0].commit), run \(.[0].run))",
    (if $l then "ceilings: bf16 GEMM \(f($l.tflops; 0)) TFLOP/s; bandwidth \(f($l.bw_gb_s; 0)) GB/s (copy \(f($l.copy_gb_s; 0)), read \(f($l.read_gb_s; 0)))" else "ceilings: not measured" end),
    (if $i then "checkpoint: made by xl-init in \(f($i.seconds; 1)) s (\($i.status))" elif $c then "checkpoint: \($c.dir) (reused, \($c.gb) GB)" else empty end),
    "",
    "measurement                   xltools                                 HF          ratio",
    (map(select(.bench == "cuda_prefill" and (.matmul // "bf16") == "bf16")) | group_by(.tokens)[] | max_by(.tok_s) as $x
     | (($x.tokens) as $n | [$all[] | select(.bench == "hf_prefill" and .tokens == $n)] | first) as $h
     | "prefill \($x.tokens | tostring | .[0:6])" + (" " * (22 - ($x.tokens | tostring | length)))
       + ("\(f($x.tok_s; 0)) tok/s, \(f($x.ms; 1)) ms" + pct($x.efficiency) | . + (" " * ([40 - length, 1] | max)))
       + ("\(f($h.tok_s; 0)) tok/s" | . + (" " * ([12 - length, 1] | max)))
       + (if $h then f($x.tok_s / $h.tok_s; 1) + "x" else "-" end)),
    (map(select(.bench == "cuda_decode" and (.matmul // "bf16") == "bf16")) | group_by(.context)[] | max_by(.tok_s) as $x
     | (($x.context) as $n | [$all[] | select(.bench == "hf_decode" and .context == $n)] | first) as $h
     | "decode after \($x.context)" + (" " * (17 - ($x.context | tostring | length)))
       + ("\(f($x.tok_s; 1)) tok/s" + pct($x.efficiency) | . + (" " * ([40 - length, 1] | max)))
       + ("\(f($h.tok_s; 1)) tok/s" | . + (" " * ([12 - length, 1] | max)))
       + (if $h then f($x.tok_s / $h.tok_s; 1) + "x" else "-" end)),
    (map(select(.bench == "cuda_memory")) | min_by(.peak_over_weights_gb) as $m | select($m != null)
     | (([$all[] | select(.bench == "hf_memory")] | first)) as $hm
     | "peak GPU memory               \(f($m.peak_gb; 2)) GB (weights + \(f($m.peak_over_weights_gb; 2)))"
       + (if $hm then "   HF \(f($hm.peak_gb; 2)) GB" else "" end)),
    (map(select(.bench == "stage" and .status != "ok")) | .[] | "stage \(.stage): \(.status) \(.why // "")"),
    (if $t then "targets: decode \(ok($t.decode_ok)), context \(ok($t.ctx_ok)), prefill \($t.long_context) \(ok($t.prefill_long_ok)), prefill 2048 \(ok($t.prefill2048_ok)), memory \(ok($t.memory_ok)), vs HF: prefill \(ok($t.hf_prefill_ok)), decode \(ok($t.hf_decode_ok))" else empty end),
    "records: \($ARGS.named.out)"' --arg out "$OUT" "$this" > "$table" 2>"$WORK/table.err" \
  || { say "table: $(head -c 300 "$WORK/table.err")"; }
cat "$table" >&2
say "done: $OUT"
