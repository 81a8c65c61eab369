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
got=$(mktemp); again=$(mktemp); trap 'rm -f "$got" "$again"' EXIT
if ! bash "$here/bitwise_cases.sh" > "$got" 2>&1; then
  echo "not ok - bitwise_cases.sh failed: $(tail -1 "$got")"; exit 1
fi
# The recorded bits are those of OpenBLAS's AVX-512 SGEMM (core SKYLAKEX, or COOPERLAKE, whose
# SGEMM is the same) and of the AVX-512 kernels (tests/bitwise_cases.sh pins the one case
# where AVX512-BF16 would differ). A machine that runs another core or kernels (an AVX2-only
# CPU: HASWELL/ZEN and avx2; OPENBLAS_CORETYPE or XL_KERNELS set) sums in another order:
# there the cases must give the same bits run after run instead.
core=$("$BIN/xl-prefill" --ids 1 2> /dev/null | sed -n 's/.*"blas_core":"\([A-Z0-9_]*\)".*/\1/p')
kern=${XL_KERNELS:-auto}
[ "$kern" = auto ] && ! grep -qw avx512f /proc/cpuinfo 2> /dev/null && kern=avx2
case "$core:$kern" in
  SKYLAKEX:auto | SKYLAKEX:avx512* | COOPERLAKE:auto | COOPERLAKE:avx512*) ;;
  *)
    echo "ok - bit-for-bit comparison with the recorded bits # SKIP they are AVX-512's (SKYLAKEX/COOPERLAKE, avx512 kernels); this machine runs ${core:-?} with $kern kernels"
    if ! bash "$here/bitwise_cases.sh" > "$again" 2>&1; then
      echo "not ok - bitwise_cases.sh failed the second time: $(tail -1 "$again")"; exit 1
    fi
    while read -r name sum; do
      have=$(awk -v n="$name" '$1 == n {print $2}' "$again")
      if [ "$have" = "$sum" ]; then echo "ok - $name: the same bits run after run"
      else echo "not ok - $name differs between two runs on this machine ($sum vs ${have:-missing})"; fi
    done < "$got"
    exit 0 ;;
esac
while read -r name sum; do
  have=$(awk -v n="$name" '$1 == n {print $2}' "$got")
  if [ "$have" = "$sum" ]; then echo "ok - $name identical bit for bit"
  else echo "not ok - $name differs from the recorded bits (${have:-missing} vs $sum)"; fi
done < "$here/golden/bitwise.sha256"
