#!/usr/bin/env bash
# xl-decode's streams and sampling: text reaches a pipe token by token (not in 4 KB blocks),
# a temperature run picks a fresh seed each time and records it with every sampling setting
# in the NDJSON record, --seed reproduces a run exactly, and --top-k/--top-p alone are a
# usage error (they only narrow a temperature sampler).
. "$(dirname "$0")/lib.sh"

# streaming: the first bytes arrive while the process is still generating (a 600-token
# run writes ~2.5 KB, less than one stdio block, so block buffering would deliver
# everything at exit)
mkfifo "$TMP/pipe"
"$BIN/xl-decode" "The Python interpreter" -n 600 --ignore-eos -q > "$TMP/pipe" &
pid=$!
exec 3< "$TMP/pipe"
IFS= read -r -n 1 -u 3 first || true
alive=0   # running, not a zombie waiting to be reaped
case "$(ps -o stat= -p "$pid" 2>/dev/null)" in ""|Z*) ;; *) alive=1;; esac
cat <&3 > /dev/null; exec 3<&-
wait "$pid" || true
check "text streams into a pipe token by token (first byte while generating)" test "$alive" = 1

for i in 1 2 3; do
  "$BIN/xl-decode" "def f(x):" -n 16 --temperature 0.8 --format ndjson > "$TMP/r$i"
done
n=$(for i in 1 2 3; do jq -c .ids "$TMP/r$i"; done | sort -u | wc -l)
check "three --temperature runs without --seed differ ($n distinct of 3)" test "$n" -ge 2
check "the record holds every sampling setting" jq -e '.sampling | .greedy == false and .temperature == 0.8 and .top_k == 0 and .top_p == 1 and (.seed | test("^[0-9]+$"))' "$TMP/r1"
seed=$(jq -r .sampling.seed "$TMP/r2")
"$BIN/xl-decode" "def f(x):" -n 16 --temperature 0.8 --seed "$seed" --format ndjson > "$TMP/again"
check "--seed from the record reproduces the run" test "$(jq -c .ids "$TMP/again")" = "$(jq -c .ids "$TMP/r2")"
"$BIN/xl-decode" "def f(x):" -n 4 --format ndjson > "$TMP/g"
check "greedy runs record greedy: true" jq -e '.sampling == {"greedy": true}' "$TMP/g"
expect_status "--top-k without --temperature is a usage error" 2 "$BIN/xl-decode" "def f():" -n 2 --top-k 5
stderr_has "... saying why" "give --temperature"
expect_status "--top-p without --temperature is a usage error" 2 "$BIN/xl-decode" "def f():" -n 2 --top-p 0.9
expect_status "--greedy with --temperature is a usage error" 2 "$BIN/xl-decode" "def f():" -n 2 --greedy --temperature 1
finish
