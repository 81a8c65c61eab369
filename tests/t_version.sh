#!/usr/bin/env bash
# t_version: every tool answers --version (issue 17) with the version, the commit it was
# built from, the build flags, whether CUDA is built in and the BLAS core; exit 0, stdout.
source "$(dirname "$0")/lib.sh"
want_commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
for t in "$BIN"/xl-*; do
  n=$(basename "$t")
  expect_status "$n --version exits 0" 0 "$t" --version
  check "$n --version: first line '$n (xltools) VERSION'" grep -Eq "^$n \(xltools\) [0-9]+\.[0-9]+\.[0-9]+$" <(head -1 "$TMP/out")
  check "$n --version: commit, build, cuda and blas lines" \
    sh -c 'grep -q "^commit: ." "$1" && grep -q "^build: .*flags" "$1" && grep -Eq "^cuda: (built in|not built)" "$1" && grep -Eq "^blas: .*core [A-Z0-9_]+ \((auto|user|reexec)\)" "$1"' _ "$TMP/out"
  check "$n --version prints nothing on stderr" test ! -s "$TMP/err"
done
# the commit is this checkout's (a build made from another tree would say otherwise)
got=$(sed -n 's/^commit: //p' "$TMP/out")
case "$want_commit" in
  unknown) ok "commit (not a git checkout) # SKIP no git" ;;
  *) check "commit is git describe of the source tree ($got vs $want_commit)" test "${got%-dirty}" = "${want_commit%-dirty}" ;;
esac
expect_status "--version after other flags" 0 "$BIN/xl-decode" -n 3 --version
check "--version wins over the other flags (no model run)" grep -q '^xl-decode (xltools)' "$TMP/out"
expect_status "xl-judge ollama --version" 0 "$BIN/xl-judge" ollama --version
finish
