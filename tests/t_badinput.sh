#!/usr/bin/env bash
# Bad checkpoints and configs: each gets a clear error naming the file and problem, a
# non-zero exit, and (under make check) no sanitizer report.
. "$(dirname "$0")/lib.sh"
FX=$TD/fixtures/m128-f32
mk() {  # mk NAME: a copy of the f32 fixture in $TMP/NAME
  rm -rf "$TMP/$1"; mkdir -p "$TMP/$1"; cp "$FX/config.json" "$FX/model.safetensors" "$TMP/$1/"
}
run_bad() {  # run_bad LABEL DIR PATTERN
  expect_status "$1: exit 1" 1 "$BIN/xl-prefill" -m "$2" --ids 1,2,3
  stderr_has "$1: message" "$3"
  if grep -qE "AddressSanitizer|runtime error|LeakSanitizer" "$TMP/err"; then not_ok "$1: sanitizer clean"; else ok "$1: sanitizer clean"; fi
}
for kind in truncate hlen_past_eof offsets_past_data overlap unknown_dtype swap_shape drop_tensor bad_json; do
  mk "$kind"
  t=$(python3 "$ROOT/tests/mutate_st.py" "$FX/model.safetensors" "$TMP/$kind/model.safetensors" "$kind" \
      backbone.blocks.0.mlstm_layer.q.weight)
  case $kind in
    truncate)          pat="model.safetensors: (truncated|header length|.*run past)";;
    hlen_past_eof)     pat="model.safetensors: header length [0-9]+ runs past the end";;
    offsets_past_data) pat="tensor '$t': data_offsets .* run past the data area";;
    overlap)           pat="tensors overlap";;
    unknown_dtype)     pat="tensor '$t': unknown dtype 'Q4_K'";;
    swap_shape)        pat="tensor '$t' has shape \[128, 64\], expected \[64, 128\]";;
    drop_tensor)       pat="missing tensor '$t'";;
    bad_json)          pat="header is not a JSON object";;
  esac
  run_bad "$kind" "$TMP/$kind" "$pat"
done

# an empty file and a file shorter than the length prefix
mk empty; : > "$TMP/empty/model.safetensors"
run_bad "empty file" "$TMP/empty" "truncated: 0 bytes"
mk short; printf 'abc' > "$TMP/short/model.safetensors"
run_bad "3-byte file" "$TMP/short" "truncated: 3 bytes"

# shards: one listed in the index but absent; a tensor listed for the wrong shard
SH=$TD/fixtures/m128-bias-bf16-sharded
rm -rf "$TMP/sh"; cp -r "$SH" "$TMP/sh"; rm "$TMP/sh/model-00004-of-00009.safetensors"
run_bad "shard missing" "$TMP/sh" "shard 'model-00004-of-00009.safetensors' listed in the index is missing"
rm -rf "$TMP/sh2"; cp -r "$SH" "$TMP/sh2"
jq '.weight_map["lm_head.weight"] = "model-00001-of-00009.safetensors"' "$SH/model.safetensors.index.json" > "$TMP/sh2/model.safetensors.index.json"
run_bad "tensor in the wrong shard" "$TMP/sh2" "tensor 'lm_head.weight' is listed for shard 'model-00001-of-00009.safetensors'"
rm -rf "$TMP/sh3"; cp -r "$SH" "$TMP/sh3"; echo '{"weight_map": 5}' > "$TMP/sh3/model.safetensors.index.json"
run_bad "index without weight_map" "$TMP/sh3" "weight_map"

# configs
cfg() {  # cfg LABEL JQ-FILTER PATTERN
  mk cfg; jq "$2" "$FX/config.json" > "$TMP/cfg/config.json"
  run_bad "config: $1" "$TMP/cfg" "$3"
}
cfg "num_heads missing"   'del(.num_heads)'                       'missing field "num_heads"'
cfg "sizes disagree"      '.hidden_size = 256'                    '"hidden_size" \(256\) and "embedding_dim" \(128\) disagree'
cfg "weight_mode"         '.weight_mode = "packed"'               '"weight_mode" must be "single" or "fused"'
cfg "heads do not divide" '.num_heads = 3'                        'qk_dim 64 is not a positive multiple of num_heads 3'
cfg "model_type"          '.model_type = "llama"'                 '"model_type" is "llama"'
cfg "vocab type"          '.vocab_size = "big"'                   '"vocab_size" must be an integer'
cfg "use_bias type"       '.use_bias = "yes"'                     '"use_bias" must be true or false'
mk cfg; printf '{"hidden_size": 128,' > "$TMP/cfg/config.json"
run_bad "config: not JSON" "$TMP/cfg" "config.json: not a JSON object"
mk cfg; rm "$TMP/cfg/config.json"
run_bad "config: absent" "$TMP/cfg" "config.json: cannot read"
# no lm_head.weight and tie_word_embeddings false -> missing tensor; true -> runs tied
mk tie; python3 "$ROOT/tests/mutate_st.py" "$FX/model.safetensors" "$TMP/tie/model.safetensors" drop_tensor lm_head.weight >/dev/null
run_bad "untied without lm_head" "$TMP/tie" "missing tensor 'lm_head.weight'"
jq '.tie_word_embeddings = true' "$FX/config.json" > "$TMP/tie/config.json"
expect_status "tied embeddings run without lm_head.weight" 0 "$BIN/xl-prefill" -m "$TMP/tie" --ids 1,2,3

# command-line and input errors
expect_status "unknown flag is a usage error" 2 "$BIN/xl-prefill" --frobnicate
stderr_has "usage error points at --help" "Try 'xl-prefill --help'"
expect_status "bad number" 2 "$BIN/xl-prefill" -m "$FX" --ids 1 --chunk-size 12abc
expect_status "chunk size 0" 2 "$BIN/xl-prefill" -m "$FX" --ids 1 --chunk-size 0
expect_status "id out of range (--ids is the command line: a usage error)" 2 "$BIN/xl-prefill" -m "$FX" --ids 1,99999
stderr_has "id out of range named" "not an id in \[0, 512\)"
expect_status "missing model dir" 1 "$BIN/xl-prefill" -m "$TMP/nope" --ids 1
expect_status "--help" 0 "$BIN/xl-prefill" --help
grep -q -- "--chunk-size" "$TMP/out" && ok "--help lists the flags" || not_ok "--help lists the flags"
expect_status "decode --help" 0 "$BIN/xl-decode" --help

# a tokenizer.json with ids past the model's vocab_size: refused, never embedded
M=$ROOT/models/xlstm-tiny-pydocs
mkdir -p "$TMP/tokbig"; cp "$M"/*.json "$TMP/tokbig/"; ln -s "$M/model.safetensors" "$TMP/tokbig/model.safetensors"
jq '.added_tokens += [{"id": 5000, "content": "<big>", "special": true, "normalized": false}]' "$M/tokenizer.json" > "$TMP/tokbig/tokenizer.json"
expect_status "tokenizer id past vocab_size (text prompt): exit 1" 1 "$BIN/xl-prefill" -m "$TMP/tokbig" "x<big>"
stderr_has "tokenizer id past vocab_size (text prompt): message" "token id 5000 is outside the model's vocabulary \(vocab_size 4096\)"
finish
