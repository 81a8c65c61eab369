#!/usr/bin/env bash
# t_judge_ollama: xl-judge ollama against tests/mock_judge_server.py (127.0.0.1, a port
# the OS picks). A small run directory fixture is judged once per failure mode: good
# answers (Ollama and OpenAI APIs), 500/429/cut-then-success (retries), persistent 500
# (error rows, exit 1), a reply slower than the timeout, malformed / incomplete /
# out-of-range answers (parse_error rows keeping the raw text), an unknown model (404,
# exit 1), a refused connection, resume and --force, -j 4 == -j 1, bad inputs.
# The mock logs each request, so the bodies sent (stream:false, schema, temperature 0,
# seed, num_ctx, excerpts) are checked too.
source "$(dirname "$0")/lib.sh"
J="$BIN/xl-judge"

# ---- the mock server (killed by the trap; it also exits by itself after 120 s)
start_mock_judge --slow 0.8
FAST=(--api "$API" --backoff 0.01 --backoff-max 0.05 --timeout 5 --connect-timeout 2 --retries 2)

# ---- the run directory fixture: 4 outputs, one whose text lives only in outputs/<slug>.txt,
# a long prompt (cut by --max-chars) given relative to the run dir
R="$TMP/run"
mkdir -p "$R/outputs"
{
  printf 'PROMPTHEAD Once upon a time, in a quiet town by the sea, '
  for _ in $(seq 400); do printf 'filler words go here. '; done
  printf 'the end PROMPTTAIL\n'
} > "$R/prompt.txt"
s0='b=chunkwise__ck=64__h=2__w=2__i=0' s1='b=chunkwise__ck=16__h=1__w=1__i=1'
s2='b=recurrent__ck=0__h=2__w=2__i=2' s3='b=recurrent__ck=0__h=1__w=4__i=3'
printf 'alpha beta gamma delta epsilon' > "$R/outputs/$s1.txt"
cat > "$R/outputs.jsonl" <<EOF
{"slug":"$s0","trial":0,"prompt_file":"prompt.txt","new_tokens":3,"token_ids":[5,6,7],"text":"one two three","backend":"chunkwise","chunk_size":64,"heads_per_band":2,"workers":2}
{"slug":"$s1","trial":1,"prompt_file":"prompt.txt","new_tokens":5,"token_ids":[1,2,3,4,5],"backend":"chunkwise","chunk_size":16,"heads_per_band":1,"workers":1}
{"slug":"$s2","trial":2,"prompt_file":"prompt.txt","new_tokens":3,"token_ids":[8,9,10],"text":"FAILME here now","backend":"recurrent","chunk_size":0,"heads_per_band":2,"workers":2}
{"slug":"$s3","trial":3,"prompt_file":"prompt.txt","new_tokens":2,"token_ids":[11,12],"text":"GARBAGE x","backend":"recurrent","chunk_size":0,"heads_per_band":1,"workers":4}
EOF

# helpers: jq over a result file; number of logged requests to a path
q() { jq -r "$2" "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
nreq() { jq -s --arg p "$1" '[.[] | select(.path == $p)] | length' "$TMP/req.log"; }
eq() { local n=$1 got=$2 want=$3; if [ "$got" = "$want" ]; then ok "$n"; else not_ok "$n: got '$got', wanted '$want'"; fi; }
sha() { printf 'sha256:%s' "$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)"; }
: > "$TMP/req.log"

# ---- command line
expect_status "--help exits 0" 0 "$J" ollama --help
check "--help documents the options" grep -q -- '--openai' "$TMP/out"
check "--help documents statuses" grep -q 'parse_error' "$TMP/out"
expect_status "top-level --help exits 0" 0 "$J" --help
expect_status "missing RUN_DIR is a usage error" 2 "$J" ollama
expect_status "-j 0 is a usage error" 2 "$J" ollama "$R" -j 0
expect_status "junk --timeout is a usage error" 2 "$J" ollama "$R" --timeout 5x
expect_status "unknown command is a usage error" 2 "$J" frobnicate "$R"

# ---- good answers, Ollama API, -j 1
expect_status "good model exits 0" 0 "$J" ollama "$R" "${FAST[@]}" --model good --seed 7 --num-ctx 2048 \
  --max-chars 300 -o good1
G="$R/good1.jsonl"
eq "4 rows, all ok" "$(q "$G" '.status')" "ok ok ok ok"
eq "rows in outputs.jsonl order" "$(q "$G" '.slug')" "$s0 $s1 $s2 $s3"
eq "scores of row 0 (3 words)" "$(q "$G" 'select(.trial==0) | [.coherence,.relevance,.fluency,.overall] | @csv')" "4,7,10,8"
eq "scores of row 1 (5 words from outputs/<slug>.txt)" \
  "$(q "$G" 'select(.trial==1) | [.coherence,.relevance,.fluency,.overall] | @csv')" "6,5,6,10"
eq "rationale kept verbatim" "$(jq -r 'select(.trial==0) | .rationale' "$G")" "$(printf 'Has 3 words, reads "fine", mostly;\nsecond line.')"
eq "judge_model recorded" "$(q "$G" '.judge_model' | tr ' ' '\n' | sort -u)" "good"
eq "digest from /api/tags" "$(q "$G" '.judge_digest' | tr ' ' '\n' | sort -u)" "$(sha good)"
eq "version from /api/version" "$(q "$G" '.judge_version' | tr ' ' '\n' | sort -u)" "0.9.9-mock"
eq "trial parameters copied" "$(q "$G" 'select(.trial==3) | [.backend,.chunk_size,.heads_per_band,.workers] | @csv')" '"recurrent",0,1,4'
eq "error null and one attempt on ok rows" "$(q "$G" '[.error, .attempts] | @csv' | tr ' ' '\n' | sort -u)" ",1"
eq "GET /api/version and /api/tags asked once" "$(nreq /api/version) $(nreq /api/tags)" "1 1"
eq "4 generate requests" "$(nreq /api/generate)" "4"
B="$TMP/body.json"
jq -s '[.[] | select(.path=="/api/generate")][0].body' "$TMP/req.log" > "$B"
eq "request: model, stream false" "$(q "$B" '[.model, .stream] | @csv')" '"good",false'
eq "request: temperature 0, seed, num_ctx" "$(q "$B" '.options | [.temperature, .seed, .num_ctx] | @csv')" "0,7,2048"
eq "request: format schema is an object with 5 required fields" \
  "$(q "$B" '[.format.type, (.format.required | sort | join("+"))] | @csv')" '"object","coherence+fluency+overall+rationale+relevance"'
eq "request: every score is an integer in 1-10" \
  "$(q "$B" '[.format.properties[] | select(.type=="integer") | "\(.minimum)-\(.maximum)"] | join(" ")')" "1-10 1-10 1-10 1-10"
eq "request: rationale is a string" "$(q "$B" '.format.properties.rationale.type')" "string"
eq "request: the long prompt keeps head and tail" \
  "$(q "$B" '[(.prompt | test("PROMPTHEAD")), (.prompt | test("PROMPTTAIL")), (.prompt | test("characters omitted"))] | @csv')" \
  "true,true,true"
eq "request: prompt excerpt is bounded by --max-chars" "$(q "$B" '.prompt | length < 2000')" "true"
eq "request: continuation included" "$(q "$B" '.prompt | test("CONTINUATION:\n<<<\none two three\n>>>")')" "true"

# CSV: header, quoting (the rationale holds quotes, a comma and a newline), same values
C="$R/good1.csv"
eq "CSV header" "$(head -1 "$C")" \
  "slug,trial,coherence,relevance,fluency,overall,rationale,judge_model,status,error,judge_digest,judge_version,backend,chunk_size,heads_per_band,workers"
eq "CSV parses back to the same rows" "$(python3 - "$C" "$G" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
js = [json.loads(l) for l in open(sys.argv[2])]
ok = len(rows) == len(js) == 4
for r, j in zip(rows, js):
    ok &= r["slug"] == j["slug"] and r["rationale"] == j["rationale"] and int(r["overall"]) == j["overall"]
    ok &= r["error"] == "" and r["workers"] == str(j["workers"])
print("yes" if ok else "no")
PY
)" "yes"

# ---- -j 4 gives the same rows; the requests really run concurrently (slow model, 0.8 s each)
expect_status "-j 4 exits 0" 0 "$J" ollama "$R" "${FAST[@]}" --model good --seed 7 --num-ctx 2048 \
  --max-chars 300 -j 4 -o good4
eq "-j 4 rows equal -j 1 rows" "$(jq -c 'del(.judged_at)' "$R/good4.jsonl" | md5sum)" "$(jq -c 'del(.judged_at)' "$G" | md5sum)"
eq "-j 4 CSV equals -j 1 CSV" "$(md5sum < "$R/good4.csv")" "$(md5sum < "$C")"
t0=$(date +%s.%N)
expect_status "slow model, -j 4, within the timeout" 0 "$J" ollama "$R" "${FAST[@]}" --model slow -j 4 -o slow4
t1=$(date +%s.%N)
eq "4 slow requests of 0.8 s overlap (-j 4 < 2.4 s, serial would be 3.2 s)" "$(echo "$t1 - $t0 < 2.4" | bc)" "1"
eq "slow rows ok" "$(q "$R/slow4.jsonl" '.status')" "ok ok ok ok"

# ---- resume: ok rows are kept and not asked again; --force asks again
: > "$TMP/req.log"
before=$(md5sum < "$G")
expect_status "resume exits 0" 0 "$J" ollama "$R" "${FAST[@]}" --model good -o good1
eq "resume sends no request" "$(nreq /api/generate) $(nreq /api/tags)" "0 0"
eq "resume leaves the rows as they were" "$(md5sum < "$G")" "$before"
stderr_has "resume reports kept rows" "4 kept"
expect_status "--force exits 0" 0 "$J" ollama "$R" "${FAST[@]}" --model good -o good1 --force
eq "--force asks again" "$(nreq /api/generate)" "4"
expect_status "another judge model re-judges" 0 "$J" ollama "$R" "${FAST[@]}" --model fenced -o good1
eq "rows of another model are not reused" "$(nreq /api/generate)" "8"
eq "fenced JSON answers parse" "$(q "$G" '[.status, .judge_model] | @csv' | tr ' ' '\n' | sort -u)" '"ok","fenced"'

# ---- mixed: ok, error (500 every time) and parse_error rows in one run; resume retries only those
: > "$TMP/req.log"
expect_status "a failed row makes exit 1" 1 "$J" ollama "$R" "${FAST[@]}" --model mixed -o mixed
stderr_has "failures reported" "1 request\(s\) failed"
M="$R/mixed.jsonl"
eq "statuses ok ok error parse_error" "$(q "$M" '.status')" "ok ok error parse_error"
eq "error row: message with HTTP 500 and attempts" "$(q "$M" 'select(.trial==2) | [(.error | test("HTTP 500: mock failure for FAILME \\(after 3 attempts\\)")), .attempts, .coherence, .rationale] | @csv')" "true,3,,"
eq "parse_error row keeps the raw answer" "$(q "$M" 'select(.trial==3) | [.raw, (.error | test("not valid JSON")), .overall] | @csv')" '"not json at all",true,'
eq "3 attempts at the failing row (1 + --retries 2)" "$(jq -s '[.[] | select(.path=="/api/generate" and (.body.prompt | test("FAILME")))] | length' "$TMP/req.log")" "3"
: > "$TMP/req.log"
expect_status "mixed again still exits 1" 1 "$J" ollama "$R" "${FAST[@]}" --model mixed -o mixed
eq "resume asks only the rows not ok" "$(jq -s -r '[.[] | select(.path=="/api/generate") | .body.prompt | capture("CONTINUATION:\n<<<\n(?<c>[^\n]*)").c] | unique | join(",")' "$TMP/req.log")" "FAILME here now,GARBAGE x"
eq "rows keep their order after resume" "$(q "$M" '.trial')" "0 1 2 3"

# ---- transient failures recovered by retries
for m in flaky500 flaky429 cut; do
  expect_status "$m recovers (exit 0)" 0 "$J" ollama "$R" "${FAST[@]}" --model $m -j 2 -o $m
  eq "$m: all ok after 2 attempts" "$(q "$R/$m.jsonl" '"\(.status)/\(.attempts)"' | tr ' ' '\n' | sort -u)" "ok/2"
  eq "$m: scores as good" "$(q "$R/$m.jsonl" 'select(.trial==1) | .overall')" "10"
done
expect_status "--retries 0: a 500 is final" 1 "$J" ollama "$R" "${FAST[@]}" --retries 0 --model down -o noretry
eq "--retries 0: error rows with one attempt" "$(q "$R/noretry.jsonl" '"\(.status)/\(.attempts)"' | tr ' ' '\n' | sort -u)" "error/1"
eq "--retries 0: error names HTTP 500" "$(q "$R/noretry.jsonl" '.error | test("HTTP 500")' | tr ' ' '\n' | sort -u)" "true"

# ---- a reply slower than the timeout: error row, not retried
t0=$(date +%s.%N)
expect_status "timeout makes exit 1" 1 "$J" ollama "$R" "${FAST[@]}" --timeout 0.3 --model slow -o timeout
t1=$(date +%s.%N)
eq "timeout rows: error, 1 attempt, message says timed out" \
  "$(q "$R/timeout.jsonl" '"\(.status)/\(.attempts)/\(.error | test("timed out"))"' | tr ' ' '\n' | sort -u)" "error/1/true"
eq "timeout is enforced (4 requests at -j 1 in < 2.5 s; full replies take 3.2 s)" "$(echo "$t1 - $t0 < 2.5" | bc)" "1"

# ---- answers that are not valid ratings
expect_status "bad JSON answers only: exit 1 (every row a parse_error)" 1 "$J" ollama "$R" "${FAST[@]}" --model badjson -o badjson
stderr_has "every row a parse_error is reported" "every row is a parse_error: model 'badjson'"
eq "bad JSON: parse_error rows with raw text" "$(q "$R/badjson.jsonl" '"\(.status)|\(.raw)"' | tr ' ' '\n' | sort -u | tr '\n' ' ')" \
  "$(printf '%s\n' 'parse_error|Sure! Here are my scores: coherence eight {' | tr ' ' '\n' | sort -u | tr '\n' ' ')"
expect_status "missing field in every answer exits 1" 1 "$J" ollama "$R" "${FAST[@]}" --model missing -o missing
eq "missing field: parse_error naming fluency" "$(q "$R/missing.jsonl" '"\(.status)/\(.error | test("lacks .fluency"))/\(.coherence)"' | tr ' ' '\n' | sort -u)" "parse_error/true/null"
expect_status "out of range in every answer exits 1" 1 "$J" ollama "$R" "${FAST[@]}" --model range -o range
eq "out of range: parse_error naming overall" "$(q "$R/range.jsonl" '"\(.status)/\(.error | test("overall. = 11 is outside 1-10"))"' | tr ' ' '\n' | sort -u)" "parse_error/true"
eq "out of range: raw answer kept" "$(q "$R/range.jsonl" 'select(.trial==0) | .raw | fromjson | .overall')" "11"
check "parse_error CSV has the error column filled" grep -q 'parse_error,.*outside 1-10' "$R/range.csv"

# ---- a model the server does not have: 404, clear message, exit 1, nothing written
expect_status "unknown model exits 1" 1 "$J" ollama "$R" "${FAST[@]}" --model nosuch -j 4 -o nosuch
stderr_has "404 names the model" "model 'nosuch' not found.*HTTP 404"
check "unknown model writes no rows" test ! -e "$R/nosuch.jsonl" -a ! -e "$R/nosuch.csv"

# ---- nobody listening: clear error, exit 1, fast
DEAD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
t0=$(date +%s.%N)
expect_status "connection refused exits 1" 1 "$J" ollama "$R" "${FAST[@]}" --api "http://127.0.0.1:$DEAD" --model good -o dead
t1=$(date +%s.%N)
stderr_has "connection refused is reported" "cannot reach the judge server.*(refused|connect)"
check "connection refused writes no rows" test ! -e "$R/dead.jsonl"
eq "connection refused gives up quickly" "$(echo "$t1 - $t0 < 3" | bc)" "1"

# ---- OpenAI-compatible API
: > "$TMP/req.log"
expect_status "--openai exits 0" 0 "$J" ollama "$R" "${FAST[@]}" --openai --model good --seed 9 -o oa
O="$R/oa.jsonl"
eq "openai: same scores as Ollama mode" "$(q "$O" '[.coherence,.relevance,.fluency,.overall] | @csv')" "$(q "$R/good4.jsonl" '[.coherence,.relevance,.fluency,.overall] | @csv')"
eq "openai: judge_api, digest and version null (not listed)" "$(q "$O" '"\(.judge_api)/\(.judge_digest)/\(.judge_version)"' | tr ' ' '\n' | sort -u)" "openai/null/null"
eq "openai: GET /v1/models asked, no Ollama endpoints" "$(nreq /v1/models) $(nreq /api/tags) $(nreq /api/generate)" "1 0 0"
jq -s '[.[] | select(.path=="/v1/chat/completions")][0].body' "$TMP/req.log" > "$B"
eq "openai request: temperature 0, seed, stream false" "$(q "$B" '[.temperature, .seed, .stream] | @csv')" "0,9,false"
eq "openai request: strict json_schema response_format" \
  "$(q "$B" '.response_format | [.type, .json_schema.strict, .json_schema.schema.properties.overall.maximum, (.json_schema.schema.required | length)] | @csv')" '"json_schema",true,10,5'
eq "openai request: one user message with the continuation" "$(q "$B" '[.messages[0].role, (.messages[0].content | test("CONTINUATION:\n<<<\none two three\n>>>"))] | @csv')" '"user",true'
expect_status "--openai digest when /v1/models lists one" 0 "$J" ollama "$R" "${FAST[@]}" --openai --model gooddigest -o oa2
eq "openai: digest from /v1/models" "$(q "$R/oa2.jsonl" '.judge_digest' | tr ' ' '\n' | sort -u)" "$(sha gooddigest)"
expect_status "--openai unknown model exits 1" 1 "$J" ollama "$R" "${FAST[@]}" --openai --model nosuch -o oa3
stderr_has "openai 404 names the model" "model 'nosuch' not found.*not found, try pulling"
expect_status "--openai answers that are not ratings: exit 1" 1 "$J" ollama "$R" "${FAST[@]}" --openai --model range -o oa4
eq "openai: out of range is parse_error" "$(q "$R/oa4.jsonl" '.status' | tr ' ' '\n' | sort -u)" "parse_error"

# ---- progress only on a terminal
stderr_has "no progress line when stderr is not a terminal" '^xl-judge: 4 rows in .*oa4'
check "no progress text in a pipe" sh -c "! grep -q 'judged (' '$TMP/err'"
script -qc "'$J' ollama '$R' --api '$API' --model good -o tty --force" /dev/null > "$TMP/tty.out" 2>&1 || true
check "progress on a terminal" grep -q '4/4 judged (ok 4, parse_error 0, error 0)' "$TMP/tty.out"

# ---- an interrupted run keeps what it finished (--save-every) and resumes from there
: > "$TMP/req.log"
"$J" ollama "$R" "${FAST[@]}" --model slow --save-every 0 -o killed 2> /dev/null &
JPID=$!
# with --save-every 0 the file appears when the first row is done; kill then
for _ in $(seq 150); do [ -s "$R/killed.jsonl" ] && break; sleep 0.05; done
kill $JPID 2>/dev/null || true
wait $JPID 2>/dev/null || true
saved=0
[ -s "$R/killed.jsonl" ] && saved=$(jq -s 'length' "$R/killed.jsonl")
check "killed run saved its finished rows, not all (saved $saved)" test "$saved" -ge 1 -a "$saved" -le 3
eq "saved rows are ok and first in order" "$(q "$R/killed.jsonl" '"\(.trial)\(.status)"' | tr -d ' ')" "$(seq -s '' -f '%gok' 0 $((saved - 1)))"
: > "$TMP/req.log"
expect_status "resume after a kill exits 0" 0 "$J" ollama "$R" "${FAST[@]}" --model slow -j 3 -o killed
eq "resume after a kill: 4 ok rows" "$(q "$R/killed.jsonl" '.status')" "ok ok ok ok"
eq "resume after a kill asks only the unsaved rows" "$(nreq /api/generate)" "$((4 - saved))"

# ---- inputs
P2="$TMP/other_prompt.txt"
printf 'A DIFFERENT PROMPT about ships.\n' > "$P2"
: > "$TMP/req.log"
expect_status "--prompt-file overrides the rows' prompt_file" 0 "$J" ollama "$R" "${FAST[@]}" --model good --prompt-file "$P2" -o pf
eq "--prompt-file text is sent" "$(jq -s '[.[] | select(.path=="/api/generate") | .body.prompt | test("A DIFFERENT PROMPT")] | all' "$TMP/req.log")" "true"
R2="$TMP/run2"
mkdir -p "$R2"
printf '{"slug":"a","trial":0,"prompt_file":"prompt.txt","text":"x y"}\n{"slug": oops}\n' > "$R2/outputs.jsonl"
expect_status "bad outputs.jsonl exits 1" 1 "$J" ollama "$R2" "${FAST[@]}" --model good
stderr_has "bad line named file:line" "outputs.jsonl:2: not valid JSON"
printf '{"slug":"a","trial":0,"prompt_file":"nowhere.txt","text":"x y"}\n' > "$R2/outputs.jsonl"
expect_status "missing prompt file exits 1" 1 "$J" ollama "$R2" "${FAST[@]}" --model good
stderr_has "missing prompt file named" "prompt file 'nowhere.txt'.*--prompt-file"
expect_status "missing outputs.jsonl exits 1" 1 "$J" ollama "$TMP/nowhere" "${FAST[@]}" --model good
stderr_has "missing outputs.jsonl named" "nowhere/outputs.jsonl: No such file"
printf '{"slug":"a","trial":0,"text":"x y"}\n' > "$R2/outputs.jsonl"
printf '{"slug":"a","status":"ok"}\nnot json\n' > "$R2/ratings_ollama.jsonl"
expect_status "corrupt earlier ratings exit 1" 1 "$J" ollama "$R2" "${FAST[@]}" --model good --prompt-file "$P2"
stderr_has "corrupt ratings named file:line" "ratings_ollama.jsonl:2: not valid JSON"
expect_status "--force ignores corrupt earlier ratings" 0 "$J" ollama "$R2" "${FAST[@]}" --model good --prompt-file "$P2" --force
eq "--force rewrote the ratings" "$(q "$R2/ratings_ollama.jsonl" '"\(.slug)/\(.status)/\(.trial)"')" "a/ok/0"
# (the run killed above may have died in the middle of a save: its temp file does not count)
check "no temp files left behind" test -z "$(find "$R" "$R2" -name '*.tmp.*' ! -name 'killed.*')"

finish
