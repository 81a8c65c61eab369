# t_init_hf: the config.json xl-init writes loads in Hugging Face transformers 5.x, whose
# xLSTMConfig is a strict dataclass that refuses a JSON integer in a float field
# ("v_dim_factor": 1): every float field is written with a decimal point or an exponent,
# also when a flag sets it to a whole number, and the values are unchanged.
source "$(dirname "$0")/lib.sh"

# xLSTMConfig's float fields (transformers' configuration_xlstm.py)
floats="qk_dim_factor v_dim_factor ffn_proj_factor gate_soft_cap output_logit_soft_cap norm_eps eps"

for args in "--preset tiny" "--preset tiny --v-factor 1 --qk-factor 1 --ffn-factor 3"; do
  dir=$TMP/m$RANDOM
  # shellcheck disable=SC2086
  "$BIN/xl-init" $args -o "$dir" -q > /dev/null
  bad=
  for k in $floats; do
    line=$(grep -E "\"$k\":" "$dir/config.json" || true)
    [ -n "$line" ] || { bad="$bad $k(absent)"; continue; }
    grep -qE "\"$k\":[[:space:]]*-?[0-9]+(\.[0-9]+([eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)[[:space:]]*,?$" <<<"$line" || bad="$bad $line"
  done
  if [ -z "$bad" ]; then ok "xl-init $args: every float field has a decimal point or exponent"; else not_ok "xl-init $args: $bad"; fi
done
check "--v-factor 1 is written 1.0" grep -qE '"v_dim_factor":[[:space:]]*1\.0,' "$dir/config.json"
check "--ffn-factor 3 is written 3.0" grep -qE '"ffn_proj_factor":[[:space:]]*3\.0,' "$dir/config.json"
check "the soft caps are 15.0 and 30.0" grep -qE '"output_logit_soft_cap":[[:space:]]*30\.0,' "$dir/config.json"
if command -v python3 >/dev/null; then
  check "python reads every float field as a float, integers as integers" python3 - "$dir/config.json" $floats <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
assert all(isinstance(c[k], float) for k in sys.argv[2:]), [(k, c[k]) for k in sys.argv[2:]]
assert all(isinstance(c[k], int) and not isinstance(c[k], bool) for k in
           ("hidden_size", "num_heads", "num_blocks", "vocab_size", "chunk_size", "ffn_round_up_to_multiple_of"))
assert c["v_dim_factor"] == 1.0 and c["qk_dim_factor"] == 1.0 and abs(c["norm_eps"] - 1e-6) < 1e-18
EOF
fi
check "the checkpoint still loads and runs" "$BIN/xl-prefill" -m "$dir" --ids 5,7,9 -o "$TMP/s.state"
finish
