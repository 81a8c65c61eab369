#!/usr/bin/env bash
# xlstm_v1 checkpoints through the tools: xl-prefill logits against the golden file
# (chunkwise and recurrent), and prefill -> state file -> decode in other processes: the
# greedy continuation after a split prompt equals the one after the whole prompt, its
# first token is the argmax of the golden logits, and a chain of state files (decode
# --state-out, decode again) continues the same sequence.
. "$(dirname "$0")/lib.sh"
ids_of() { jq -r ".cases[$2].ids | join(\",\")" "$1/golden.json"; }
# ids A..B (1-based, inclusive) of a comma list
slice() { echo "$1" | cut -d, -f"$2"-"$3"; }
# argmax of row ROW of tensor NAME in a safetensors file
argmax_row() {
  python3 - "$1" "$2" "$3" <<'EOF'
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
t = json.loads(raw[8:8 + n])[sys.argv[2]]
L, V = t['shape']
a = t['data_offsets'][0] + 8 + n
row = int(sys.argv[3]) % L
x = struct.unpack('<%df' % V, raw[a + 4 * V * row: a + 4 * V * (row + 1)])
print(max(range(V), key=lambda i: x[i]))
EOF
}

for fx in v1-m-s-m-s v1-m-only; do
  D=$TD/fixtures-v1/$fx
  ids=$(ids_of "$D" 3)
  T=$(echo "$ids" | tr , '\n' | wc -l)
  for opt in "--chunk-size 7" "--chunk-size 64 --workers 2" "--backend recurrent"; do
    # shellcheck disable=SC2086
    expect_status "$fx $opt: prefill" 0 "$BIN/xl-prefill" -m "$D" --ids "$ids" $opt --logits "$TMP/lg" -o "$TMP/st"
    check "$fx $opt: logits match golden" python3 "$ROOT/tests/st_compare.py" "$TMP/lg" logits "$D/golden.safetensors" case3.logits 2e-3 2e-4
  done
  want_first=$(argmax_row "$D/golden.safetensors" case3.step_logits -1)
  "$BIN/xl-decode" -m "$D" --ids "$ids" -n 6 --greedy --ignore-eos --format ndjson -q > "$TMP/full"
  full=$(jq -c .ids "$TMP/full")
  [ "$(jq '.ids[0]' "$TMP/full")" = "$want_first" ] && ok "$fx: first greedy token is the golden argmax ($want_first)" ||
    not_ok "$fx: first greedy token $(jq '.ids[0]' "$TMP/full") != golden argmax $want_first"
  for k in 1 33 $((T - 1)); do
    "$BIN/xl-prefill" -m "$D" --ids "$(slice "$ids" 1 "$k")" --chunk-size 7 -o "$TMP/st.$fx.$k" > /dev/null
    got=$("$BIN/xl-decode" -m "$D" --state "$TMP/st.$fx.$k" --ids "$(slice "$ids" $((k + 1)) "$T")" -n 6 --greedy --ignore-eos \
          --format ndjson -q | jq -c .ids)
    [ "$got" = "$full" ] && ok "$fx: split at $k through a state file continues identically" ||
      not_ok "$fx: split at $k: got $got want $full"
  done
  # a chain: decode 2 tokens, save, decode 4 more from the saved state
  "$BIN/xl-prefill" -m "$D" --ids "$ids" -o "$TMP/s0" > /dev/null
  a=$("$BIN/xl-decode" -m "$D" --state "$TMP/s0" -n 2 --greedy --ignore-eos --state-out "$TMP/s1" --format ndjson -q | jq -c '.ids')
  b=$("$BIN/xl-decode" -m "$D" --state "$TMP/s1" -n 4 --greedy --ignore-eos --format ndjson -q | jq -c '.ids')
  [ "$(jq -cn --argjson a "$a" --argjson b "$b" '$a + $b')" = "$full" ] && ok "$fx: state chain prefill -> decode 2 -> decode 4" ||
    not_ok "$fx: state chain gave $a + $b, want $full"
done

# a state of one v1 model is refused by another
expect_status "state of another v1 model refused" 1 "$BIN/xl-decode" -m "$TD/fixtures-v1/v1-m-only" --state "$TMP/st.v1-m-s-m-s.1" -n 2
finish
