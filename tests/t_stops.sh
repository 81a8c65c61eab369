#!/usr/bin/env bash
# t_stops: the run tools stop cleanly and never produce silent wrong data (issue 16):
#  - a prefill is stopped by SIGINT within one layer, rolled back to the last finished
#    segment (whose state is written); xl-decode honours it too;
#  - NaN weights are an error (exit 1), not {"ids":[],"text":"","stop":"eos"};
#  - under an address-space limit too small for OpenBLAS's buffers the tools exit 1 with a
#    message instead of spinning for ever.
source "$(dirname "$0")/lib.sh"
export XL_STATUS_DIR="$TMP/status"
jqv() { jq -r "$1" "$2" 2>/dev/null; }
prefill_rows() { local n; n=$(grep -c ',prefill$' "$1" 2>/dev/null) || true; echo "${n:-0}"; }

# ---- segments: ~1024 tokens, one stats row each
expect_status "default model prefill" 0 "$BIN/xl-prefill" "def main():"
check "default model: prefill_segment 1024 in the record" test "$(jqv .prefill_segment "$TMP/out")" = 1024
"$BIN/xl-init" -o "$TMP/mid" --preset 350m --blocks 2 --vocab 4096 --tokenizer none -q > /dev/null 2>&1
python3 -c 'print(",".join(str(i * 7 % 4000) for i in range(1500)))' > "$TMP/ids1500"
python3 -c 'print(",".join(str(i * 7 % 4000) for i in range(20000)))' > "$TMP/ids20k"
expect_status "34M-parameter model prefill of 1500 ids" 0 "$BIN/xl-prefill" -m "$TMP/mid" --ids-file "$TMP/ids1500" \
  --stats-log "$TMP/mid.csv" -o "$TMP/mid.state"
check "34M-parameter model: prefill_segment 1024" test "$(jqv .prefill_segment "$TMP/out")" = 1024
check "one stats row per segment: steps 1024, 1500" test "$(awk -F, '$6 == "prefill" {printf "%s ", $1}' "$TMP/mid.csv")" = "1024 1500 "

# ---- SIGINT in the middle of a long prefill: stopped within a layer, back to a segment end
"$BIN/xl-prefill" -m "$TMP/mid" --ids-file "$TMP/ids20k" --stats-log "$TMP/int.csv" -o "$TMP/int.state" \
  > "$TMP/int.json" 2> "$TMP/int.err" &
pid=$!
for _ in $(seq 200); do [ "$(prefill_rows "$TMP/int.csv")" -ge 1 ] && break; sleep 0.05; done
t0=$(date +%s.%N)
kill -INT "$pid"
set +e; wait "$pid"; rc=$?; set -e
t1=$(date +%s.%N)
check "SIGINT during the prefill: exit 130 (got $rc)" test "$rc" = 130
tok=$(jqv .tokens "$TMP/int.json")
check "stopped early at a segment end ($tok of 20000 tokens)" sh -c '[ "$1" -gt 0 ] && [ "$1" -lt 20000 ] && [ $(( $1 % 1024 )) -eq 0 ]' _ "${tok:-0}"
check "the record says stop: signal" test "$(jqv .stop "$TMP/int.json")" = signal
check "the state of the tokens consumed is written" test -s "$TMP/int.state"
check "stopped within 2 s of the signal (one layer is milliseconds here)" test "$(echo "$t1 - $t0 < 2" | bc)" = 1

"$BIN/xl-decode" -m "$TMP/mid" --ids-file "$TMP/ids20k" -n 50 --format ndjson --stats-log "$TMP/dint.csv" \
  > "$TMP/dint.json" 2> "$TMP/dint.err" &
pid=$!
for _ in $(seq 200); do [ "$(prefill_rows "$TMP/dint.csv")" -ge 1 ] && break; sleep 0.05; done
kill -INT "$pid"
set +e; wait "$pid"; rc=$?; set -e
check "xl-decode: SIGINT during its prefill exits 130 (got $rc)" test "$rc" = 130
check "xl-decode: no token generated after the stop, stop: signal" \
  test "$(jqv '"\(.new_tokens) \(.stop)"' "$TMP/dint.json")" = "0 signal"
check "xl-decode: prefill rows per segment in the stats log" test "$(awk -F, '$6 == "prefill"' "$TMP/dint.csv" | wc -l)" -ge 1

# ---- NaN weights: an error, not an empty "eos" record
"$BIN/xl-init" -o "$TMP/nan" --preset tiny -D 64 --blocks 1 --dtype f32 -q > /dev/null 2>&1
python3 - "$TMP/nan/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
raw = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
a, b = h['backbone.out_norm.weight']['data_offsets']
nan = struct.pack('<f', float('nan'))
for o in range(8 + n + a, 8 + n + b, 4):
    raw[o:o + 4] = nan
open(p, 'wb').write(raw)
PY
expect_status "xl-decode with NaN weights exits 1" 1 "$BIN/xl-decode" -m "$TMP/nan" "def main():" -n 4 --format ndjson
stderr_has "the message says the logits are not finite" "not finite \(NaN or Inf\)"
check "no record claiming an eos stop" sh -c '! grep -q "\"stop\":\"eos\"" "$1"' _ "$TMP/out"
expect_status "xl-decode --greedy -n 4 with NaN weights (text mode) exits 1" 1 "$BIN/xl-decode" -m "$TMP/nan" "x" -n 4
expect_status "xl-prefill with NaN weights exits 1" 1 "$BIN/xl-prefill" -m "$TMP/nan" "def main():" -o "$TMP/nan.state"
check "xl-prefill with NaN weights writes no state" test ! -e "$TMP/nan.state"

# ---- an address-space limit too small for OpenBLAS's buffers: exit 1 with a message, fast
if [ "${XL_SANITIZED:-0}" = 1 ] || [ "${XL_VALGRIND:-0}" = 1 ]; then
  ok "ulimit -v # SKIP sanitizers and valgrind reserve address space of their own"
else
  for t in xl-decode xl-prefill; do
    args=("def main():"); [ $t = xl-decode ] && args+=(-n 4)
    set +e
    (ulimit -v 100000; exec timeout -s KILL 20 "$BIN/$t" "${args[@]}") > "$TMP/out" 2> "$TMP/err"
    rc=$?
    set -e
    check "$t under ulimit -v 100000: exit 1, not a spin (got $rc)" test "$rc" = 1
    stderr_has "$t under ulimit -v: the message names the limit and OpenBLAS" "address-space limit \(ulimit -v 100000 kB\).*OpenBLAS"
  done
fi
finish
