#!/usr/bin/env bash
# t_judge_security: xl-judge ollama treats records as data and keeps secrets (issue 16):
# a row's prompt_file only from inside the run directory (symlinks resolved); --api-key /
# XL_JUDGE_API_KEY sent as a Bearer header; userinfo and keys never in rows, CSV or
# messages; SIGTERM/SIGINT end the run within one request with the finished rows written
# (exit 143/130); answers with \u0000 and with ill-formed UTF-8 are handled; a read
# timeout on a reused connection is not retried; a FIFO output without a reader fails
# instead of blocking. Also the flag vocabulary's new and old spellings (docs/cli.md).
source "$(dirname "$0")/lib.sh"
J="$BIN/xl-judge"
start_mock_judge --slow 1.5
PORT=${API##*:}
FAST=(--backoff 0.01 --backoff-max 0.05 --timeout 5 --connect-timeout 2 --retries 2)
q() { jq -r "$2" "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', wanted '$3'"; fi; }
nreq() { jq -s --arg p "$1" '[.[] | select(.path == $p)] | length' "$TMP/req.log"; }

R="$TMP/run"
mkdir -p "$R/outputs"
printf 'Once upon a time' > "$R/prompt.txt"
cat > "$R/outputs.jsonl" <<EOF2
{"slug":"s0","trial":0,"prompt_file":"prompt.txt","text":"one two three"}
{"slug":"s1","trial":1,"prompt_file":"prompt.txt","text":"four five"}
{"slug":"s2","trial":2,"prompt_file":"prompt.txt","text":"FAILME six"}
{"slug":"s3","trial":3,"prompt_file":"prompt.txt","text":"seven eight nine ten"}
EOF2
: > "$TMP/req.log"

# ---- the flag vocabulary: new spellings quiet, old ones work with a warning
expect_status "--judge-model, --workers, -o FILE.jsonl" 0 "$J" ollama "$R" --api "$API" "${FAST[@]}" \
  --judge-model good --workers 2 -o new.jsonl
check "no deprecation warning for the new spellings" sh -c '! grep -q deprecated "$1"' _ "$TMP/err"
check "-o new.jsonl wrote new.jsonl and new.csv in RUN_DIR" test -s "$R/new.jsonl" -a -s "$R/new.csv"
eq "judge_model recorded" "$(q "$R/new.jsonl" '.judge_model' | tr ' ' '\n' | sort -u)" "good"
expect_status "old spellings --model, -j, -o BASE still work" 0 "$J" ollama "$R" --api "$API" "${FAST[@]}" \
  --model good -j 2 -o old
stderr_has "--model is deprecated, pointing at --judge-model" "--model NAME is deprecated.*--judge-model"
stderr_has "-j is deprecated, pointing at --workers" "-j/--jobs N .*deprecated.*--workers"
stderr_has "-o BASE is deprecated" "-o BASE .*deprecated"
check "-o old wrote old.jsonl and old.csv" test -s "$R/old.jsonl" -a -s "$R/old.csv"

# ---- a row's prompt_file: inside the run directory only
R2="$TMP/run2"; mkdir -p "$R2"
printf '{"slug":"a","trial":0,"prompt_file":"/etc/passwd","text":"x y"}\n' > "$R2/outputs.jsonl"
: > "$TMP/req.log"
expect_status "prompt_file /etc/passwd is refused (exit 1)" 1 "$J" ollama "$R2" --api "$API" "${FAST[@]}" --judge-model good
stderr_has "the refusal says why and what to do" "prompt_file '/etc/passwd' lies outside the run directory.*--prompt-file"
eq "nothing was sent to the server" "$(nreq /api/generate)" "0"
ln -s /etc/passwd "$R2/link.txt"
printf '{"slug":"a","trial":0,"prompt_file":"link.txt","text":"x y"}\n' > "$R2/outputs.jsonl"
expect_status "a symlink in the run directory pointing out is refused" 1 "$J" ollama "$R2" --api "$API" "${FAST[@]}" --judge-model good
stderr_has "the symlink's target counts" "prompt_file 'link.txt' lies outside the run directory"
printf '{"slug":"a","trial":0,"prompt_file":"../run/prompt.txt","text":"x y"}\n' > "$R2/outputs.jsonl"
expect_status "a relative path climbing out (../) is refused" 1 "$J" ollama "$R2" --api "$API" "${FAST[@]}" --judge-model good
printf '{"slug":"a","trial":0,"prompt_file":"%s","text":"x y"}\n' "$ROOT/prompts/short.txt" > "$R2/outputs.jsonl"
expect_status "a prompt shipped with xltools (prompts/) is allowed" 0 "$J" ollama "$R2" --api "$API" "${FAST[@]}" --judge-model good --force
printf 'the user named this' > "$TMP/named.txt"
: > "$TMP/req.log"
expect_status "--prompt-file names a prompt outside the run: allowed" 0 "$J" ollama "$R2" --api "$API" "${FAST[@]}" \
  --judge-model good --prompt-file "$TMP/named.txt"
eq "the named prompt was sent" "$(jq -s '[.[] | select(.path=="/api/generate") | .body.prompt | test("the user named this")] | all' "$TMP/req.log")" "true"
printf '{"slug":"b","trial":0,"prompt_file":"prompt.txt"}\n' > "$R2/outputs.jsonl"
printf 'P' > "$R2/prompt.txt"; mkdir -p "$R2/outputs"; ln -s /etc/passwd "$R2/outputs/b.txt"
expect_status "outputs/<slug>.txt linking out of the run is refused" 1 "$J" ollama "$R2" --api "$API" "${FAST[@]}" --judge-model good --force
stderr_has "the continuation file is named" "outputs/b.txt lies outside the run directory"

# ---- secrets: userinfo and API keys never written
: > "$TMP/req.log"
SECRET=hunter2pass KEY=sk-test-0123456789
expect_status "userinfo in --api, 500 from the server: exit 1" 1 "$J" ollama "$R" --api "http://alice:$SECRET@127.0.0.1:$PORT" \
  "${FAST[@]}" --retries 0 --judge-model down -o ui.jsonl
check "the password is in no row, CSV or message" sh -c '! grep -rq "$1" "$2/ui.jsonl" "$2/ui.csv" "$3"' _ "$SECRET" "$R" "$TMP/err"
check "the error rows show the URL with *** for the userinfo" grep -q 'http://\*\*\*@127.0.0.1' "$R/ui.jsonl"
DEAD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
expect_status "userinfo, server unreachable: exit 1" 1 "$J" ollama "$R" --api "http://alice:$SECRET@127.0.0.1:$DEAD" "${FAST[@]}" --judge-model good -o dead.jsonl
check "the password is not in the message" sh -c '! grep -q "$1" "$2"' _ "$SECRET" "$TMP/err"
expect_status "a bad --api with userinfo: usage error without the password" 2 "$J" ollama "$R" --api "ftp://alice:$SECRET@x"
check "the usage message hides it" sh -c '! grep -q "$1" "$2" && grep -q "ftp://\*\*\*@x" "$2"' _ "$SECRET" "$TMP/err"
: > "$TMP/req.log"
expect_status "--api-key: the server echoes the Authorization header in a 500" 1 "$J" ollama "$R" --api "$API" "${FAST[@]}" \
  --retries 0 --openai --api-key "$KEY" --judge-model echoauth -o key.jsonl
eq "the key went as a Bearer header" "$(jq -s -r --arg k "Bearer $KEY" '[.[] | select(.path=="/v1/chat/completions") | .headers.authorization == $k] | all' "$TMP/req.log")" "true"
check "the key is in no row, CSV or message" sh -c '! grep -rq "$1" "$2/key.jsonl" "$2/key.csv" "$3"' _ "$KEY" "$R" "$TMP/err"
check "the echoed key shows as ***" grep -q 'Bearer \*\*\*' "$R/key.jsonl"
: > "$TMP/req.log"
expect_status "XL_JUDGE_API_KEY is used when --api-key is not given" 0 env XL_JUDGE_API_KEY="$KEY" "$J" ollama "$R" \
  --api "$API" "${FAST[@]}" --openai --judge-model good -o envkey.jsonl
eq "the variable's key went as a Bearer header" "$(jq -s -r --arg k "Bearer $KEY" '[.[] | select(.path=="/v1/chat/completions") | .headers.authorization == $k] | all' "$TMP/req.log")" "true"

# ---- answers: \u0000 and ill-formed UTF-8
expect_status "answers wrapped in NUL characters: exit 0" 0 "$J" ollama "$R" --api "$API" "${FAST[@]}" --judge-model nul -o nul.jsonl
eq "NUL answers are ratings, not parse errors" "$(q "$R/nul.jsonl" '.status' | tr ' ' '\n' | sort -u)" "ok"
eq "the rationale keeps the text around the NUL" "$(q "$R/nul.jsonl" '.rationale' | tr ' ' '\n' | sort -u)" "beforeafter"
expect_status "ill-formed UTF-8 in the answers: exit 0" 0 "$J" ollama "$R" --api "$API" "${FAST[@]}" --judge-model badutf8 -o utf.jsonl
check "the ratings are valid UTF-8 JSON for a strict reader (Python's json)" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8", errors="strict")]
assert len(rows) == 4 and all(r["status"] == "ok" and "\ufffd" in r["rationale"] for r in rows), rows
open(sys.argv[2], encoding="utf-8", errors="strict").read()' "$R/utf.jsonl" "$R/utf.csv"

# ---- a read timeout is not retried, also on a connection reused after an earlier row
: > "$TMP/req.log"
expect_status "slow row on a reused connection: exit 1" 1 "$J" ollama "$R" --api "$API" --backoff 0.01 --backoff-max 0.05 \
  --connect-timeout 2 --retries 2 --timeout 0.7 --judge-model slowfail --workers 1 -o rt.jsonl
eq "the slow row: error, 1 attempt, timed out" "$(q "$R/rt.jsonl" 'select(.slug=="s2") | "\(.status)/\(.attempts)/\(.error | test("timed out"))"')" "error/1/true"
eq "it was asked once" "$(jq -s '[.[] | select(.path=="/api/generate" and (.body.prompt | test("FAILME")))] | length' "$TMP/req.log")" "1"
eq "the other rows are ok" "$(q "$R/rt.jsonl" 'select(.slug!="s2") | .status')" "ok ok ok"

# ---- SIGTERM / SIGINT: within one request, finished rows written, 143 / 130
for sig in TERM INT; do
  rm -f "$R/sig.jsonl" "$R/sig.csv"
  : > "$TMP/req.log"
  "$J" ollama "$R" --api "$API" "${FAST[@]}" --judge-model slow --workers 1 --save-every 1000 -o sig.jsonl 2> "$TMP/sig.err" &
  jp=$!
  for _ in $(seq 200); do [ "$(nreq /api/generate)" -ge 2 ] && break; sleep 0.05; done   # row 1 done, row 2 asked
  t0=$(date +%s.%N)
  kill -$sig $jp
  set +e; wait $jp; rc=$?; set -e
  t1=$(date +%s.%N)
  want=$([ $sig = TERM ] && echo 143 || echo 130)
  eq "SIG$sig: exit $want" "$rc" "$want"
  check "SIG$sig: stopped within 1.2 s (a request takes 1.5 s)" test "$(echo "$t1 - $t0 < 1.2" | bc)" = 1
  eq "SIG$sig: the finished row is written, the aborted one is not" "$(q "$R/sig.jsonl" '"\(.slug)/\(.status)"')" "s0/ok"
  eq "SIG$sig: the CSV too" "$(python3 -c 'import csv,sys; print(len(list(csv.DictReader(open(sys.argv[1], newline="")))))' "$R/sig.csv")" "1"
  check "SIG$sig: the message says how far it got" grep -q "interrupted (SIG$sig): 1 of 4 rows judged" "$TMP/sig.err"
done

# ---- a FIFO at the output path: no reader -> an error, not a hang; a reader -> the rows
mkfifo "$R/fifo.jsonl"
set +e
timeout 60 "$J" ollama "$R" --api "$API" "${FAST[@]}" --judge-model good -o fifo.jsonl > /dev/null 2> "$TMP/err"
rc=$?
set -e
eq "FIFO without a reader: exit 1, not blocked (124)" "$rc" "1"
stderr_has "the FIFO is named" "fifo.jsonl"
cat "$R/fifo.jsonl" > "$TMP/fifo.out" &
cp=$!
expect_status "FIFO with a reader: exit 0" 0 timeout 20 "$J" ollama "$R" --api "$API" "${FAST[@]}" --judge-model good -o fifo.jsonl --force
wait $cp || true
eq "the reader got the 4 rows" "$(jq -s 'length' "$TMP/fifo.out")" "4"
finish
