#!/usr/bin/env bash
# t_prefill_progress: a long prefill shows its progress (issue 17: "a 12 s prefill on the 350m
# preset prints no progress": a prompt of one segment gave no line at all). xl-prefill and
# xl-decode print it on stderr: on a terminal a line refreshed in place once the prefill has
# taken a second, with --progress a line a second wherever stderr goes; within one segment
# the estimate advances with the layers (chunkwise) or tokens (recurrent) done. Without a
# terminal or --progress: nothing (logs stay clean). A prefill under a second: no line.
source "$(dirname "$0")/lib.sh"
export XL_STATUS_DIR="$TMP/status"
"$BIN/xl-init" -o "$TMP/m" --preset 350m --blocks 4 --vocab 4096 --tokenizer none -q > /dev/null
python3 -c 'print(",".join(str(i * 7 % 4000) for i in range(250)))' > "$TMP/idsN"
lines() { grep -c "prefill [0-9]*/$2 tokens" "$1" || true; }
mid() {   # FILE TOTAL: progress lines strictly between 0 and TOTAL tokens
  awk -v t="$2" '{ if (match($0, /prefill [0-9]+\//)) { n = substr($0, RSTART + 8, RLENGTH - 9) + 0; if (n > 0 && n < t) c++ } } END { print c + 0 }' "$1"
}

# recurrent: 250 tokens in one segment, seconds on this model
expect_status "xl-prefill --progress (one segment, recurrent)" 0 "$BIN/xl-prefill" -m "$TMP/m" --ids-file "$TMP/idsN" \
  --backend recurrent --progress
secs=$(jq -r .seconds "$TMP/out")
check "one segment (prefill_segment $(jq -r .prefill_segment "$TMP/out") >= 250)" test "$(jq -r .prefill_segment "$TMP/out")" -ge 250
if awk -v s="$secs" 'BEGIN { exit !(s > 1.5) }'; then
  check "lines within the segment ($(mid "$TMP/err" 250) between 0 and 250 tokens, ${secs} s)" test "$(mid "$TMP/err" 250)" -ge 1
else
  ok "lines within the segment # SKIP the prefill took only $secs s here"
fi
check "a final line with the time taken" grep -q "prefill 250/250 tokens (100%), .* tok/s, took" "$TMP/err"
check "one line each (no carriage returns into a file)" sh -c '! grep -q "$(printf "\r")" "$1"' _ "$TMP/err"
expect_status "xl-decode --progress" 0 "$BIN/xl-decode" -m "$TMP/m" --ids-file "$TMP/idsN" -n 2 --backend recurrent --progress -q
check "xl-decode shows its prefill too ($(lines "$TMP/err" 250) lines)" test "$(lines "$TMP/err" 250)" -ge 1
expect_status "no --progress, stderr a file" 0 "$BIN/xl-prefill" -m "$TMP/m" --ids-file "$TMP/idsN" --backend recurrent
check "no progress lines then" test "$(lines "$TMP/err" 250)" = 0
expect_status "a prefill under a second, --progress" 0 "$BIN/xl-prefill" "def main():" --progress
check "only the final line" test "$(grep -c "prefill" "$TMP/err")" = 1

# on a terminal (script gives one): refreshed in place, without --progress
if command -v script > /dev/null; then
  script -qec "'$BIN/xl-prefill' -m '$TMP/m' --ids-file '$TMP/idsN' --backend recurrent > /dev/null" /dev/null > "$TMP/tty" 2>&1 || true
  check "on a terminal: progress refreshed in place (\\r)" grep -q "$(printf '\r')$(basename "$BIN/xl-prefill"): prefill [0-9]*/250 tokens" "$TMP/tty"
else
  ok "terminal progress # SKIP no script(1)"
fi
finish
