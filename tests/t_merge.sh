#!/usr/bin/env bash
# t_merge: xl-merge on crafted CSVs: the join reports unmatched slugs in both
# directions (quality samples are not unmatched), merged.csv keeps every summary row
# (failed ones too), pareto.csv holds the expected slugs per context length under the
# noise-aware rules (dominance only beyond the 95% intervals, ties to the simplest, never
# ranked by a measurement a knob cannot change), quality is compared pair by pair with the
# fp32 reference, profiles are valid JSON with params and the tolerance rule picks the
# expected setting; bad inputs (a row with cells missing among them) fail with exit 1
# naming the file (and line).
source "$(dirname "$0")/lib.sh"
M="$BIN/xl-merge"
R=$TMP/run
mkdir -p "$R"

# Every speed comes with its 95% interval (_ci95), every rating with two more samples
# (SLUG__s=1, __s=2: xl-save --samples 3), so differences can be told from noise.
# ctx 128: A, B, C, D are fp32 (the same output: identical quality samples); H is bf16:
#   faster than A on both speeds beyond the noise, but its quality is lower beyond the
#   noise (paired: -0.21 +- 0.02). B and C are slower than A on both speeds (dominated), D
#   failed. Front: A and H.
# ctx 512: E and F differ by less than the noise on prefill (180 vs 182, +-5) and share
#   decode and output: a tie, and E (chunk size 64, the default) stands for both; I is the
#   same; J is slower on both (dominated); G has no decode value (never on the front).
# ctx 1024: K2 differs from K1 only in chunk size, which cannot change decode speed, yet
#   its decode reads 40 vs 20: never ranked by it, K1 and K2 tie and K1 (default) wins.
cat > "$R/summary.csv" <<'EOF'
trial,slug,status,error,backend,chunk_size,heads_per_band,workers,matmul,prompt_tokens,new_tokens,prefill_tok_s,prefill_tok_s_ci95,decode_tok_s,decode_tok_s_ci95,peak_rss_mb
1,A,ok,,chunkwise,64,2,2,fp32,128,32,200,2,30,0.5,500
2,B,ok,,chunkwise,32,1,2,fp32,128,32,150,2,25,0.5,400
3,C,ok,,chunkwise,64,1,1,fp32,128,32,100,2,20,0.5,450
4,D,failed,"out of memory, killed",chunkwise,256,4,2,fp32,128,32,999,2,99,0.5,300
5,H,ok,,chunkwise,64,2,2,bf16,128,32,210,2,35,0.5,600
6,E,ok,,chunkwise,64,2,2,fp32,512,32,180,5,28,1,500
7,F,ok,,chunkwise,128,2,2,fp32,512,32,182,5,28,1,500
8,G,ok,,recurrent,1,1,1,fp32,512,32,300,5,,,300
9,I,ok,,chunkwise,32,2,2,fp32,512,32,176,5,28,1,500
10,J,ok,,chunkwise,64,2,1,fp32,512,32,120,5,22,1,500
11,K1,ok,,chunkwise,64,1,1,fp32,1024,32,100,5,20,0.1,500
12,K2,ok,,chunkwise,16,1,1,fp32,1024,32,101,5,40,0.1,500
EOF
# Ratings carry the trial's parameters too (their names clash with the summary's).
cat > "$R/ratings.csv" <<'EOF'
slug,trial,avg_logprob,ppl,len_tokens,distinct2,distinct3,backend,chunk_size
A,1,-2.10,8.17,32,0.9,0.95,chunkwise,64
A__s=1,1,-2.00,8.17,32,0.9,0.95,chunkwise,64
A__s=2,1,-2.20,8.17,32,0.9,0.95,chunkwise,64
B,2,-2.10,9.03,32,0.9,0.95,chunkwise,32
B__s=1,2,-2.00,9.03,32,0.9,0.95,chunkwise,32
B__s=2,2,-2.20,9.03,32,0.9,0.95,chunkwise,32
C,3,-2.10,7.39,32,0.9,0.95,chunkwise,16
C__s=1,3,-2.00,7.39,32,0.9,0.95,chunkwise,16
C__s=2,3,-2.20,7.39,32,0.9,0.95,chunkwise,16
H,5,-2.30,9.97,32,0.9,0.95,chunkwise,64
H__s=1,5,-2.22,9.97,32,0.9,0.95,chunkwise,64
H__s=2,5,-2.41,9.97,32,0.9,0.95,chunkwise,64
E,6,-2.05,7.77,32,0.9,0.95,chunkwise,64
F,7,-2.05,7.77,32,0.9,0.95,chunkwise,128
G,8,-2.05,7.77,32,0.9,0.95,recurrent,1
I,9,-2.05,7.77,32,0.9,0.95,chunkwise,32
J,10,-2.05,7.77,32,0.9,0.95,chunkwise,64
K1,11,-2.05,7.77,32,0.9,0.95,chunkwise,64
K2,12,-2.05,7.77,32,0.9,0.95,chunkwise,16
X,99,-1.00,2.72,32,0.9,0.95,chunkwise,8
EOF
cat > "$R/ratings_ollama.csv" <<'EOF'
slug,trial,coherence,relevance,fluency,overall,rationale,judge_model,status,error
A,1,7,7,7,7,"fine, on topic",m,ok,
B,2,6,6,6,6,ok,m,ok,
C,3,8,8,8,8,"good ""story""",m,ok,
H,5,6,6,6,6,meh,m,ok,
E,6,7,7,7,7,ok,m,ok,
F,7,7,7,7,7,ok,m,ok,
I,9,7,7,7,7,ok,m,ok,
J,10,7,7,7,7,ok,m,ok,
K1,11,7,7,7,7,ok,m,ok,
K2,12,7,7,7,7,ok,m,ok,
Y,42,9,9,9,9,orphan,m,ok,
EOF

# slugs COLUMN FILE [FILTER_COL VALUE]: the slug column of rows, sorted, space-joined.
slugs() {
  python3 - "$@" <<'PY'
import csv, sys
f = sys.argv[1]
rows = list(csv.DictReader(open(f)))
if len(sys.argv) > 3:
    rows = [r for r in rows if r[sys.argv[2]] == sys.argv[3]]
print(" ".join(sorted(r["slug"] for r in rows)))
PY
}
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }

expect_status "merge runs" 0 "$M" "$R"
cp "$TMP/out" "$TMP/sum.json"; cp "$TMP/err" "$TMP/merge.err"
stderr_has "summary row without a rating reported by slug and file" "summary row\(s\) have no rating in .*/ratings\.csv: D"
stderr_has "rating without a trial reported (ratings.csv), samples are not orphans" "1 row\(s\) of .*/ratings\.csv have no trial in the summary: X$"
stderr_has "rating without a trial reported (ratings_ollama.csv)" "ratings_ollama\.csv have no trial in the summary: Y"
stderr_has "ollama: G and D unrated" "2 summary row\(s\) have no rating in .*ratings_ollama\.csv: D, G"
stderr_has "reasoning line per context" "context 128: recommend A: "
check "NDJSON summary is one line" test "$(wc -l < "$TMP/sum.json")" = 1
check "NDJSON counts (8 sample rows of 4 trials)" test "$(jget "$TMP/sum.json" '(d["rows"], d["ok_rows"], d["ratings"]["joined"], d["ratings"]["summary_unrated"], d["ratings"]["unmatched"], d["ratings"]["samples"], d["ratings_ollama"]["unmatched"], d["contexts"], d["quality"], d["quality_samples"])')" = "(12, 11, 11, 1, 1, 8, 1, 3, 'avg_logprob', 3)"
check "merged.csv keeps every summary row, failed ones too" test "$(slugs "$R/merged.csv")" = "A B C D E F G H I J K1 K2"
check "merged.csv: failed row kept with its error" test "$(slugs "$R/merged.csv" error "out of memory, killed")" = "D"
hdr=$(head -1 "$R/merged.csv")
check "merged.csv has quality columns, prefixed clashes and the choice's columns" \
  bash -c "[[ '$hdr' == *,avg_logprob,* && '$hdr' == *,ratings_trial,* && '$hdr' == *,ratings_backend,* && '$hdr' == *,overall,* && '$hdr' == *,ollama_status,* && '$hdr' == *,rationale,* && '$hdr' == *,front,* && '$hdr' == *,tied_with,* && '$hdr' == *,dominated_by,* && '$hdr' == *,quality_diff,* && '$hdr' == *,avg_logprob_ci95* ]]"
check "merged.csv: quoted rationale survives" test "$(python3 -c 'import csv,sys; print([r["rationale"] for r in csv.DictReader(open(sys.argv[1])) if r["slug"]=="C"][0])' "$R/merged.csv")" = 'good "story"'
col() { python3 -c 'import csv,sys; print(" ".join(r[sys.argv[3]] for r in csv.DictReader(open(sys.argv[1])) if r["slug"] in sys.argv[2].split()))' "$@"; }
check "quality: the mean of a trial's samples" test "$(col "$R/merged.csv" "A H" avg_logprob)" = "-2.1 -2.31"
check "pareto.csv ctx 128 = A H (B, C dominated beyond the noise, D failed)" test "$(slugs "$R/pareto.csv" prompt_tokens 128)" = "A H"
check "dominated rows name who dominates them" test "$(col "$R/merged.csv" "B C" dominated_by)" = "A A"
check "pareto.csv ctx 512 = E (F and I tie with it within the noise; J dominated; G no decode)" test "$(slugs "$R/pareto.csv" prompt_tokens 512)" = "E"
check "two settings whose timings differ by less than the noise tie: F and I tied with E" test "$(col "$R/merged.csv" "F I" tied_with)" = "E E"
check "a knob that cannot affect decode is never ranked by it: K2 (chunk 16, decode 40) ties with K1" \
  test "$(slugs "$R/pareto.csv" prompt_tokens 1024) $(col "$R/merged.csv" K2 tied_with)" = "K1 K1"
check "... and K1, the default chunk size, is recommended" test "$(jget "$R/profile_ctx1024.json" 'd["slug"]')" = K1
check "paired quality against the fp32 reference: H worse beyond the noise" \
  test "$(col "$R/merged.csv" H quality_vs_ref) $(col "$R/merged.csv" H quality_ref)" = "worse C"
check "fp32 rows: identical to the reference" test "$(col "$R/merged.csv" "A B" quality_vs_ref)" = "identical identical"
check "quality.csv: one row per context and output setting" \
  test "$(python3 -c 'import csv,sys; print(" ".join(r["context"]+":"+r["setting"]+":"+r["verdict"] for r in csv.DictReader(open(sys.argv[1]))))' "$R/quality.csv")" = "128:matmul=fp32:reference 128:matmul=bf16:worse 512:matmul=fp32:reference 1024:matmul=fp32:reference"
check "quality.csv: H's mean difference and its interval" \
  python3 -c 'import csv,sys; r=[r for r in csv.DictReader(open(sys.argv[1])) if r["setting"]=="matmul=bf16"][0]; d=float(r["diff"]); sys.exit(not (abs(d + 0.21) < 1e-9 and float(r["diff_hi"]) < 0 and r["samples"] == "3"))' "$R/quality.csv"
check "profile_ctx128.json picks A (H's quality is not within 0.05 beyond the noise)" test "$(jget "$R/profile_ctx128.json" 'd["slug"], d["context"], d["params"]["backend"], d["params"]["chunk_size"], d["params"]["workers"], d["params"]["matmul"]')" = "('A', 128, 'chunkwise', 64, 2, 'fp32')"
check "profile_ctx512.json picks E, naming the settings that tie with it" test "$(jget "$R/profile_ctx512.json" 'd["slug"], d["metrics"]["decode_tok_s"], d["metrics"]["avg_logprob"], sorted(d["equivalent"]), d["significant"]')" = "('E', 28, -2.05, ['F', 'I'], False)"
check "a profile says how it compares with the default setting (C), objective by objective" \
  test "$(jget "$R/profile_ctx128.json" 'd["vs_default"]["slug"], d["vs_default"]["prefill_tok_s"], d["vs_default"]["avg_logprob"]')" = "('C', 'better', 'tie')"
stderr_has "... in its reason too" "context 128: recommend A: .*against the default setting \(C\): prefill_tok_s better, decode_tok_s better, avg_logprob tie"
check "recommended.json lists all three" test "$(jget "$R/recommended.json" '[p["file"] for p in d["profiles"]]')" = "['profile_ctx128.json', 'profile_ctx512.json', 'profile_ctx1024.json']"
check "front rows say how they compare with the recommendation" test "$(col "$R/merged.csv" H vs_recommended)" = "prefill_tok_s:better,decode_tok_s:better,avg_logprob:worse"
check "no temp files left" test -z "$(ls "$R" | grep tmp || true)"

# Tolerance widens the choice: 0.5 admits H, significantly faster than A.
expect_status "tolerance 0.5" 0 "$M" "$R" --quality-tolerance 0.5 -o "$TMP/o50"
check "tolerance 0.5 picks H, significantly faster" test "$(jget "$TMP/o50/profile_ctx128.json" 'd["slug"], d["significant"], d["vs_next"]["slug"], d["vs_next"]["decode_tok_s"]')" = "('H', True, 'A', 'better')"
expect_status "prefill objective" 0 "$M" "$R" --objective prefill --quality-tolerance 0.5 -o "$TMP/opre"
check "--objective prefill picks by prefill speed (H at 128)" test "$(jget "$TMP/opre/profile_ctx128.json" 'd["slug"], d["selection"]["speed"]')" = "('H', 'prefill_tok_s')"

# The external judge's score as quality (default tolerance 0.5; one sample each).
expect_status "quality overall" 0 "$M" "$R" --quality overall -o "$TMP/ov"
# One score per output gives no interval: quality differences cannot beat the noise, so the
# front ranks on speed (H); but the pick must stay within the tolerance of the best score
# measured (C's 8), which only C does.
check "overall: tolerance 0.5, no front row within it: C, the only one within 0.5 of 8" test "$(jget "$TMP/ov/recommended.json" 'd["quality"], d["tolerance"], d["profiles"][0]["slug"], d["profiles"][0]["selection"]["on_front"]')" = "('overall', 0.5, 'C', False)"
check "overall: G unrated so not on the 512 front" test "$(slugs "$TMP/ov/pareto.csv" prompt_tokens 512)" = "E"

# Custom objectives with a minimized one; decode is no longer an objective so G counts.
expect_status "custom objectives" 0 "$M" "$R" --objectives prefill_tok_s:max,peak_rss_mb:min -o "$TMP/cu"
check "min objective: ctx 512 front: G (fastest prefill, least memory)" test "$(slugs "$TMP/cu/pareto.csv" prompt_tokens 512)" = "G"

# Without ratings: speed-only front.
mkdir -p "$TMP/bare"; cp "$R/summary.csv" "$TMP/bare/"
expect_status "no ratings" 0 "$M" "$TMP/bare"
check "no ratings: quality null, front on speed" test "$(jget "$TMP/out" 'd["quality"], d["ratings"]')" = "(None, None)"
check "no ratings: ctx 128 front H only" test "$(slugs "$TMP/bare/pareto.csv" prompt_tokens 128)" = "H"

# Without any spread (one repeat, an old summary): every speed difference is a tie, and the
# simplest setting stands for all; merge says so.
mkdir -p "$TMP/nospread"
cut -d, -f1-12,14,16- "$R/summary.csv" > "$TMP/nospread/summary.csv"
expect_status "no spread" 0 "$M" "$TMP/nospread"
stderr_has "... warns that differences cannot be told from noise" "no measured spread"
check "... ctx 128: the simplest setting (C: all defaults) stands for the rest" test "$(slugs "$TMP/nospread/pareto.csv" prompt_tokens 128)" = "C"
check "... and recommended.json says the spread was unknown" test "$(jget "$TMP/nospread/recommended.json" 'd["spread_unknown"]')" = True

# Trials interleaved in one batch of the sweep are compared round by round: the machine
# slowed down halfway (both intervals overlap), but Q2 was faster in every round.
mkdir -p "$TMP/rounds"
cat > "$TMP/rounds/summary.csv" <<'EOF2'
slug,status,backend,chunk_size,heads_per_band,workers,prompt_tokens,prefill_tok_s,prefill_tok_s_ci95,prefill_batch,prefill_tok_s_runs,decode_tok_s,decode_tok_s_ci95
Q1,ok,chunkwise,64,1,1,128,750,250,7,"[1000,1010,990,1005,500,510,495,505]",20,0.1
Q2,ok,chunkwise,16,1,1,128,825,275,7,"[1100,1111,1089,1105.5,550,561,544.5,555.5]",20,0.1
EOF2
expect_status "runs of one batch" 0 "$M" "$TMP/rounds"
check "compared round by round: Q2 faster beyond the noise, alone on the front" test "$(slugs "$TMP/rounds/pareto.csv") $(jget "$TMP/rounds/profile_ctx128.json" 'd["slug"]')" = "Q2 Q2"
mkdir -p "$TMP/rounds2"
sed '3s/,7,"/,9,"/' "$TMP/rounds/summary.csv" > "$TMP/rounds2/summary.csv"   # Q2 in another batch
expect_status "runs of two batches" 0 "$M" "$TMP/rounds2"
check "not paired across batches: a tie, the default chunk size stands" test "$(slugs "$TMP/rounds2/pareto.csv")" = "Q1"

# Groups are (prompt_tokens, prompt_file): the same length from two prompts is two fronts.
mkdir -p "$TMP/pf"
cat > "$TMP/pf/summary.csv" <<'EOF2'
slug,status,backend,chunk_size,heads_per_band,workers,prompt_tokens,prompt_file,prefill_tok_s,decode_tok_s
P1,ok,chunkwise,64,1,1,128,prompts/a.txt,100,20
P2,ok,chunkwise,32,1,2,128,prompts/a.txt,90,10
Q1,ok,chunkwise,64,1,1,128,prompts/b.txt,50,5
Q2,ok,chunkwise,16,2,2,128,prompts/b.txt,40,4
EOF2
expect_status "prompt_file groups" 0 "$M" "$TMP/pf"
check "two groups counted" test "$(jget "$TMP/out" 'd["contexts"], d["pareto_rows"], d["profiles"]')" = "(2, 2, 2)"
check "front per prompt file" test "$(slugs "$TMP/pf/pareto.csv")" = "P1 Q1"
check "profile names carry the prompt file" test "$(jget "$TMP/pf/profile_ctx128_b.json" 'd["slug"], d["prompt_file"]')" = "('Q1', 'prompts/b.txt')"
check "profile for prompt a" test "$(jget "$TMP/pf/profile_ctx128_a.json" 'd["slug"]')" = P1

# Bad inputs.
printf 'name,avg_logprob\nA,-2\n' > "$TMP/noslug.csv"
expect_status "ratings without slug column -> 1" 1 "$M" "$R" --ratings "$TMP/noslug.csv" -o "$TMP/bad1"
stderr_has "error names the file and the slug column" "xl-merge: .*noslug\.csv: no 'slug' column"
expect_status "unreadable ratings -> 1" 1 "$M" "$R" --ratings "$TMP/does-not-exist.csv" -o "$TMP/bad2"
stderr_has "error names the unreadable file" "xl-merge: .*does-not-exist\.csv: No such file"
mkdir -p "$TMP/nosum"
expect_status "missing summary -> 1" 1 "$M" "$TMP/nosum"
stderr_has "error names summary.csv" "nosum/summary\.csv"
printf 'trial,status\n1,ok\n' > "$TMP/s2.csv"
expect_status "summary without slug -> 1" 1 "$M" "$R" --summary "$TMP/s2.csv" -o "$TMP/bad3"
stderr_has "names the summary file" "s2\.csv: no 'slug' column"
printf 'slug,x\n"A,1\n' > "$TMP/broken.csv"
expect_status "broken CSV -> 1" 1 "$M" "$R" --ratings "$TMP/broken.csv" -o "$TMP/bad4"
stderr_has "names the broken file" "broken\.csv"
# A row with a cell missing is an error naming the file, the line and both counts, never a
# padded row of its own (once: a bogus context group and another recommendation, exit 0).
sed '6s/,128,32,210,2,35,0.5,600$//' "$R/summary.csv" > "$TMP/short.csv"
expect_status "summary row with cells missing -> 1" 1 "$M" "$R" --summary "$TMP/short.csv" -o "$TMP/bad6"
stderr_has "names the file, line and counts" "short\.csv: line 6 has 9 cells, the header has 16"
check "... and writes nothing" test ! -e "$TMP/bad6/merged.csv" -a ! -e "$TMP/bad6/recommended.json"
sed '3s/,8.17,32,0.9,0.95,chunkwise,64$//' "$R/ratings.csv" > "$TMP/shortr.csv"
expect_status "ratings row with cells missing -> 1" 1 "$M" "$R" --ratings "$TMP/shortr.csv" -o "$TMP/bad7"
stderr_has "names the ratings file and line" "shortr\.csv: line 3 has 3 cells, the header has 9"
printf 'slug,x,y\nA,1,2\nB,1\n' > "$TMP/short2.csv"
expect_status "one cell short at the end -> 1" 1 "$M" "$R" --ratings "$TMP/short2.csv" -o "$TMP/bad8"
stderr_has "... line 3: 2 of 3" "short2\.csv: line 3 has 2 cells, the header has 3"
# a quoted cell holding commas and a line break is one cell: a well-formed table passes
mkdir -p "$TMP/ml"
sed 's/"out of memory, killed"/"out of memory,\nkilled"/' "$R/summary.csv" | awk '{ gsub(/\\n/, "\n"); print }' > "$TMP/ml/summary.csv"
check "(the fixture has a line break inside a cell)" test "$(wc -l < "$TMP/ml/summary.csv")" = "$(($(wc -l < "$R/summary.csv") + 1))"
expect_status "a cell with a line break is not a short row" 0 "$M" "$TMP/ml"
expect_status "--output DIR is -o DIR" 0 "$M" "$R" --output "$TMP/longo"
check "... merged.csv and pareto.csv there" test -s "$TMP/longo/merged.csv" -a -s "$TMP/longo/pareto.csv"
expect_status "unknown objective column -> 1" 1 "$M" "$R" --objectives nope:max -o "$TMP/bad5"
expect_status "bad objective direction -> 2" 2 "$M" "$R" --objectives decode_tok_s:up
expect_status "bad tolerance -> 2" 2 "$M" "$R" --quality-tolerance abc
expect_status "unknown flag -> 2" 2 "$M" "$R" --frobnicate
expect_status "no run dir -> 2" 2 "$M"
expect_status "--help -> 0" 0 "$M" --help
check "--help on stdout" grep -q "Usage: xl-merge" "$TMP/out"
finish
