# t_init: xl-init writes loadable, reproducible random checkpoints: same seed -> same
# bytes, other seed -> other bytes; every dtype, sharding, fused/bias layouts and --config
# load and run through xl-prefill with finite logits; the draws have the intended ranges.
source "$(dirname "$0")/lib.sh"

# st.py FILE_OR_DIR NAME [N]: prints dtype, shape and the first N values of a tensor as JSON
cat > "$TMP/st.py" <<'EOF'
import json, math, os, struct, sys
def open_set(p):
    if os.path.isdir(p):
        idx = os.path.join(p, "model.safetensors.index.json")
        files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
        return [os.path.join(p, f) for f in files]
    return [p]
def tensor(p, name, n):
    for f in open_set(p):
        with open(f, "rb") as fh:
            hl = struct.unpack("<Q", fh.read(8))[0]
            h = json.loads(fh.read(hl))
            if name not in h: continue
            e = h[name]; a, b = e["data_offsets"]
            fh.seek(8 + hl + a); raw = fh.read(b - a)
            es = {"F32": 4, "BF16": 2, "F16": 2}[e["dtype"]]
            cnt = (b - a) // es if n <= 0 else min(n, (b - a) // es)
            if e["dtype"] == "F32": v = list(struct.unpack("<%df" % cnt, raw[:4 * cnt]))
            elif e["dtype"] == "BF16": v = [struct.unpack("<f", struct.pack("<I", x << 16))[0] for x in struct.unpack("<%dH" % cnt, raw[:2 * cnt])]
            else: v = list(struct.unpack("<%de" % cnt, raw[:2 * cnt]))
            return e["dtype"], e["shape"], v
    sys.exit("no tensor " + name)
dt, shape, v = tensor(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
finite = all(math.isfinite(x) for x in v)
mean = sum(v) / len(v); sd = math.sqrt(sum((x - mean) ** 2 for x in v) / len(v))
print(json.dumps({"dtype": dt, "shape": shape, "n": len(v), "min": min(v), "max": max(v), "mean": mean, "sd": sd,
                  "finite": finite, "head": v[:8]}))
EOF
st() { python3 "$TMP/st.py" "$@"; }
jqv() { jq -r "$1" <<<"$2"; }

expect_status "--help exits 0" 0 "$BIN/xl-init" --help
check "--help prints usage on stdout" grep -q "^Usage: xl-init" "$TMP/out"
expect_status "no -o is a usage error" 2 "$BIN/xl-init" --preset tiny
expect_status "unknown preset is a usage error" 2 "$BIN/xl-init" --preset 3b -o "$TMP/x"
expect_status "bad dtype is a usage error" 2 "$BIN/xl-init" --dtype int8 -o "$TMP/x"
expect_status "bad seed is a usage error" 2 "$BIN/xl-init" --seed abc -o "$TMP/x"
expect_status "heads not dividing the dims is a data error" 1 "$BIN/xl-init" -D 100 --heads 3 -o "$TMP/x"
stderr_has "the bad field is named" "qk_dim_factor|num_heads"

# reproducibility
"$BIN/xl-init" --preset tiny --seed 7 -o "$TMP/a" -q > "$TMP/a.json"
"$BIN/xl-init" --preset tiny --seed 7 -o "$TMP/b" -q > /dev/null
"$BIN/xl-init" --preset tiny --seed 8 -o "$TMP/c" -q > /dev/null
check "same seed, identical weights" cmp -s "$TMP/a/model.safetensors" "$TMP/b/model.safetensors"
check "same seed, identical config" cmp -s "$TMP/a/config.json" "$TMP/b/config.json"
if cmp -s "$TMP/a/model.safetensors" "$TMP/c/model.safetensors"; then not_ok "another seed gives other weights"; else ok "another seed gives other weights"; fi
rec=$(cat "$TMP/a.json")
check "record: tiny preset has 6 blocks, D 256, vocab 4096, bf16" \
  test "$(jqv '[.blocks,.D,.vocab,.dtype] | join(",")' "$rec")" = "6,256,4096,bf16"
check "record: byte count matches the file (header aside)" \
  test "$(( $(stat -c %s "$TMP/a/model.safetensors") - $(jqv .bytes "$rec") ))" -lt 20000
check "tokenizer copied (vocab fits)" test -s "$TMP/a/tokenizer.json"
check "config.json is the 7B-family format" test "$(jq -r '.model_type + "/" + .weight_mode + "/" + (.num_blocks|tostring)' "$TMP/a/config.json")" = "xlstm/single/6"

# the draws
r=$(st "$TMP/a" backbone.blocks.0.mlstm_layer.fgate_preact.bias)
check "forget-gate biases in [3, 6] (mostly open)" test "$(jqv '.min >= 3 and .max <= 6' "$r")" = true
r=$(st "$TMP/a" backbone.blocks.0.mlstm_layer.igate_preact.bias)
check "input-gate biases in [-2, 0]" test "$(jqv '.min >= -2 and .max <= 0' "$r")" = true
r=$(st "$TMP/a" backbone.blocks.2.ffn.proj_down.weight 20000)
check "proj_down ~ N(0, 1/fan_in): sd $(jqv .sd "$r") vs $(python3 -c 'print(1/704**0.5)')" \
  test "$(jqv '(.sd - 0.03769 | fabs) < 0.004 and (.mean | fabs) < 0.002' "$r")" = true
r=$(st "$TMP/a" backbone.blocks.1.norm_ffn.weight)
check "norm weights around 1" test "$(jqv '(.mean - 1 | fabs) < 0.05 and .sd > 0.02 and .sd < 0.2' "$r")" = true

# loads and runs
run_logits() {   # DIR OUT: prefill 4 ids, write the logits; prints the st summary
  "$BIN/xl-prefill" -m "$1" --ids 5,7,9,300 --logits "$2" > "$2.json" 2> "$2.err" && st "$2" logits
}
if r=$(run_logits "$TMP/a" "$TMP/la.st"); then
  check "bf16 tiny: logits [4, 4096], finite, not constant" test "$(jqv '.shape == [4,4096] and .finite and .sd > 0.01' "$r")" = true
else not_ok "bf16 tiny runs through xl-prefill: $(head -c 300 "$TMP/la.st.err")"; fi
"$BIN/xl-init" --preset tiny --seed 7 --dtype f32 -o "$TMP/f" -q > /dev/null
if r=$(run_logits "$TMP/f" "$TMP/lf.st"); then
  check "f32 tiny: logits finite" test "$(jqv '.shape == [4,4096] and .finite' "$r")" = true
else not_ok "f32 tiny runs through xl-prefill: $(head -c 300 "$TMP/lf.st.err")"; fi
# the bf16 file holds the f32 draws rounded: compare a tensor elementwise
python3 - "$TMP/st.py" "$TMP/f" "$TMP/a" > "$TMP/cmp" <<'EOF' || true
import json, subprocess, sys
a = json.loads(subprocess.check_output(["python3", sys.argv[1], sys.argv[2], "backbone.blocks.3.mlstm_layer.q.weight", "4096"]))
b = json.loads(subprocess.check_output(["python3", sys.argv[1], sys.argv[3], "backbone.blocks.3.mlstm_layer.q.weight", "4096"]))
print("same" if a["dtype"] == "F32" and b["dtype"] == "BF16" and all(abs(x - y) <= abs(x) * 2**-8 + 1e-30 for x, y in zip(a["head"], b["head"])) and abs(a["sd"] - b["sd"]) < 1e-3 else "differ")
EOF
check "bf16 weights are the f32 draws rounded (same seed)" grep -q same "$TMP/cmp"
"$BIN/xl-init" --preset tiny --seed 7 --dtype f16 -o "$TMP/h" -q > /dev/null
if r=$(run_logits "$TMP/h" "$TMP/lh.st"); then
  check "f16 tiny: logits finite" test "$(jqv '.finite' "$r")" = true
else not_ok "f16 tiny runs through xl-prefill: $(head -c 300 "$TMP/lh.st.err")"; fi

# sharding: same tensors, same logits
"$BIN/xl-init" --preset tiny --seed 7 --shard-mb 3 -o "$TMP/s" -q > /dev/null
nsh=$(ls "$TMP/s"/model-*-of-*.safetensors 2>/dev/null | wc -l)
check "--shard-mb 3 writes several shards ($nsh) and an index" test "$nsh" -ge 4 -a -s "$TMP/s/model.safetensors.index.json" -a ! -e "$TMP/s/model.safetensors"
if r=$(run_logits "$TMP/s" "$TMP/ls.st"); then
  check "sharded checkpoint gives the same logits as the single file" \
    test "$(st "$TMP/ls.st" logits | jq -c .head)" = "$(st "$TMP/la.st" logits | jq -c .head)"
else not_ok "sharded checkpoint runs: $(head -c 300 "$TMP/ls.st.err")"; fi
"$BIN/xl-init" --preset tiny --seed 7 -o "$TMP/s" -q > /dev/null
check "rewriting unsharded removes the stale index and shards" test ! -e "$TMP/s/model.safetensors.index.json" -a -s "$TMP/s/model.safetensors"

# other layouts and --config
"$BIN/xl-init" -D 128 --blocks 2 --heads 2 --vocab 512 --bias yes --weight-mode fused --tie yes --seed 3 -o "$TMP/u" > "$TMP/u.json" 2> "$TMP/u.err"
check "vocab 512 < tokenizer's: no tokenizer copied, with a warning" test ! -e "$TMP/u/tokenizer.json"
check "the warning names the reason" grep -q "no tokenizer copied" "$TMP/u.err"
if r=$(run_logits "$TMP/u" "$TMP/lu.st"); then
  check "fused + bias + tied layout loads and runs: logits [4, 512] finite" test "$(jqv '.shape == [4,512] and .finite' "$r")" = true
else not_ok "fused + bias + tied layout runs: $(head -c 300 "$TMP/lu.st.err")"; fi
"$BIN/xl-init" --config "$TD/fixtures/m128-f32/config.json" --blocks 3 --tokenizer none --dtype f32 --seed 1 -o "$TMP/g" -q > /dev/null
check "--config FILE with --blocks override" test "$(jq -r '.num_blocks' "$TMP/g/config.json")" = 3
check "--tokenizer none copies none" test ! -e "$TMP/g/tokenizer.json"
if r=$(run_logits "$TMP/g" "$TMP/lg.st"); then
  check "--config checkpoint loads and runs" test "$(jqv '.finite' "$r")" = true
else not_ok "--config checkpoint runs: $(head -c 300 "$TMP/lg.st.err")"; fi

# xlstm_v1: mLSTM v1 + sLSTM blocks
expect_status "--slstm-at needs --arch v1" 2 "$BIN/xl-init" --slstm-at 1 -o "$TMP/x"
expect_status "--slstm-at past the last block is a usage error" 2 "$BIN/xl-init" --arch v1 --blocks 2 --slstm-at 5 -o "$TMP/x"
"$BIN/xl-init" --arch v1 --slstm-at 1,3 -D 128 --blocks 4 --seed 4 -o "$TMP/v1" -q > /dev/null
"$BIN/xl-init" --arch v1 --slstm-at 1,3 -D 128 --blocks 4 --seed 4 -o "$TMP/v1b" -q > /dev/null
check "v1: same seed, identical weights" cmp -s "$TMP/v1/model.safetensors" "$TMP/v1b/model.safetensors"
check "v1: config is xlstm_v1 with sLSTM at 1,3" \
  test "$(jq -c '[.model_type, .xlstm.slstm_at]' "$TMP/v1/config.json")" = '["xlstm_v1",[1,3]]'
r=$(st "$TMP/v1" xlstm_block_stack.blocks.1.xlstm.slstm_cell._recurrent_kernel_ 64 2>/dev/null || echo '{}')
check "v1: block 1 holds an sLSTM recurrent kernel" test "$(jqv '.n > 0' "$r")" = true
if r=$(run_logits "$TMP/v1" "$TMP/lv1.st"); then
  check "v1 checkpoint loads and runs: logits [4, 4096] finite, not constant" test "$(jqv '.shape == [4,4096] and .finite and .sd > 0.001' "$r")" = true
else not_ok "v1 checkpoint runs: $(head -c 300 "$TMP/lv1.st.err")"; fi
finish
