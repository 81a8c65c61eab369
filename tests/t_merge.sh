#!/usr/bin/env bash
# t_merge: xl-merge on crafted CSVs: the join reports unmatched slugs in both
# directions, merged.csv keeps every summary row (failed ones too), pareto.csv holds
# the expected slugs per context length, profiles are valid JSON with params and the
# tolerance rule picks the expected setting; bad inputs fail with exit 1 naming the file.
source "$(dirname "$0")/lib.sh"
M="$BIN/xl-merge"
R=$TMP/run
mkdir -p "$R"

# ctx 128: A, C, H on the front (B dominated by A; D failed); best quality C (-2.00).
# ctx 512: E and F identical (both kept); G has no decode value (never on the front).
cat > "$R/summary.csv" <<'EOF'
trial,slug,status,error,backend,chunk_size,heads_per_band,workers,prompt_tokens,new_tokens,prefill_tok_s,decode_tok_s,peak_rss_mb
1,A,ok,,chunkwise,64,2,2,128,32,200,30,500
2,B,ok,,chunkwise,32,1,2,128,32,150,25,400
3,C,ok,,chunkwise,16,1,1,128,32,100,20,450
4,D,failed,"out of memory, killed",chunkwise,256,4,2,128,32,999,99,300
5,H,ok,,recurrent,1,2,2,128,32,210,35,600
6,E,ok,,chunkwise,64,2,2,512,32,180,28,500
7,F,ok,,chunkwise,128,2,2,512,32,180,28,500
8,G,ok,,recurrent,1,1,1,512,32,300,,300
EOF
# Ratings carry the trial's parameters too (their names clash with the summary's).
cat > "$R/ratings.csv" <<'EOF'
slug,trial,avg_logprob,ppl,len_tokens,distinct2,distinct3,backend,chunk_size
A,1,-2.10,8.17,32,0.9,0.95,chunkwise,64
B,2,-2.20,9.03,32,0.9,0.95,chunkwise,32
C,3,-2.00,7.39,32,0.9,0.95,chunkwise,16
H,5,-2.30,9.97,32,0.9,0.95,recurrent,1
E,6,-2.05,7.77,32,0.9,0.95,chunkwise,64
F,7,-2.05,7.77,32,0.9,0.95,chunkwise,128
G,8,-2.50,12.18,32,0.9,0.95,recurrent,1
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
stderr_has "rating without a trial reported (ratings.csv)" "row\(s\) of .*/ratings\.csv have no trial in the summary: X"
stderr_has "rating without a trial reported (ratings_ollama.csv)" "ratings_ollama\.csv have no trial in the summary: Y"
stderr_has "ollama: G and D unrated" "2 summary row\(s\) have no rating in .*ratings_ollama\.csv: D, G"
stderr_has "reasoning line per context" "context 128: recommend C: .*within 0\.05"
check "NDJSON summary is one line" test "$(wc -l < "$TMP/sum.json")" = 1
check "NDJSON counts" test "$(jget "$TMP/sum.json" '(d["rows"], d["ok_rows"], d["ratings"]["joined"], d["ratings"]["summary_unrated"], d["ratings"]["unmatched"], d["ratings_ollama"]["unmatched"], d["contexts"], d["quality"])')" = "(8, 7, 7, 1, 1, 1, 2, 'avg_logprob')"
check "merged.csv keeps every summary row, failed ones too" test "$(slugs "$R/merged.csv")" = "A B C D E F G H"
check "merged.csv: failed row kept with its error" test "$(slugs "$R/merged.csv" error "out of memory, killed")" = "D"
hdr=$(head -1 "$R/merged.csv")
check "merged.csv has quality columns and prefixed clashes" \
  bash -c "[[ '$hdr' == *,avg_logprob,* && '$hdr' == *,ratings_trial,* && '$hdr' == *,ratings_backend,* && '$hdr' == *,overall,* && '$hdr' == *,ollama_status,* && '$hdr' == *,rationale,* ]]"
check "merged.csv: quoted rationale survives" test "$(python3 -c 'import csv,sys; print([r["rationale"] for r in csv.DictReader(open(sys.argv[1])) if r["slug"]=="C"][0])' "$R/merged.csv")" = 'good "story"'
check "pareto.csv ctx 128 = A C H (B dominated, D failed)" test "$(slugs "$R/pareto.csv" prompt_tokens 128)" = "A C H"
check "pareto.csv ctx 512 = E F (tie kept, G missing decode)" test "$(slugs "$R/pareto.csv" prompt_tokens 512)" = "E F"
check "profile_ctx128.json picks C (only one within 0.05 of -2.00)" test "$(jget "$R/profile_ctx128.json" 'd["slug"], d["context"], d["params"]["backend"], d["params"]["chunk_size"], d["params"]["workers"]')" = "('C', 128, 'chunkwise', 16, 1)"
check "profile_ctx512.json picks E (first of a tie)" test "$(jget "$R/profile_ctx512.json" 'd["slug"], d["metrics"]["decode_tok_s"], d["metrics"]["avg_logprob"], type(d["reason"]).__name__')" = "('E', 28, -2.05, 'str')"
check "recommended.json lists both" test "$(jget "$R/recommended.json" '[p["file"] for p in d["profiles"]]')" = "['profile_ctx128.json', 'profile_ctx512.json']"
check "no temp files left" test -z "$(ls "$R" | grep tmp || true)"

# Tolerance widens the choice: 0.15 admits A, 0.5 admits H.
expect_status "tolerance 0.15" 0 "$M" "$R" --quality-tolerance 0.15 -o "$TMP/o15"
check "tolerance 0.15 picks A" test "$(jget "$TMP/o15/profile_ctx128.json" 'd["slug"]')" = A
expect_status "tolerance 0.5" 0 "$M" "$R" --quality-tolerance 0.5 -o "$TMP/o50"
check "tolerance 0.5 picks H" test "$(jget "$TMP/o50/profile_ctx128.json" 'd["slug"]')" = H
expect_status "prefill objective" 0 "$M" "$R" --objective prefill --quality-tolerance 0.5 -o "$TMP/opre"
check "--objective prefill picks by prefill speed (H at 128)" test "$(jget "$TMP/opre/profile_ctx128.json" 'd["slug"], d["selection"]["speed"]')" = "('H', 'prefill_tok_s')"

# The external judge's score as quality (default tolerance 0.5 -> only C, score 8).
expect_status "quality overall" 0 "$M" "$R" --quality overall -o "$TMP/ov"
check "overall: tolerance 0.5 and pick C" test "$(jget "$TMP/ov/recommended.json" 'd["quality"], d["tolerance"], d["profiles"][0]["slug"]')" = "('overall', 0.5, 'C')"
check "overall: G unrated so not on the 512 front" test "$(slugs "$TMP/ov/pareto.csv" prompt_tokens 512)" = "E F"

# Custom objectives with a minimized one; decode is no longer an objective so G counts.
expect_status "custom objectives" 0 "$M" "$R" --objectives prefill_tok_s:max,peak_rss_mb:min -o "$TMP/cu"
check "min objective: ctx 128 front A B H" test "$(slugs "$TMP/cu/pareto.csv" prompt_tokens 128)" = "A B H"
check "min objective: ctx 512 front G only" test "$(slugs "$TMP/cu/pareto.csv" prompt_tokens 512)" = "G"

# Without ratings: speed-only front; the fastest front row is recommended.
mkdir -p "$TMP/bare"; cp "$R/summary.csv" "$TMP/bare/"
expect_status "no ratings" 0 "$M" "$TMP/bare"
check "no ratings: quality null, front on speed" test "$(jget "$TMP/out" 'd["quality"], d["ratings"]')" = "(None, None)"
check "no ratings: ctx 128 front H only" test "$(slugs "$TMP/bare/pareto.csv" prompt_tokens 128)" = "H"
check "no ratings: ctx 512 front E F" test "$(slugs "$TMP/bare/pareto.csv" prompt_tokens 512)" = "E F"

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
expect_status "unknown objective column -> 1" 1 "$M" "$R" --objectives nope:max -o "$TMP/bad5"
expect_status "bad objective direction -> 2" 2 "$M" "$R" --objectives decode_tok_s:up
expect_status "bad tolerance -> 2" 2 "$M" "$R" --quality-tolerance abc
expect_status "unknown flag -> 2" 2 "$M" "$R" --frobnicate
expect_status "no run dir -> 2" 2 "$M"
expect_status "--help -> 0" 0 "$M" --help
check "--help on stdout" grep -q "Usage: xl-merge" "$TMP/out"
finish
