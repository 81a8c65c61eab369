#!/usr/bin/env bash
# t_judge_internal: `xl-judge internal` end to end on a small run directory made by xl-save
# with the default model: ratings.jsonl/.csv with the documented columns, one row per
# output, ppl = exp(-avg_logprob), len_tokens = the saved token count, prompt length as
# xl-decode counted it, equal settings' texts score equally, the greedy continuation beats
# the same tokens scrambled; --prompt-file; bad inputs exit 1 and leave earlier ratings
# untouched; usage errors exit 2.
source "$(dirname "$0")/lib.sh"
J="$BIN/xl-judge"
R=$TMP/run
mkdir -p "$R"
printf 'The Python interpreter' > "$R/prompt.txt"
cat > "$R/trials.jsonl" <<'EOF'
{"trial":1,"slug":"b=chunkwise__ck=16__h=1__w=1__i=1","status":"ok","backend":"chunkwise","chunk_size":16,"heads_per_band":1,"workers":1,"context":64,"prompt_file":"prompt.txt"}
{"trial":2,"slug":"b=recurrent__ck=1__h=2__w=1__i=2","status":"ok","backend":"recurrent","chunk_size":1,"heads_per_band":2,"workers":1,"context":64,"prompt_file":"prompt.txt"}
EOF
"$BIN/xl-save" "$R" -n 24 > /dev/null 2>&1
check "fixture: 2 outputs saved" test "$(grep -c . "$R/outputs.jsonl")" = 2

# a third output: the first one's tokens reversed (same words, far less likely)
jq -c 'select(.trial==1) | .slug="scrambled" | .trial=3 | .token_ids|=reverse | del(.text)' "$R/outputs.jsonl" > "$TMP/scr"
cat "$TMP/scr" >> "$R/outputs.jsonl"

expect_status "judge internal runs" 0 "$J" internal "$R"
check "ratings.csv header" test "$(head -1 "$R/ratings.csv")" = \
  "slug,trial,avg_logprob,ppl,len_tokens,distinct2,distinct3,backend,chunk_size,heads_per_band,workers,context"
check "one row per output (csv and jsonl)" test "$(($(wc -l < "$R/ratings.csv") - 1)) $(grep -c . "$R/ratings.jsonl")" = "3 3"
check "slugs in outputs.jsonl order" test "$(jq -r .slug "$R/ratings.jsonl" | tr '\n' ' ')" = \
  "b=chunkwise__ck=16__h=1__w=1__i=1 b=recurrent__ck=1__h=2__w=1__i=2 scrambled "
check "avg_logprob finite and negative, ppl = exp(-avg)" \
  test "$(jq -r 'select(.avg_logprob < 0 and ((.ppl - ((-.avg_logprob)|exp))|fabs) < 1e-9 * .ppl) | .slug' "$R/ratings.jsonl" | wc -l)" = 3
check "len_tokens = saved token count, all scored" \
  test "$(jq -r '"\(.len_tokens) \(.scored_tokens)"' "$R/ratings.jsonl" | sort -u)" = "24 24"
check "prompt tokens as xl-decode counted them" \
  test "$(jq -r .prompt_tokens "$R/ratings.jsonl" | sort -u)" = "$(jq -r .prompt_tokens "$R/outputs.jsonl" | head -1)"
a1=$(jq -r 'select(.trial==1) | .avg_logprob' "$R/ratings.jsonl")
a2=$(jq -r 'select(.trial==2) | .avg_logprob' "$R/ratings.jsonl")
a3=$(jq -r 'select(.trial==3) | .avg_logprob' "$R/ratings.jsonl")
check "same text under two settings, same score ($a1)" test "$a1" = "$a2"
check "greedy ($a1) beats the scrambled tokens ($a3) by > 1 nat/token" awk -v a="$a1" -v b="$a3" 'BEGIN { exit !(a - b > 1) }'
check "distinct-2/3 in (0, 1]" test "$(jq -r 'select(.distinct2 > 0 and .distinct2 <= 1 and .distinct3 > 0 and .distinct3 <= 1) | .slug' "$R/ratings.jsonl" | wc -l)" = 3
check "the scrambled row's text came from outputs/<slug>.txt or its ids" test "$(jq -r 'select(.trial==3) | .distinct2 | type' "$R/ratings.jsonl")" = number
check "trial parameters in the csv" grep -q '^b=recurrent__ck=1__h=2__w=1__i=2,2,.*,recurrent,1,2,1,64$' "$R/ratings.csv"
check "critic provenance in the jsonl" test "$(jq -r .judge_fingerprint "$R/ratings.jsonl" | sort -u)" = "$(jq -r .fingerprint "$R/outputs.jsonl" | head -1)"

# a different prompt changes the scores of the same tokens
printf 'Completely unrelated words: banana tractor' > "$TMP/other.txt"
cp "$R/ratings.csv" "$TMP/before.csv"
mkdir -p "$TMP/r2" && cp "$R/outputs.jsonl" "$TMP/r2/"
expect_status "--prompt-file" 0 "$J" internal "$TMP/r2" --prompt-file "$TMP/other.txt"
b1=$(jq -r 'select(.trial==1) | .avg_logprob' "$TMP/r2/ratings.jsonl")
check "another prompt, another score ($b1 < $a1)" awk -v a="$a1" -v b="$b1" 'BEGIN { exit !(b < a) }'

# errors: nothing written, earlier ratings untouched
jq -c 'if .trial==2 then .token_ids[0]=999999 else . end' "$R/outputs.jsonl" > "$TMP/bad" && cp "$TMP/bad" "$R/outputs.jsonl"
expect_status "a token id outside the vocabulary" 1 "$J" internal "$R"
stderr_has "names the output" "recurrent__ck=1__h=2__w=1__i=2.*token_ids\[0\]"
check "earlier ratings untouched" cmp -s "$TMP/before.csv" "$R/ratings.csv"
jq -c 'del(.prompt_file)' "$TMP/scr" > "$TMP/r2/outputs.jsonl"
expect_status "no prompt file" 1 "$J" internal "$TMP/r2"
stderr_has "asks for --prompt-file" "prompt_file.*--prompt-file"
expect_status "no outputs.jsonl" 1 "$J" internal "$TMP/empty"
stderr_has "says to run xl-save" "run xl-save first"
expect_status "--help" 0 "$J" internal --help
check "--help on stdout" grep -q "Usage: xl-judge internal RUN_DIR" "$TMP/out"
expect_status "no RUN_DIR" 2 "$J" internal
expect_status "unknown option" 2 "$J" internal "$R" --nope
finish
