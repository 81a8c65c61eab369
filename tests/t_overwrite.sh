#!/usr/bin/env bash
# t_overwrite: no tool replaces a file of another kind. For each tool that writes files
# (xl-prefill and xl-decode are in t_tools.sh): a foreign file where it would write is
# refused with a message naming what the file is, and left byte-identical; a file of its
# own kind is replaced as before.
source "$(dirname "$0")/lib.sh"
TOOLS=${XL_REAL_BIN:-$BIN}
P="$ROOT/prompts/pydocs.txt"
jqe() { jq -e "$@" > /dev/null; }
# same FILE COPY: byte-identical
same() { cmp -s "$1" "$2"; }

# a settings-less JSON file, a CSV and a state file to play the foreign ones
printf '{"run_dir":"r","profiles":[]}\n' > "$TMP/rec.json"
printf 'a,b\n1,2\n' > "$TMP/other.csv"
"$TOOLS/xl-prefill" --ids 1,2 -o "$TMP/state.st" > /dev/null

# ---- xl-sweep: --profile-out, and a run directory whose trials.jsonl is not one
cp "$TMP/rec.json" "$TMP/prof-out.json"
SW=(--prompt-file "$P" --context 16 --new 4 --repeats 1 --warmup 0 --backend chunkwise --chunk-size 16
    --workers 1 --heads-per-band 1 --progress no --bin "$TOOLS")
expect_status "xl-sweep --profile-out over a foreign JSON file: refused" 1 "$BIN/xl-sweep" "${SW[@]}" -o "$TMP/s1" --profile-out "$TMP/prof-out.json"
stderr_has "... naming what the file is" "prof-out.json: refusing to overwrite it: it is a JSON file with keys run_dir, profiles"
check "... and it is unchanged" same "$TMP/prof-out.json" "$TMP/rec.json"
expect_status "xl-sweep --profile-out a new file" 0 "$BIN/xl-sweep" "${SW[@]}" -o "$TMP/s2" --profile-out "$TMP/prof-new.json"
expect_status "xl-sweep --profile-out over its own profile" 0 "$BIN/xl-sweep" "${SW[@]}" -o "$TMP/s3" --profile-out "$TMP/prof-new.json"
check "... replaced by a profile" jqe '.params.chunk_size == 16' "$TMP/prof-new.json"
mkdir -p "$TMP/s4"
cp "$TMP/other.csv" "$TMP/s4/trials.jsonl"
expect_status "xl-sweep into a directory whose trials.jsonl is a CSV: refused" 1 "$BIN/xl-sweep" "${SW[@]}" -o "$TMP/s4"
check "... and it is unchanged" same "$TMP/s4/trials.jsonl" "$TMP/other.csv"
mkdir -p "$TMP/s5"
cp "$TMP/rec.json" "$TMP/s5/summary.csv"
expect_status "xl-sweep over a summary.csv that is JSON: refused" 1 "$BIN/xl-sweep" "${SW[@]}" -o "$TMP/s5"
check "... and it is unchanged" same "$TMP/s5/summary.csv" "$TMP/rec.json"

# ---- xl-save: outputs.jsonl and outputs/<slug>.txt
R=$TMP/s2
cp "$TMP/other.csv" "$R/outputs.jsonl"
expect_status "xl-save over an outputs.jsonl that is a CSV: refused" 1 "$BIN/xl-save" "$R" -n 2
stderr_has "... naming it" "outputs.jsonl: refusing to overwrite it: it is a text file"
check "... and it is unchanged" same "$R/outputs.jsonl" "$TMP/other.csv"
rm "$R/outputs.jsonl"
slug=$(jq -r .slug "$R/trials.jsonl")
mkdir -p "$R/outputs"
cp "$TMP/state.st" "$R/outputs/$slug.txt"
expect_status "xl-save over a .txt that is a state file: that output fails" 1 "$BIN/xl-save" "$R" -n 2
check "... and the file is unchanged" same "$R/outputs/$slug.txt" "$TMP/state.st"
rm "$R/outputs/$slug.txt"
expect_status "xl-save then saves" 0 "$BIN/xl-save" "$R" -n 2

# ---- xl-judge internal: ratings.csv / ratings.jsonl
cp "$TMP/rec.json" "$R/ratings.csv"
expect_status "xl-judge internal over a ratings.csv that is JSON: refused" 1 "$BIN/xl-judge" internal "$R"
check "... and it is unchanged" same "$R/ratings.csv" "$TMP/rec.json"
rm "$R/ratings.csv"
cp "$TMP/other.csv" "$R/ratings.jsonl"
expect_status "xl-judge internal over a ratings.jsonl that is a CSV: refused" 1 "$BIN/xl-judge" internal "$R"
check "... and it is unchanged" same "$R/ratings.jsonl" "$TMP/other.csv"
rm "$R/ratings.jsonl"
expect_status "xl-judge internal then rates" 0 "$BIN/xl-judge" internal "$R"

# ---- xl-merge: merged.csv, recommended.json
cp "$TMP/rec.json" "$R/merged.csv"
expect_status "xl-merge over a merged.csv that is JSON: refused" 1 "$BIN/xl-merge" "$R"
check "... and it is unchanged" same "$R/merged.csv" "$TMP/rec.json"
rm "$R/merged.csv"
cp "$TMP/other.csv" "$R/recommended.json"
expect_status "xl-merge over a recommended.json that is a CSV: refused" 1 "$BIN/xl-merge" "$R"
check "... and it is unchanged" same "$R/recommended.json" "$TMP/other.csv"
rm "$R/recommended.json"
expect_status "xl-merge then merges" 0 "$BIN/xl-merge" "$R"
expect_status "xl-merge again over its own files" 0 "$BIN/xl-merge" "$R"

# ---- xl-plot: report.md and the figures
cp "$TMP/state.st" "$R/report.md"
expect_status "xl-plot over a report.md that is binary: refused" 1 env XL_PLOTS_DIR="$ROOT/plots" "$BIN/xl-plot" "$R" --format svg
check "... and it is unchanged" same "$R/report.md" "$TMP/state.st"
rm "$R/report.md"
mkdir -p "$R/plots"
cp "$TMP/rec.json" "$R/plots/prefill_vs_decode.svg"
expect_status "xl-plot over a figure that is JSON: that figure fails" 1 env XL_PLOTS_DIR="$ROOT/plots" "$BIN/xl-plot" "$R" --format svg
check "... and it is unchanged" same "$R/plots/prefill_vs_decode.svg" "$TMP/rec.json"
rm "$R/plots/prefill_vs_decode.svg"
expect_status "xl-plot then plots" 0 env XL_PLOTS_DIR="$ROOT/plots" "$BIN/xl-plot" "$R" --format svg

# ---- xl-init: the checkpoint's files
mkdir -p "$TMP/ck"
cp "$TMP/other.csv" "$TMP/ck/config.json"
expect_status "xl-init over a config.json that is a CSV: refused" 1 "$BIN/xl-init" -o "$TMP/ck" --preset tiny
check "... and it is unchanged, nothing else written" bash -c "cmp -s '$TMP/ck/config.json' '$TMP/other.csv' && test ! -e '$TMP/ck/model.safetensors'"
mkdir -p "$TMP/ck2"
cp "$TMP/state.st" "$TMP/ck2/model.safetensors"
expect_status "xl-init over a state file named model.safetensors: refused" 1 "$BIN/xl-init" -o "$TMP/ck2" --preset tiny
check "... and it is unchanged" same "$TMP/ck2/model.safetensors" "$TMP/state.st"
finish
