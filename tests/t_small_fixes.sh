#!/usr/bin/env bash
# t_small_fixes: the smaller items of issue 17, one regression check each:
# a soft memory limit above the hard one is refused; the 350m preset's vocabulary with the
# default 4096-id tokenizer warns (xl-init) and a decode to "" says why (xl-decode);
# bench_tokenizer reads this project's docs by default (no path of another machine).
source "$(dirname "$0")/lib.sh"
TESTBIN=${TESTBIN:-$ROOT/build/tests}

# ---- memory limits: soft above hard is a usage error, before any output is written
expect_status "xl-decode: --mem-soft-mb above --mem-hard-mb exits 2" 2 \
  "$BIN/xl-decode" "def main():" -n 2 --mem-soft-mb 500 --mem-hard-mb 400 --stats-log "$TMP/s.csv"
stderr_has "the message names both limits" "soft memory limit \(--mem-soft-mb, 500 MB\) is above the hard limit \(--mem-hard-mb, 400 MB\)"
check "no stats log written" test ! -e "$TMP/s.csv"
expect_status "xl-prefill: --mem-soft-pct above --mem-hard-pct exits 2" 2 \
  "$BIN/xl-prefill" "def main():" --mem-soft-pct 90 --mem-hard-pct 50
stderr_has "pct limits named" "--mem-soft-pct.*--mem-hard-pct"
expect_status "XL_MEM_SOFT_MB above --mem-hard-mb exits 2" 2 env XL_MEM_SOFT_MB=900 "$BIN/xl-decode" "x" -n 1 --mem-hard-mb 800
expect_status "a hard limit below the default soft one (85%) is fine: the default gives way" 0 \
  "$BIN/xl-decode" "x" -n 1 --mem-hard-pct 50 -q
expect_status "soft below hard is fine" 0 "$BIN/xl-decode" "x" -n 1 --mem-soft-mb 800 --mem-hard-mb 900 -q
expect_status "soft above hard with the watchdog off is fine" 0 "$BIN/xl-decode" "x" -n 1 --mem-soft-mb 900 --mem-hard-mb 800 --no-mem-watchdog -q

# ---- the 350m preset's vocabulary (50304) with the default model's tokenizer (4096 ids)
expect_status "xl-init --preset 350m (cut to 1 block of 64) exits 0" 0 \
  "$BIN/xl-init" -o "$TMP/m350" --preset 350m --blocks 1 -D 64 --heads 2 -q
stderr_has "xl-init warns that the tokenizer covers 4096 of 50304 ids" "knows 4096 of the 50304 ids"
expect_status "decoding it exits 0" 0 "$BIN/xl-decode" -m "$TMP/m350" "def main():" -n 8 --ignore-eos --format ndjson
stderr_has "xl-decode says which ids had no text" "generated ids have no text in the tokenizer \(it knows ids 0-4095, the model's vocabulary has 50304\)"
check "the record still has the ids" sh -c 'jq -e ".new_tokens == 8" "$1" > /dev/null' _ "$TMP/out"
expect_status "the default model decodes without that warning" 0 "$BIN/xl-decode" "def main():" -n 8 --ignore-eos -q
check "no textless-id warning on the default model" sh -c '! grep -q "no text in the tokenizer" "$1"' _ "$TMP/err"

# ---- the stats log as docs/formats.md and the help describe it (356-token prefill)
ids=$(python3 -c 'print(",".join(str(i * 7 % 4000) for i in range(356)))')
expect_status "xl-prefill of 356 ids with --stats-log" 0 "$BIN/xl-prefill" --ids "$ids" --stats-log "$TMP/p.csv"
check "header has the phase column" test "$(head -1 "$TMP/p.csv")" = "step,dt_ms,cum_ms,inst_tok_s,avg_tok_s,phase"
check "one prefill row (one segment), step 356" test "$(awk -F, 'NR > 1 {printf "%s:%s ", $1, $6}' "$TMP/p.csv")" = "356:prefill "
expect_status "xl-decode of 3 ids, 3 tokens" 0 "$BIN/xl-decode" --ids 5,6,7 -n 3 --ignore-eos -q --stats-log "$TMP/d.csv"
check "prefill row then decode rows in one file; step 3 once per phase" \
  test "$(awk -F, 'NR > 1 {printf "%s:%s ", $1, $6}' "$TMP/d.csv")" = "3:prefill 1:decode 2:decode 3:decode "
check "formats.md documents the phase column and the prefill rows" \
  sh -c 'grep -q "step,dt_ms,cum_ms,inst_tok_s,avg_tok_s,phase" "$1" && grep -q "prefill rows: one per prefill segment" "$1"' _ "$ROOT/docs/formats.md"
check "formats.md's slug example has the ctx= part the slugs have (b=..__ctx=N__i=N)" \
  grep -q '`b=chunkwise__ck=64__h=2__w=2__ctx=512__i=7`' "$ROOT/docs/formats.md"
for t in xl-prefill xl-decode; do
  "$BIN/$t" --help > "$TMP/help.txt"
  check "$t --help no longer claims 'prefill chunks in rows of their own'" sh -c '! grep -q "prefill chunks in rows" "$1" && grep -q "one per prefill" "$1"' _ "$TMP/help.txt"
done

# ---- bench_tokenizer: its default text is this project's docs, from any directory
if [ -x "$TESTBIN/bench_tokenizer" ]; then
  (cd / && env -u XL_DOCS "$TESTBIN/bench_tokenizer" --mb 1 --reps 1) > "$TMP/bt.json" 2> "$TMP/bt.err" \
    && ok "bench_tokenizer runs from / with no XL_DOCS" || not_ok "bench_tokenizer from /: $(head -c 300 "$TMP/bt.err")"
  check "its text came from the project's docs/" sh -c 'jq -e --arg d "$2" ".source == \$d and .bytes > 0" "$1" > /dev/null' _ "$TMP/bt.json" "$(cd "$ROOT/docs" && pwd -P)"
  check "bench_tokenizer.c names no absolute path of a machine" sh -c '! grep -nE "\"/(work|home|root)/" "$1"' _ "$ROOT/tests/bench_tokenizer.c"
else
  ok "bench_tokenizer not built # SKIP"
fi
finish
