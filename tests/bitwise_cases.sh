#!/usr/bin/env bash
# Prints "case sha256" for the logits and state of a fixed set of runs: the default model
# under every backend/knob combination that must not move a bit, the golden fixtures of
# both architectures, and a greedy continuation. tests/t_bitwise.sh compares the output to
# tests/golden/bitwise.sha256, written by this script before the engine was reshaped:
#   BIN=bin tests/bitwise_cases.sh > tests/golden/bitwise.sha256
set -eu
: "${BIN:?BIN names the built tools}"
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
prompt="$root/prompts/pydocs.txt"
# the logits tensor bytes only (the file's metadata may name paths or times)
tensor_sha() { python3 - "$1" <<'PY'
import hashlib, json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
out = hashlib.sha256()
for k in sorted(x for x in h if x != "__metadata__"):
    s, e = h[k]["data_offsets"]
    out.update(k.encode()); out.update(b[8 + n + s:8 + n + e])
print(out.hexdigest())
PY
}
run() {   # name, xl-prefill args...
  local name=$1; shift
  "$BIN/xl-prefill" "$@" --logits "$tmp/l.st" -o "$tmp/s.st" > /dev/null
  echo "$name.logits $(tensor_sha "$tmp/l.st")"
  echo "$name.state $(tensor_sha "$tmp/s.st")"
}
run default.chunk64 --prompt-file "$prompt"
run default.chunk7.w2.hpb2 --prompt-file "$prompt" --chunk-size 7 --workers 2 --heads-per-band 2
# 6 workers: the cell split over chunks and the parallel prefill loops (same bits as chunk64)
run default.chunk64.w6 --prompt-file "$prompt" --workers 6
run default.recurrent --prompt-file "$prompt" --backend recurrent
# --matmul bf16 with the products as fp32 SGEMM on bf16 values (the recorded bits). On a
# CPU with BF16 units, auto kernels run them there (oneDNN: another summation order, whose
# bits depend on the CPU and the library; tests/test_kernels.c holds that path to the
# emulated one's distance from fp32), so the case pins the AVX-512 kernels there.
bf16k=; grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null && bf16k="--kernels avx512"
# shellcheck disable=SC2086
run default.bf16 --prompt-file "$prompt" --matmul bf16 $bf16k
ids=5,17,30,2,9,44,100,123,77,31,8,60,150,3,19,40,12,90,7,190,1,66
for fx in "$root"/tests/golden/fixtures/* "$root"/tests/golden/fixtures-v1/*; do
  [ -f "$fx/config.json" ] || continue
  run "$(basename "$fx").chunk3" -m "$fx" --ids "$ids" --chunk-size 3
  run "$(basename "$fx").recurrent" -m "$fx" --ids "$ids" --backend recurrent
done
"$BIN/xl-decode" "The Python interpreter" -n 48 --format ndjson | python3 -c 'import json,sys,hashlib; r=json.load(sys.stdin); print("default.decode48.ids", hashlib.sha256(json.dumps(r["ids"]).encode()).hexdigest())'
