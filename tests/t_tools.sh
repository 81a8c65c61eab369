#!/usr/bin/env bash
# xl-prefill / xl-decode end to end on the golden checkpoints: logits files, states,
# prefill -> state file -> decode, the five golden greedy generations from text, knobs by
# flag, environment and profile, tokenize/detokenize.
. "$(dirname "$0")/lib.sh"
G=$TD/xlstm-tiny-pydocs
M=$ROOT/models/xlstm-tiny-pydocs
ids_of() { jq -c ".cases[$2].ids | join(\",\")" -r "$1/golden.json"; }

# logits and states against the golden file through the tools, several chunk sizes and backends
for fx in m128-f32 m128-bias-bf16-sharded m256-fused; do
  D=$TD/fixtures/$fx
  ids=$(ids_of "$D" 3)
  for opt in "--chunk-size 1" "--chunk-size 7" "--chunk-size 64" "--backend recurrent" "--chunk-size 16 --workers 2 --heads-per-band 2" \
             "--chunk-size 16 --workers 2 --gemm onednn"; do
    # shellcheck disable=SC2086
    expect_status "$fx $opt: prefill" 0 "$BIN/xl-prefill" -m "$D" --ids "$ids" $opt --logits "$TMP/lg" -o "$TMP/st"
    check "$fx $opt: logits match golden" python3 "$ROOT/tests/st_compare.py" "$TMP/lg" logits "$D/golden.safetensors" case3.logits 2e-3 2e-4
    check "$fx $opt: layer0.C matches golden" python3 "$ROOT/tests/st_compare.py" "$TMP/st" layer0.C "$D/golden.safetensors" case3.layer0.C 2e-3 1
  done
done

# --matmul bf16 with workers through the tool (oneDNN's OpenMP threads on a CPU with BF16
# units: they must not upset the exit, e.g. LeakSanitizer's check under make check)
expect_status "--matmul bf16 --workers 2: prefill" 0 "$BIN/xl-prefill" -m "$TD/fixtures/m128-bias-bf16-sharded" \
  --ids "$(ids_of "$TD/fixtures/m128-bias-bf16-sharded" 3)" --matmul bf16 --workers 2

# --gemm: the record says which library was asked for; a bad value is a usage error naming its source
"$BIN/xl-prefill" --ids "$(ids_of "$G" 2)" --gemm onednn > "$TMP/rec" 2> "$TMP/err"
check "--gemm onednn: the record says gemm onednn" jq -e '.gemm == "onednn"' "$TMP/rec"
expect_status "--gemm blis: usage error" 2 "$BIN/xl-prefill" --ids 5,7,9 --gemm blis
stderr_has "--gemm blis: names the flag and the choices" "--gemm: .blis. is not openblas or onednn"
XL_GEMM=blis expect_status "XL_GEMM=blis: usage error" 2 "$BIN/xl-prefill" --ids 5,7,9
stderr_has "XL_GEMM=blis: names the variable" "XL_GEMM"

# record fields
"$BIN/xl-prefill" --ids "$(ids_of "$G" 2)" --chunk-size 16 > "$TMP/rec"
check "prefill record has the contract fields" jq -e '.tool=="xl-prefill" and .tokens==64 and .chunk_size==16 and .backend=="chunkwise" and (.tok_s>0) and (.blas_core|type=="string")' "$TMP/rec"

# the five golden generations, from the prompt text, token for token (no BOS for this model)
n=$(jq '.generations | length' "$G/golden.json")
for i in $(seq 0 $((n - 1))); do
  jq -j ".generations[$i].prompt" "$G/golden.json" > "$TMP/prompt"
  want=$(jq -c ".generations[$i].new_ids" "$G/golden.json")
  "$BIN/xl-decode" --prompt-file "$TMP/prompt" -n 48 --format ndjson > "$TMP/gen" 2>"$TMP/err" || true
  got=$(jq -c .ids "$TMP/gen")
  [ "$got" = "$want" ] && ok "golden generation $i token for token" || not_ok "golden generation $i: got $got want $want"
  wtext=$(jq -r ".generations[$i].text" "$G/golden.json"); gtext=$(jq -r .text "$TMP/gen")
  [ "$gtext" = "$wtext" ] && ok "golden generation $i text" || not_ok "golden generation $i text"
  # the same through prefill -> state file -> decode in another process
  "$BIN/xl-prefill" --prompt-file "$TMP/prompt" -o "$TMP/state.st" > /dev/null
  got2=$("$BIN/xl-decode" --state "$TMP/state.st" -n 48 --format ndjson | jq -c .ids)
  [ "$got2" = "$want" ] && ok "golden generation $i across a state file" || not_ok "golden generation $i across a state file"
done
jq -j ".generations[0].prompt" "$G/golden.json" > "$TMP/prompt"
"$BIN/xl-decode" "$(cat "$TMP/prompt")" -n 48 > "$TMP/text" 2>/dev/null
[ "$(cat "$TMP/text")" = "$(jq -r '.generations[0].text' "$G/golden.json")" ] && ok "text mode streams the golden text" || not_ok "text mode streams the golden text"

# state after the prefill of a case equals the golden state; a split prefill->decode matches one run
ids=$(ids_of "$G" 3)
"$BIN/xl-prefill" --ids "$ids" -o "$TMP/s3" > /dev/null
check "state file layer5.C matches golden" python3 "$ROOT/tests/st_compare.py" "$TMP/s3" layer5.C "$G/golden.safetensors" case3.layer5.C 2e-3 1
check "state file layer5.m matches golden" python3 "$ROOT/tests/st_compare.py" "$TMP/s3" layer5.m "$G/golden.safetensors" case3.layer5.m 2e-3 1
check "state metadata" bash -c "python3 -c \"
import json,struct,sys
r=open('$TMP/s3','rb').read(); n=struct.unpack('<Q',r[:8])[0]; m=json.loads(r[8:8+n])['__metadata__']
sys.exit(0 if m['format']=='xl-state-1' and m['tokens']=='130' and m['last_token']=='$(jq '.cases[3].ids[-1]' "$G/golden.json")' and len(m['model'])==16 else 1)\""
full=$(echo "$ids" | cut -d, -f1-40)
first=$(echo "$ids" | cut -d, -f1-25); rest=$(echo "$ids" | cut -d, -f26-40)
"$BIN/xl-decode" --ids "$full" -n 12 --format ndjson | jq -c .ids > "$TMP/a"
"$BIN/xl-prefill" --ids "$first" -o "$TMP/s25" > /dev/null
"$BIN/xl-decode" --state "$TMP/s25" --ids "$rest" -n 12 --format ndjson | jq -c .ids > "$TMP/b"
check "state + more prompt continues exactly" cmp -s "$TMP/a" "$TMP/b"
"$BIN/xl-decode" --state "$TMP/s25" --ids "$rest" -n 5 --state-out "$TMP/s_out" --format ndjson > /dev/null
"$BIN/xl-decode" --state "$TMP/s_out" -n 7 --format ndjson | jq -c .ids > "$TMP/c"
check "decode --state-out then decode again continues exactly" bash -c "[ \"\$(jq -c '.[5:]' $TMP/a)\" = \"\$(cat $TMP/c)\" ]"

# a state from another model is refused
"$BIN/xl-prefill" -m "$TD/fixtures/m128-f32" --ids 1,2,3 -o "$TMP/other.st" > /dev/null
expect_status "state of another model refused" 1 "$BIN/xl-decode" --state "$TMP/other.st" -n 4
stderr_has "refusal names the fingerprints" "state belongs to another model"
printf 'junk' > "$TMP/junk.st"
expect_status "junk state refused" 1 "$BIN/xl-decode" --state "$TMP/junk.st" -n 4

# knobs: flags, environment, profile (flags > profile > environment)
XL_CHUNK_SIZE=8 XL_WORKERS=2 XL_HEADS_PER_BAND=2 XL_BACKEND=recurrent "$BIN/xl-prefill" --ids 1,2,3 > "$TMP/r1"
check "environment knobs apply" jq -e '.chunk_size==8 and .workers==2 and .heads_per_band==2 and .backend=="recurrent"' "$TMP/r1"
echo '{"params":{"backend":"chunkwise","chunk_size":32,"heads_per_band":4,"workers":1},"metrics":{}}' > "$TMP/prof.json"
XL_CHUNK_SIZE=8 "$BIN/xl-prefill" --ids 1,2,3 --profile "$TMP/prof.json" > "$TMP/r2"
check "profile beats environment" jq -e '.chunk_size==32 and .heads_per_band==4' "$TMP/r2"
"$BIN/xl-prefill" --ids 1,2,3 --profile "$TMP/prof.json" --chunk-size 5 > "$TMP/r3"
check "flag beats profile" jq -e '.chunk_size==5 and .heads_per_band==4' "$TMP/r3"
expect_status "bad env knob is a usage error" 2 env XL_WORKERS=zero "$BIN/xl-prefill" --ids 1
stderr_has "bad env knob named" "XL_WORKERS"

# tokenize / detokenize
echo -n "The Python interpreter" | "$BIN/xl-prefill" --tokenize > "$TMP/tk"
check "--tokenize" jq -e '.ids == [620,472,1258]' "$TMP/tk"
echo '{"ids":[620,472,1258]}' | "$BIN/xl-decode" --detokenize > "$TMP/dt"
check "--detokenize" grep -qx "The Python interpreter" "$TMP/dt"
"$BIN/xl-prefill" --tokenize --bos yes "abc" > "$TMP/tk2"
check "--bos yes prepends bos_token_id" jq -e '.ids[0] == 0' "$TMP/tk2"
printf 'ab\xffcd' > "$TMP/bad.txt"
expect_status "invalid UTF-8 prompt" 1 "$BIN/xl-prefill" --prompt-file "$TMP/bad.txt"
stderr_has "invalid UTF-8 names the byte offset" "bad.txt: .*byte 2"

# --matmul bf16: a real trade: logits move a little from the exact ones, and the record says so
ids=$(ids_of "$G" 2)
"$BIN/xl-prefill" --ids "$ids" --matmul bf16 --logits "$TMP/lb16" > "$TMP/rb16"
check "--matmul bf16 is recorded" jq -e '.matmul == "bf16"' "$TMP/rb16"
check "--matmul bf16 logits stay near the reference (max 0.5)" python3 "$ROOT/tests/st_compare.py" "$TMP/lb16" logits "$G/golden.safetensors" case2.logits 0.5 0.05
check "--matmul bf16 logits are not the fp32 ones" bash -c "! python3 $ROOT/tests/st_compare.py $TMP/lb16 logits $G/golden.safetensors case2.logits 1e-4 1e-5 >/dev/null"

# --profile has one meaning, a settings profile: a missing file or any other file is refused
# (exit 2) and left byte-identical; latency lines only through --profile-log
printf '{"run_dir":"r","profiles":[{"params":{"workers":2}}]}\n' > "$TMP/recommended.json"
cp "$TMP/recommended.json" "$TMP/recommended.before"
for tool in xl-prefill xl-decode; do
  expect_status "$tool --profile on a foreign JSON file: exit 2" 2 "$BIN/$tool" --ids 1,2 --profile "$TMP/recommended.json"
  stderr_has "... saying it is not a settings profile" 'not a settings profile'
  check "... the file is byte-identical" cmp -s "$TMP/recommended.json" "$TMP/recommended.before"
done
echo '{}' > "$TMP/empty.json"
expect_status "--profile on {} is refused" 2 "$BIN/xl-prefill" --ids 1 --profile "$TMP/empty.json"
check "... and {} stays {}" test "$(cat "$TMP/empty.json")" = '{}'
expect_status "--profile on a missing file is an error" 2 "$BIN/xl-decode" --ids 1 -n 1 --profile "$TMP/nope.json"
stderr_has "... pointing at --profile-log" 'no such file.*--profile-log'
check "... and creates nothing" test ! -e "$TMP/nope.json"

# no output replaces a file of another kind (each refused before any work, file untouched)
expect_status "xl-prefill -o over a JSON file is refused" 2 "$BIN/xl-prefill" --ids 1,2 -o "$TMP/recommended.json"
stderr_has "... naming what the file is" 'refusing to overwrite it: it is a JSON file'
"$BIN/xl-prefill" --ids 1,2 -o "$TMP/st.state" > /dev/null
expect_status "xl-prefill --logits over a state file is refused" 2 "$BIN/xl-prefill" --ids 1,2 --logits "$TMP/st.state"
expect_status "xl-prefill -o over its own kind is fine" 0 "$BIN/xl-prefill" --ids 1,2,3 -o "$TMP/st.state"
expect_status "xl-decode -o (text) over a state file is refused" 2 "$BIN/xl-decode" --ids 1,2 -n 2 -o "$TMP/st.state"
expect_status "xl-decode --state-out over a JSON file is refused" 2 "$BIN/xl-decode" --ids 1,2 -n 2 --state-out "$TMP/recommended.json"
expect_status "--stats-log over a JSON file is refused" 1 "$BIN/xl-decode" --ids 1,2 -n 2 --stats-log "$TMP/recommended.json"
expect_status "--profile-log over a JSON file is refused" 1 "$BIN/xl-decode" --ids 1,2 -n 2 --profile-log "$TMP/recommended.json"
check "... every refusal left the files as they were" cmp -s "$TMP/recommended.json" "$TMP/recommended.before"

# per-phase profile through the real forward pass: one line per decode step, every block's phases
"$BIN/xl-decode" "def f(x):" -n 5 --ignore-eos --profile-log "$TMP/prof.jsonl" > /dev/null 2>&1
check "--profile-log writes one JSON line per step" test "$(grep -c . "$TMP/prof.jsonl")" -ge 5
"$BIN/xl-decode" "def f(x):" -n 5 --ignore-eos --profile-log "$TMP/prof.jsonl" > /dev/null 2>&1
check "--profile-log replaces its own kind of file" test "$(grep -c . "$TMP/prof.jsonl")" -ge 5
check "--profile-log lines carry model phases and the six phases of each of the 6 blocks" jq -e -s \
  'map(select(.step > 0)) | last | (.phases | has("embed") and has("lmhead") and has("sample"))
   and (.blocks | length == 6) and (.blocks | all(keys == ["cell","ffn","headnorm","norm","outproj","proj"]))' "$TMP/prof.jsonl"

# outputs sent to a device are written in place, never renamed over it (as root that would
# replace /dev/null with a regular file)
"$BIN/xl-prefill" --ids 1,2,3 -o /dev/null --logits /dev/null --metrics-file /dev/null > "$TMP/dn"
"$BIN/xl-decode" x -n 2 -q -o /dev/null --state-out /dev/null > /dev/null
check "/dev/null as an output file stays a character device" test -c /dev/null

# sampling: reproducible with a seed, different with another
"$BIN/xl-decode" "def f(x):" -n 24 --temperature 0.9 --top-k 40 --top-p 0.95 --seed 7 --format ndjson | jq -c .ids > "$TMP/s1"
"$BIN/xl-decode" "def f(x):" -n 24 --temperature 0.9 --top-k 40 --top-p 0.95 --seed 7 --format ndjson | jq -c .ids > "$TMP/s2"
"$BIN/xl-decode" "def f(x):" -n 24 --temperature 0.9 --top-k 40 --top-p 0.95 --seed 8 --format ndjson | jq -c .ids > "$TMP/s3"
check "sampling reproducible with a seed" cmp -s "$TMP/s1" "$TMP/s2"
check "another seed samples differently" bash -c "! cmp -s $TMP/s1 $TMP/s3"
"$BIN/xl-decode" "x" -n 5 -o "$TMP/out.txt" --format ndjson > "$TMP/o"
check "-o writes the continuation" bash -c "[ \"\$(cat $TMP/out.txt)\" = \"\$(jq -r .text $TMP/o)\" ]"
finish
