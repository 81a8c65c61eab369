#!/usr/bin/env bash
# Bit-for-bit: the logits and states of tests/bitwise_cases.sh (default model under every
# backend and knob, both architectures' fixtures, a greedy continuation) are identical to
# those recorded before the engine was reshaped (tests/golden/bitwise.sha256).
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ "${XL_SANITIZED:-0}" = 1 ]; then
  # The bits belong to the -O2 build they were recorded with; the sanitizer build uses -O1,
  # which contracts and orders float operations differently.
  echo "ok - bit-for-bit comparison # SKIP the sanitizer build (-O1) is not the recorded -O2 build"
  exit 0
fi
got=$(mktemp); trap 'rm -f "$got"' EXIT
if ! bash "$here/bitwise_cases.sh" > "$got" 2>&1; then
  echo "not ok - bitwise_cases.sh failed: $(tail -1 "$got")"; exit 1
fi
while read -r name sum; do
  have=$(awk -v n="$name" '$1 == n {print $2}' "$got")
  if [ "$have" = "$sum" ]; then echo "ok - $name identical bit for bit"
  else echo "not ok - $name differs from the recorded bits (${have:-missing} vs $sum)"; fi
done < "$here/golden/bitwise.sha256"
