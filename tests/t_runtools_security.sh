#!/usr/bin/env bash
# t_runtools_security: the run tools' files and limits (issue 16), one regression check each:
#  - a status directory (XL_STATUS_DIR, what telemetry writes and xl-top reads) that is a
#    symbolic link, or another user's directory, is refused: not followed, not chmodded,
#    no status file written through it, none removed through it by xl-top;
source "$(dirname "$0")/lib.sh"
D="$BIN/xl-decode"

# ---- status directory planted as a link / owned by someone else
mkdir -p "$TMP/victim" && chmod 755 "$TMP/victim" && echo keep > "$TMP/victim/keep"
echo '{"pid":999999999}' > "$TMP/victim/999999999.json"   # looks like a stale status file
ln -s "$TMP/victim" "$TMP/link"
expect_status "status dir is a symlink: the run still works" 0 env XL_STATUS_DIR="$TMP/link" "$D" x -n 3 -q
stderr_has "it says why there is no status file" "no status file for xl-top: .*link is a symbolic link"
check "the link's target is not chmodded (still 755)" test "$(stat -c %a "$TMP/victim")" = 755
check "nothing written into the target" test "$(ls "$TMP/victim" | tr '\n' ' ')" = "999999999.json keep "
expect_status "xl-top with a symlinked status dir" 0 env XL_STATUS_DIR="$TMP/link" "$BIN/xl-top" --json
stderr_has "xl-top says it does not read it" "status files not read: .*symbolic link"
check "xl-top removed nothing through the link" test -e "$TMP/victim/999999999.json"
expect_status "status dir 'link/' (trailing slash) is refused too" 0 env XL_STATUS_DIR="$TMP/link/" "$D" x -n 3 -q
check "... and the target keeps its mode" test "$(stat -c %a "$TMP/victim")" = 755
if [ "$(id -u)" = 0 ] && id nobody > /dev/null 2>&1; then
  mkdir -p "$TMP/theirs" && chmod 777 "$TMP/theirs" && chown nobody "$TMP/theirs"
  expect_status "status dir owned by another user: the run still works" 0 env XL_STATUS_DIR="$TMP/theirs" "$D" x -n 3 -q
  stderr_has "it names the owner" "theirs belongs to uid [0-9]+, not to this user"
  check "another user's dir is not chmodded and gets no file" \
    sh -c '[ "$(stat -c %a "$1")" = 777 ] && [ -z "$(ls "$1")" ]' _ "$TMP/theirs"
else
  ok "status dir of another user # SKIP needs root and a 'nobody' user"
fi
expect_status "a missing status dir is created private (0700)" 0 env XL_STATUS_DIR="$TMP/new/st" "$D" x -n 3 -q
check "created 0700" test "$(stat -c %a "$TMP/new/st")" = 700
mkdir -p "$TMP/mine" && chmod 755 "$TMP/mine"
expect_status "an existing status dir of ours" 0 env XL_STATUS_DIR="$TMP/mine" "$D" x -n 3 -q
check "is made private (0700)" test "$(stat -c %a "$TMP/mine")" = 700

finish
